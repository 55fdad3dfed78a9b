package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// The catalog page at "/": stacks, packages, versions and platforms, and a
// form that resolves requirements and shows the pinned reference, the
// docker pull line and the image drawn as a stack of its layers (see
// drawing.go), optionally compared with a previous pin; and a page per
// package at /packages/{name}. They are rendered on the server with
// html/template; there is no JavaScript and no build step. The
// Content-Security-Policy allows no script at all and exactly one
// stylesheet, the inline one whose hash it names (pageCSP), so neither an
// injected style attribute nor an injected script would apply. The form is
// a GET, so a resolution is a link that can be shared; like a pull by tag,
// showing it stores the composed index.

//go:embed page.html package.html layout.html drawing.html
var pageFiles embed.FS

// pageCSS is the pages' one stylesheet, inlined in every page's head.
//
//go:embed page.css
var pageCSS string

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"size":         humanSize,
	"stylesheet":   func() template.CSS { return template.CSS(pageCSS) },
	"barX":         func() int { return barX },
	"labelX":       func() int { return labelX },
	"markX":        func() int { return barX + barWidth/2 },
	"fillDownload": func() string { return fillDownload },
	"fillPresent":  func() string { return fillPresent },
}).ParseFS(pageFiles, "*.html"))

// pageCSP is the pages' Content-Security-Policy: nothing but the inline
// stylesheet (by its hash), forms to this origin, no framing.
var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

// pageData is what page.html renders.
type pageData struct {
	Title        string
	Host         string
	Generation   uint64
	Stacks       []StackInfo
	Packages     []PackageSummary
	Platforms    []string // every platform of the catalog, for the form
	Policies     []policyOption
	Stack        string // selected in the form
	Platform     string // selected in the form; "" is every platform
	Requirements string // the form's text
	From         string // the form's previous pin
	Policy       string // the form's update policy
	Asked        bool   // the form was submitted
	Result       *ResolveResponse
	AsFromURL    string // the form with Result as the previous pin
	Drawings     []drawing
	Scale        scale
	Error        *pageError
}

type policyOption struct{ Value, Text string }

var policyOptions = []policyOption{
	{PolicyAll, "all: any version the requirements allow"},
	{PolicyMinor, "minor: newer minor or patch versions of what runs"},
	{PolicyPatch, "patch: newer patch versions of what runs"},
	{PolicyNone, "none: keep what runs if it still satisfies the requirements"},
}

type pageError struct {
	Title   string // "Cannot resolve"
	Code    string
	Message string
	Facts   []fact
}

type fact struct{ Key, Value string }

// page serves GET / : the catalog, and the resolution when the form was
// submitted (?stack=env&requirements=php%3D%5E8.2%0Anodejs%3D%5E20, with
// optional platform, from and policy).
func (a *API) page(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := pageData{Title: "envreg catalog", Host: r.Host, Generation: snap.Generation, Packages: packageSummaries(snap),
		Policies: policyOptions, Stack: q.Get("stack"), Platform: q.Get("platform"), Requirements: q.Get("requirements"),
		From: strings.TrimSpace(q.Get("from")), Policy: q.Get("policy"), Asked: q.Has("requirements")}
	if d.Host != "" {
		d.Title += " — " + d.Host
	}
	for _, st := range snap.Stacks() {
		d.Stacks = append(d.Stacks, stackInfo(st))
	}
	for _, p := range d.Packages {
		for _, pl := range p.Platforms {
			if !slices.Contains(d.Platforms, pl) {
				d.Platforms = append(d.Platforms, pl)
			}
		}
	}
	slices.Sort(d.Platforms)
	if d.Stack == "" {
		d.Stack = catalog.DefaultStackName
	}
	if d.Policy == "" {
		d.Policy = PolicyAll
	}
	status := http.StatusOK
	if d.Asked {
		if status, err = a.pageResolve(r, &d); err != nil {
			return err
		}
	}
	return writePage(w, r, status, "page", d)
}

// pageResolve resolves the form of d and fills in the result, or the error
// a person reads (with its status). It returns an error only for what
// handle answers: a server fault, or a client that went away.
func (a *API) pageResolve(r *http.Request, d *pageData) (int, error) {
	in, err := parseRequirementLines(d.Requirements)
	in.From, in.Policy = d.From, d.Policy
	if d.Platform != "" {
		in.Platforms = []string{d.Platform}
	}
	if err == nil {
		d.Result, err = a.resolveRequest(r, d.Stack, in)
	}
	if err != nil {
		e := ToError(err)
		if e == nil || e.Status >= 500 {
			return 0, err
		}
		d.Error = &pageError{Title: "Cannot resolve", Code: e.Code, Message: e.Message, Facts: facts(e.Detail)}
		return e.Status, nil
	}
	d.Drawings, d.Scale = drawings(d.Result)
	d.AsFromURL = "/?" + url.Values{"stack": {d.Result.Stack}, "from": {d.Result.Digest}}.Encode()
	return http.StatusOK, nil
}

// writePage renders the named template with every header set first.
func writePage(w http.ResponseWriter, r *http.Request, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("rendering the %s page: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", pageCSP)
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
