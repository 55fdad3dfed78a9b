package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/server/api"
)

// TestPage renders the catalog page and a resolution through the real
// server, and checks what a person would read.
func TestPage(t *testing.T) {
	p := newPublished(t)
	host := strings.TrimPrefix(p.srv.URL, "http://")
	resolved := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "^8.2", "graphicsmagick": "*", "nodejs": "^20"}})

	page := func(query url.Values) (int, http.Header, string) {
		t.Helper()
		path := "/"
		if query != nil {
			path += "?" + query.Encode()
		}
		status, h, body := p.call(t, "GET", path, nil)
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if strings.Contains(strings.ToLower(string(body)), "<script") {
			t.Errorf("GET %s: the page has a script", path)
		}
		return status, h, string(body)
	}

	status, _, body := page(nil)
	for _, want := range []string{
		`<option value="env" selected>env</option>`,
		`<tr><td><a href="/packages/php">php</a></td><td>8.2.36, 8.2.32, 8.1.27</td><td>linux/amd64, linux/arm64</td></tr>`,
		`<tr><td>env</td><td>base *</td><td>gm → graphicsmagick node → nodejs </td>`,
		`<form method="get" action="/">`,
	} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("catalog page: %d, missing %s\n%s", status, want, body)
		}
	}
	if strings.Contains(body, `id="result"`) || strings.Contains(body, `id="error"`) {
		t.Error("a result or error before the form was submitted")
	}

	status, _, body = page(url.Values{"stack": {"env"}, "requirements": {"php=^8.2\r\ngraphicsmagick\r\nnode=^20\r\n"}})
	for _, want := range []string{
		`<pre id="reference">` + host + `/env@` + resolved.Digest + `</pre>`,
		`<pre id="pull">docker pull ` + host + `/env@` + resolved.Digest + `</pre>`,
		`<tr><td>php</td><td>8.2.36</td></tr>`,
		`<tr><td>nodejs</td><td>20.12.2</td></tr>`,
		`<code id="tag">` + resolved.TagReference + `</code>`,
		`<td>linux/arm64</td><td><code>` + resolved.Platforms[1].Digest + `</code></td><td>4</td>`,
		`>php=^8.2`, // the form keeps what was typed
	} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("resolution page: %d, missing %s\n%s", status, want, body)
		}
	}

	status, _, body = page(url.Values{"requirements": {"php=^9"}})
	for _, want := range []string{
		`<span id="error-message">no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)</span>`,
		`<tr><th>available</th><td>8.1.27, 8.2.32, 8.2.36</td></tr>`,
	} {
		if status != 422 || !strings.Contains(body, want) {
			t.Errorf("unsatisfiable page: %d, missing %s\n%s", status, want, body)
		}
	}

	status, _, body = page(url.Values{"stack": {"nope"}, "requirements": {"php"}})
	if status != 404 || !strings.Contains(body, `unknown stack &#34;nope&#34;`) {
		t.Errorf("unknown stack page: %d\n%s", status, body)
	}

	// What is typed is escaped, never markup.
	status, _, body = page(url.Values{"requirements": {`<img src=x>=1`}})
	if status != 400 || strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img src=x&gt;=1") {
		t.Errorf("escaping: %d\n%s", status, body)
	}
}

// TestPageLoopbackOnly: the page resolves (and stores), so it is guarded
// like the API.
func TestPageLoopbackOnly(t *testing.T) {
	p := newPublished(t)
	req := httptest.NewRequest("GET", "/?requirements=php", nil)
	req.RemoteAddr = "198.51.100.7:5000"
	rec := httptest.NewRecorder()
	p.srv.Config.Handler.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("page from 198.51.100.7: %d", rec.Code)
	}
}

// TestPageFromOtherSites: without authentication, a page of another site
// may link to the catalog page, but may not make the browser resolve (and
// store) through it, and a page reached through DNS rebinding gets
// nothing. The form on the page itself keeps working.
func TestPageFromOtherSites(t *testing.T) {
	p := newPublished(t)
	for _, tc := range []struct {
		name, host, query string
		header            []string
		status            int
		why               string
	}{
		{"link from another site", "127.0.0.1:5000", "", []string{"Sec-Fetch-Site", "cross-site"}, 200, ""},
		{"the page's own form", "127.0.0.1:5000", "?stack=env&requirements=php", []string{"Sec-Fetch-Site", "same-origin"}, 200, ""},
		{"typed into the address bar", "localhost:5000", "?requirements=php", []string{"Sec-Fetch-Site", "none"}, 200, ""},
		{"form of another site", "127.0.0.1:5000", "?requirements=php", []string{"Sec-Fetch-Site", "cross-site"}, 403, "Sec-Fetch-Site: cross-site"},
		{"POST-less Origin", "127.0.0.1:5000", "?requirements=php", []string{"Origin", "https://attacker.example"}, 403, "Origin: https://attacker.example"},
		{"DNS rebinding", "attacker.example:5000", "", []string{"Sec-Fetch-Site", "same-origin"}, 403, "DNS rebinding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/"+tc.query, nil)
			req.RemoteAddr, req.Host = "127.0.0.1:40000", tc.host
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			rec := httptest.NewRecorder()
			p.srv.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.why) {
				t.Errorf("%d, want %d saying %q\n%.300s", rec.Code, tc.status, tc.why, rec.Body)
			}
		})
	}
}

// svgStack is the part of a drawn layer stack the tests read.
type svgStack struct {
	Width      int    `xml:"width,attr"`
	Height     int    `xml:"height,attr"`
	Role       string `xml:"role,attr"`
	Labelledby string `xml:"aria-labelledby,attr"`
	Title      struct {
		ID   string `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"title"`
	Desc struct {
		ID   string `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"desc"`
	Layers []struct {
		N        int    `xml:"data-n,attr"`
		Package  string `xml:"data-package,attr"`
		Version  string `xml:"data-version,attr"`
		Size     int64  `xml:"data-size,attr"`
		Download string `xml:"data-download,attr"`
		Raised   string `xml:"data-raised,attr"`
		Title    string `xml:"title"`
		Rect     struct {
			Y      int    `xml:"y,attr"`
			Height int    `xml:"height,attr"`
			Fill   string `xml:"fill,attr"`
		} `xml:"rect"`
		Mark string `xml:"text"` // on the bar, with from
		Link struct {
			Href string `xml:"href,attr"`
			Text string `xml:"text"`
		} `xml:"a"`
	} `xml:"g"`
}

// figure is one platform's drawing on the page.
type figure struct {
	platform      string
	total         string // <data class="total" value>
	downloadBytes string // <data class="download-bytes" value>, "" without from
	svg           svgStack
}

var (
	figureRE   = regexp.MustCompile(`(?s)<figure class="drawing" id="[^"]+" data-platform="([^"]+)">(.*?)</figure>`)
	svgRE      = regexp.MustCompile(`(?s)<svg xmlns=.*?</svg>`)
	totalRE    = regexp.MustCompile(`<data class="total" value="(\d+)">`)
	downloadRE = regexp.MustCompile(`<data class="download-bytes" value="(\d+)">`)
)

// figures parses every drawing of a page; the SVG the page writes is
// well-formed XML, so encoding/xml reads it.
func figures(t *testing.T, body string) []figure {
	t.Helper()
	var out []figure
	for _, m := range figureRE.FindAllStringSubmatch(body, -1) {
		f := figure{platform: m[1]}
		if t := totalRE.FindStringSubmatch(m[2]); t != nil {
			f.total = t[1]
		}
		if d := downloadRE.FindStringSubmatch(m[2]); d != nil {
			f.downloadBytes = d[1]
		}
		if err := xml.Unmarshal([]byte(svgRE.FindString(m[2])), &f.svg); err != nil {
			t.Fatalf("the drawing for %s is not well-formed SVG: %v\n%s", f.platform, err, m[2])
		}
		out = append(out, f)
	}
	return out
}

// checkStack checks one drawing against the API's answer for its
// platform: a bar per layer in layer order, bottom up, heights ordered
// like sizes and to scale (the largest image of the result, largest bytes,
// takes api.StackHeight pixels; none under the minimum), labelled with
// package, version and size, and, with from, marked as the API marks the
// layers.
func checkStack(t *testing.T, f figure, pr api.PlatformResult, largest int64) {
	t.Helper()
	s := f.svg
	if f.platform != pr.Platform || len(s.Layers) != len(pr.Layers) {
		t.Fatalf("drawing %s has %d bars; %s has %d layers", f.platform, len(s.Layers), pr.Platform, len(pr.Layers))
	}
	if s.Role != "img" || s.Labelledby != s.Title.ID+" "+s.Desc.ID || !strings.Contains(s.Title.Text, pr.Platform) {
		t.Errorf("%s: role %q, aria-labelledby %q, title %+v", f.platform, s.Role, s.Labelledby, s.Title)
	}
	if f.total != strconv.FormatInt(pr.Size, 10) {
		t.Errorf("%s: total %s, want %d", f.platform, f.total, pr.Size)
	}
	for i, g := range s.Layers {
		l := pr.Layers[i]
		if g.N != i+1 || g.Package != l.Package || g.Version != l.Version || g.Size != l.Size {
			t.Errorf("%s bar %d: %d %s %s %d, want layer %+v", f.platform, i, g.N, g.Package, g.Version, g.Size, l)
		}
		size := api.HumanSize(l.Size)
		if g.Link.Text != l.Package+" "+l.Version+" · "+size || g.Link.Href != "/packages/"+l.Package {
			t.Errorf("%s bar %d: label %q linking %q", f.platform, i, g.Link.Text, g.Link.Href)
		}
		if !strings.Contains(s.Desc.Text, fmt.Sprintf("%d. %s %s, %s", i+1, l.Package, l.Version, size)) || !strings.Contains(g.Title, l.Digest) {
			t.Errorf("%s bar %d: not in the text equivalent: desc %q, title %q", f.platform, i, s.Desc.Text, g.Title)
		}
		scaled := math.Round(float64(l.Size) * api.StackHeight / float64(largest))
		if raised := scaled < api.MinBarHeight; (g.Raised == "true") != raised ||
			(raised && g.Rect.Height != api.MinBarHeight) || (!raised && float64(g.Rect.Height) != scaled) {
			t.Errorf("%s bar %d: height %d (raised %q), want %v px to scale (minimum %d)", f.platform, i, g.Rect.Height, g.Raised, scaled, api.MinBarHeight)
		}
		if i > 0 && g.Rect.Y+g.Rect.Height > s.Layers[i-1].Rect.Y {
			t.Errorf("%s bar %d (y %d, height %d) is not above bar %d (y %d)", f.platform, i, g.Rect.Y, g.Rect.Height, i-1, s.Layers[i-1].Rect.Y)
		}
		for j, h := range s.Layers[:i] {
			if (h.Size < g.Size && h.Rect.Height > g.Rect.Height) || (h.Size > g.Size && h.Rect.Height < g.Rect.Height) {
				t.Errorf("%s: bar %d (%d bytes) is %d px, bar %d (%d bytes) is %d px", f.platform, j, h.Size, h.Rect.Height, i, g.Size, g.Rect.Height)
			}
		}
		want := ""
		if l.Download != nil {
			want = strconv.FormatBool(*l.Download)
			mark, fill := "on the node", api.FillPresent
			if *l.Download {
				mark, fill = "download", api.FillDownload
			}
			if g.Mark != mark || g.Rect.Fill != fill {
				t.Errorf("%s bar %d (%s, download %v): says %q, fill %s", f.platform, i, l.Package, *l.Download, g.Mark, g.Rect.Fill)
			}
		} else if g.Mark != "" {
			t.Errorf("%s bar %d (%s) says %q without from", f.platform, i, l.Package, g.Mark)
		}
		if g.Download != want {
			t.Errorf("%s bar %d (%s): download %q, want %q", f.platform, i, l.Package, g.Download, want)
		}
	}
	if pr.Download != nil && f.downloadBytes != strconv.FormatInt(pr.Download.Size, 10) {
		t.Errorf("%s: download bytes %q, want %d", f.platform, f.downloadBytes, pr.Download.Size)
	}
}

// largestImage is the size of res's largest image.
func largestImage(res *api.ResolveResponse) int64 {
	var n int64
	for _, p := range res.Platforms {
		n = max(n, p.Size)
	}
	return n
}

// TestPageDrawing: the resolution draws each platform's image as its
// layers, to scale, and with from marks what a node downloads.
func TestPageDrawing(t *testing.T) {
	p := newPublished(t)
	reqs := map[string]string{"php": "^8.2", "graphicsmagick": "*", "nodejs": "^20"}
	text := "php=^8.2\ngraphicsmagick\nnodejs=^20"
	old := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "=8.1.27", "nodejs": "=20.12.2", "graphicsmagick": "=1.3.42"}})

	get := func(q url.Values) string {
		t.Helper()
		status, h, body := p.call(t, "GET", "/?"+q.Encode(), nil)
		if status != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("GET /?%s: %d %v\n%s", q.Encode(), status, h, body)
		}
		return string(body)
	}

	// Without from: every platform, no marks.
	want := p.mustResolve(t, api.ResolveRequest{Requirements: reqs})
	body := get(url.Values{"requirements": {text}})
	figs := figures(t, body)
	if len(figs) != 2 {
		t.Fatalf("%d drawings, want one per platform\n%s", len(figs), body)
	}
	for i, f := range figs {
		checkStack(t, f, want.Platforms[i], largestImage(want))
	}
	// Side by side, the bases line up.
	if a, b := figs[0].svg, figs[1].svg; a.Height != b.Height || a.Layers[0].Rect.Y+a.Layers[0].Rect.Height != b.Layers[0].Rect.Y+b.Layers[0].Rect.Height {
		t.Errorf("the drawings' bottoms differ: %d px high, base at %d+%d; %d px high, base at %d+%d",
			a.Height, a.Layers[0].Rect.Y, a.Layers[0].Rect.Height, b.Height, b.Layers[0].Rect.Y, b.Layers[0].Rect.Height)
	}
	if !strings.Contains(body, `id="legend"`) || !strings.Contains(body, fmt.Sprintf("at least %d px high", api.MinBarHeight)) {
		t.Errorf("no legend stating the minimum height\n%s", body)
	}
	if strings.Contains(body, `class="download`) {
		t.Error("download marks without from")
	}

	// With from: php changed (8.1.27 to 8.2.36); base, nodejs and
	// graphicsmagick are on the node.
	want = p.mustResolve(t, api.ResolveRequest{Requirements: reqs, From: old.Digest})
	body = get(url.Values{"requirements": {text}, "from": {old.Digest}, "policy": {"all"}})
	figs = figures(t, body)
	if len(figs) != 2 {
		t.Fatalf("%d drawings with from\n%s", len(figs), body)
	}
	for i, f := range figs {
		checkStack(t, f, want.Platforms[i], largestImage(want))
		for _, g := range f.svg.Layers {
			if (g.Download == "true") != (g.Package == "php") {
				t.Errorf("%s: %s marked download %q", f.platform, g.Package, g.Download)
			}
		}
		if want.Platforms[i].Download.Layers != 1 {
			t.Errorf("%s: download %+v", f.platform, want.Platforms[i].Download)
		}
	}
	for _, s := range []string{
		`<code id="from-digest">` + old.Digest + `</code>`,
		`<tr><td>php</td><td>upgraded</td><td>8.1.27</td><td>8.2.36</td></tr>`,
		`value="` + old.Digest + `"`, // the form keeps the pin
		"A node with the from image downloads 1 layer",
		"download: the from image does not have this layer",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("resolution with from: missing %s\n%s", s, body)
		}
	}
	// The result links to the form with it as the previous pin.
	if !strings.Contains(body, `<a id="use-as-from" href="/?from=`+url.QueryEscape(want.Digest)+`&amp;stack=env">`) {
		t.Errorf("no link to compare with this pin\n%s", body)
	}

	// One platform, as chosen in the form.
	body = get(url.Values{"requirements": {text}, "platform": {"linux/arm64"}})
	if figs = figures(t, body); len(figs) != 1 || figs[0].platform != "linux/arm64" {
		t.Errorf("platform linux/arm64: %d drawings\n%s", len(figs), body)
	}
	if !strings.Contains(body, `<option value="linux/arm64" selected>linux/arm64</option>`) {
		t.Errorf("the form does not keep the platform\n%s", body)
	}
}

// TestPageDrawingToScale: a large layer takes the height of the stack, and
// small ones are raised to the minimum height, which the legend states.
func TestPageDrawingToScale(t *testing.T) {
	p := newPublished(t)
	big := int64(200 << 10)
	for _, plat := range []catalog.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		dir := filepath.Join(t.TempDir(), "rootfs")
		data := make([]byte, big)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(data) // incompressible: the layer is as large
		if err := os.MkdirAll(filepath.Join(dir, "opt/data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "opt/data/blob"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := p.pub.Publish(t.Context(), packages.Input{
			ReleaseSpec: catalog.ReleaseSpec{Name: "data", Version: "1.0.0", Requires: []string{"base *"}}, Platform: plat, Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}
	want := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"data": "*", "php": "*"}})
	_, _, body := p.call(t, "GET", "/?requirements=data%0Aphp", nil)
	figs := figures(t, string(body))
	if len(figs) != 2 {
		t.Fatalf("%d drawings\n%s", len(figs), body)
	}
	for i, f := range figs {
		checkStack(t, f, want.Platforms[i], largestImage(want))
		for _, g := range f.svg.Layers {
			switch {
			case g.Package == "data" && (g.Raised != "" || g.Rect.Height < 300):
				t.Errorf("%s: the %d-byte layer is %d px (raised %q)", f.platform, g.Size, g.Rect.Height, g.Raised)
			case g.Package != "data" && (g.Raised != "true" || g.Rect.Height != api.MinBarHeight || !strings.Contains(g.Title, "minimum height")):
				t.Errorf("%s: the %d-byte layer of %s is %d px (raised %q)", f.platform, g.Size, g.Package, g.Rect.Height, g.Raised)
			}
		}
	}
}

// TestPageStylesheet: the pages' CSP allows exactly their one stylesheet
// (by hash) and nothing else: no script, no inline style attribute.
func TestPageStylesheet(t *testing.T) {
	p := newPublished(t)
	styleRE := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	for _, path := range []string{"/", "/?requirements=php", "/packages/php", "/packages/nope"} {
		_, h, body := p.call(t, "GET", path, nil)
		m := styleRE.FindAllSubmatch(body, -1)
		if len(m) != 1 {
			t.Fatalf("GET %s: %d style elements", path, len(m))
		}
		sum := sha256.Sum256(m[0][1])
		csp := h.Get("Content-Security-Policy")
		if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"; !strings.Contains(csp, want) {
			t.Errorf("GET %s: CSP %q lacks %s", path, csp, want)
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script") || !strings.HasPrefix(csp, "default-src 'none';") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if lower := strings.ToLower(string(body)); strings.Contains(lower, " style=") || strings.Contains(lower, "<script") || regexp.MustCompile(` on[a-z]+=`).MatchString(lower) {
			t.Errorf("GET %s: a style attribute, script or event handler in the page", path)
		}
	}
}

// TestPackagePage: a page per package with its versions newest first
// (yanked marked), publish times, layer sizes per platform, requires and
// aliases; linked from the catalog page.
func TestPackagePage(t *testing.T) {
	p := newPublished(t)
	if _, err := catalog.SetYanked(t.Context(), p.cat, "php", semver.MustParse("8.2.32"), true); err != nil {
		t.Fatal(err)
	}
	var detail api.PackageDetail
	_, _, data := p.call(t, "GET", "/api/v1/packages/php", nil)
	if err := json.Unmarshal(data, &detail); err != nil {
		t.Fatal(err)
	}
	status, h, b := p.call(t, "GET", "/packages/php", nil)
	body := string(b)
	if status != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /packages/php: %d %v", status, h)
	}
	last := -1
	for _, v := range detail.Versions {
		i := strings.Index(body, `<tr id="v-`+v.Version+`"`)
		if i < last {
			t.Errorf("version %s is not in the order of the API (newest first)", v.Version)
		}
		last = i
		row := body[i : i+strings.Index(body[i:], "</tr>")]
		if v.Yanked != strings.Contains(row, `class="yanked"><td>`+v.Version+` <span class="yanked-mark">yanked</span>`) {
			t.Errorf("version %s (yanked %v): %s", v.Version, v.Yanked, row)
		}
		if !strings.Contains(row, `<time datetime="2026-11-01T12:00:00Z">2026-11-01 12:00</time>`) || !strings.Contains(row, "<td>base *</td>") {
			t.Errorf("version %s: no publish time or requires: %s", v.Version, row)
		}
		for _, l := range v.Platforms {
			if !strings.Contains(row, `<data value="`+strconv.FormatInt(l.Size, 10)+`">`+api.HumanSize(l.Size)+`</data>`) {
				t.Errorf("version %s: no size of %s (%d): %s", v.Version, l.Platform, l.Size, row)
			}
			if !strings.Contains(body, "<code>"+l.Digest+"</code>") {
				t.Errorf("version %s: no digest of %s", v.Version, l.Platform)
			}
		}
	}
	for _, want := range []string{
		`<h1 id="name">php</h1>`,
		`<th class="num">linux/amd64</th><th class="num">linux/arm64</th>`,
		`<tr><th>Latest</th><td>8.2.36</td></tr>`,
		`3, 1 yanked`,
		`<code>PHP_VERSION=8.2.36</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("package page: missing %s\n%s", want, body)
		}
	}

	_, _, b = p.call(t, "GET", "/packages/nodejs", nil)
	if !strings.Contains(string(b), `<td id="aliases">node (stack env)</td>`) {
		t.Errorf("nodejs page: no alias\n%s", b)
	}
	_, _, b = p.call(t, "GET", "/packages/base", nil)
	if !strings.Contains(string(b), `<td id="base-of">env (in every image of the stack)</td>`) {
		t.Errorf("base page: not the stack's base\n%s", b)
	}
	status, h, b = p.call(t, "GET", "/packages/%3Cimg%20src=x%3E", nil)
	if status != 404 || h.Get("Content-Type") != "text/html; charset=utf-8" || strings.Contains(string(b), "<img") ||
		!strings.Contains(string(b), `<span id="error-message">unknown package &#34;&lt;img src=x&gt;&#34;`) {
		t.Errorf("unknown package page: %d %s\n%s", status, h.Get("Content-Type"), b)
	}
	if status, _, b = p.call(t, "HEAD", "/packages/php", nil); status != 200 || len(b) != 0 {
		t.Errorf("HEAD /packages/php: %d, %d bytes", status, len(b))
	}
}

// TestPackagePageAccess: a package page stores nothing, so another site
// may link to it, but it answers only this host without authentication.
func TestPackagePageAccess(t *testing.T) {
	p := newPublished(t)
	for _, tc := range []struct {
		name, remote, host, site string
		status                   int
	}{
		{"linked from another site", "127.0.0.1:40000", "127.0.0.1:5000", "cross-site", 200},
		{"another host", "198.51.100.7:40000", "127.0.0.1:5000", "", 403},
		{"DNS rebinding", "127.0.0.1:40000", "attacker.example:5000", "same-origin", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/packages/php", nil)
			req.RemoteAddr, req.Host = tc.remote, tc.host
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			rec := httptest.NewRecorder()
			p.srv.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%d, want %d\n%.300s", rec.Code, tc.status, rec.Body)
			}
		})
	}
}
