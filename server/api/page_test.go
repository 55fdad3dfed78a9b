package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

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
		`<tr><td>php</td><td>8.2.36, 8.2.32, 8.1.27</td><td>linux/amd64, linux/arm64</td></tr>`,
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
