package api

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// The catalog page at "/": stacks, packages, versions and platforms, and a
// form that resolves requirements and shows the pinned reference and the
// docker pull line. It is rendered on the server with html/template; there
// is no JavaScript and no build step (the Content-Security-Policy forbids
// scripts). The form is a GET, so a resolution is a link that can be
// shared; like a pull by tag, showing it stores the composed index.

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"size": humanSize,
}).Parse(pageHTML))

// pageData is what page.html renders.
type pageData struct {
	Host         string
	Generation   uint64
	Stacks       []StackInfo
	Packages     []PackageSummary
	Stack        string // selected in the form
	Requirements string // the form's text
	Asked        bool   // the form was submitted
	Result       *ResolveResponse
	Error        *pageError
}

type pageError struct {
	Code    string
	Message string
	Facts   []fact
}

type fact struct{ Key, Value string }

// page serves GET / : the catalog, and the resolution when the form was
// submitted (?stack=env&requirements=php%3D%5E8.2%0Anodejs%3D%5E20).
func (a *API) page(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := pageData{Host: r.Host, Generation: snap.Generation, Packages: packageSummaries(snap),
		Stack: q.Get("stack"), Requirements: q.Get("requirements"), Asked: q.Has("requirements")}
	for _, st := range snap.Stacks() {
		d.Stacks = append(d.Stacks, stackInfo(st))
	}
	if d.Stack == "" {
		d.Stack = catalog.DefaultStackName
	}
	status := http.StatusOK
	if d.Asked {
		in, err := parseRequirementLines(d.Requirements)
		if err == nil {
			d.Result, err = a.resolveRequest(r, d.Stack, in)
		}
		if err != nil {
			e := ToError(err)
			if e == nil {
				return err // the client went away
			}
			if e.Status >= 500 {
				return err // logged and answered by handle
			}
			status = e.Status
			d.Error = &pageError{Code: e.Code, Message: e.Message, Facts: facts(e.Detail)}
		}
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		return fmt.Errorf("rendering the catalog page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
	return nil
}

// parseRequirementLines reads the form's text: one requirement per line,
// NAME or NAME=RANGE as on the command line ("php=^8.2", "nodejs=>=18 <21").
func parseRequirementLines(text string) (ResolveRequest, error) {
	in := ResolveRequest{Requirements: map[string]string{}}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, rng, hasRange := strings.Cut(line, "=")
		name, rng = strings.TrimSpace(name), strings.TrimSpace(rng)
		if !hasRange {
			rng = "*"
		}
		if name == "" {
			return in, badRequest(nil, "invalid requirement %q: no package name", line)
		}
		if prev, ok := in.Requirements[name]; ok {
			return in, badRequest(nil, "duplicate requirement for %s: %q and %q", name, prev, rng)
		}
		in.Requirements[name] = rng
	}
	return in, nil
}

// facts renders an error's detail as key/value lines for people.
func facts(detail any) []fact {
	m, ok := detail.(map[string]any)
	if !ok {
		return nil
	}
	var out []fact
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v := factValue(m[k]); v != "" {
			out = append(out, fact{k, v})
		}
	}
	return out
}

func factValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ", ")
	case [2]string:
		return v[0] + "; " + v[1]
	case [2][]string:
		return "(1) " + strings.Join(v[0], " → ") + "  (2) " + strings.Join(v[1], " → ")
	case []map[string]any:
		parts := make([]string, len(v))
		for i, m := range v {
			var kv []string
			for _, f := range facts(m) {
				kv = append(kv, f.Value)
			}
			parts[i] = strings.Join(kv, ": ")
		}
		return strings.Join(parts, "; ")
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// humanSize prints bytes as people read them: 1.2 MiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
