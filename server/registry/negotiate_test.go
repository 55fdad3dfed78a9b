package registry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
)

func TestNegotiation(t *testing.T) {
	s := newPublished(t).server(t)
	const (
		ociIndex    = "application/vnd.oci.image.index.v1+json"
		ociManifest = "application/vnd.oci.image.manifest.v1+json"
		dockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
		dockerMan   = "application/vnd.docker.distribution.manifest.v2+json"
	)
	cases := []struct{ accept, want string }{
		{"", ociIndex},
		{"*/*", ociIndex},
		{ociIndex + "," + dockerList, ociIndex},
		{dockerList + ", " + ociIndex, ociIndex},
		{ociManifest + ", " + dockerList, ociManifest}, // an OCI type is accepted: no Docker
		{dockerList + ", " + dockerMan, dockerList},
		{dockerMan, dockerMan},
		{ociIndex + ";q=0, " + dockerList, dockerList},
	}
	for _, tc := range cases {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/v2/env/manifests/php-8.2", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || got != tc.want {
			t.Errorf("Accept %q: %d %s, want %s", tc.accept, resp.StatusCode, got, tc.want)
		}
	}
}

func TestBlobHeadMatchesGet(t *testing.T) {
	s := newPublished(t).server(t)
	resp, err := s.Client().Get(s.URL + "/v2/env/manifests/php-8.2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A config blob of the composed image: fetch the amd64 manifest first.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/v2/env/manifests/php-8.2", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err = s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Config struct{ Digest string } }
	if err := jsonDecode(resp, &m); err != nil {
		t.Fatal(err)
	}
	blob := s.URL + "/v2/env/blobs/" + m.Config.Digest
	for _, rng := range []string{"", "bytes=0-9"} {
		var heads [2]http.Header
		var codes [2]int
		for i, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequestWithContext(t.Context(), method, blob, nil)
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			heads[i], codes[i] = resp.Header, resp.StatusCode
		}
		wantCode := 200
		if rng != "" {
			wantCode = 206
		}
		if codes[0] != wantCode || codes[1] != wantCode {
			t.Errorf("Range %q: GET %d HEAD %d, want %d", rng, codes[0], codes[1], wantCode)
		}
		for _, h := range []string{"Content-Length", "Content-Type", "Docker-Content-Digest", "ETag", "Cache-Control", "Content-Range"} {
			if heads[0].Get(h) != heads[1].Get(h) {
				t.Errorf("Range %q: %s GET %q HEAD %q", rng, h, heads[0].Get(h), heads[1].Get(h))
			}
		}
	}
}

func TestMethodNotAllowedHasAllow(t *testing.T) {
	s := newPublished(t).server(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, s.URL+"/v2/env/manifests/php-8.2", nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestResolutionLimitsAre404 covers resolution failures other than
// unsatisfiable ranges: a tag that selects more packages than the stack
// allows layers, and an empty "latest", are unknown manifests, not 500s.
func TestResolutionLimitsAre404(t *testing.T) {
	p := newPublished(t)
	small := catalog.Stack{Name: "small", MaxLayers: 2, Base: []catalog.Constraint{{Name: "base", Range: "*"}}}
	empty := catalog.Stack{Name: "empty"}
	for _, st := range []catalog.Stack{small, empty} {
		if err := p.cat.PutStack(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	s := p.server(t)
	for path, want := range map[string]string{
		"/v2/small/manifests/php_nodejs": "layers",
		"/v2/small/manifests/php":        "", // base + php = 2: allowed
		"/v2/empty/manifests/latest":     "nothing to compose",
	} {
		resp, err := s.Client().Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		_ = jsonDecode(resp, &eb)
		if want == "" {
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %+v", path, resp.StatusCode, eb)
			}
			continue
		}
		if resp.StatusCode != 404 || len(eb.Errors) != 1 || eb.Errors[0].Code != "MANIFEST_UNKNOWN" || !strings.Contains(eb.Errors[0].Message, want) {
			t.Errorf("%s: %d %+v, want 404 MANIFEST_UNKNOWN mentioning %q", path, resp.StatusCode, eb, want)
		}
	}
}

// TestManifestRevalidation: a client that has a manifest revalidates it
// with If-None-Match and gets 304 without a body; a stale ETag gets 200.
func TestManifestRevalidation(t *testing.T) {
	s := newPublished(t).server(t)
	resp, err := s.Client().Get(s.URL + "/v2/env/manifests/php-8.2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" || etag != `"`+resp.Header.Get("Docker-Content-Digest")+`"` {
		t.Fatalf("ETag %q, digest %q", etag, resp.Header.Get("Docker-Content-Digest"))
	}
	for match, want := range map[string]int{etag: http.StatusNotModified, `"sha256:stale"`: http.StatusOK} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/v2/env/manifests/php-8.2", nil)
		req.Header.Set("If-None-Match", match)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusNotModified && len(body) != 0) {
			t.Errorf("If-None-Match %s: %d with %d bytes, want %d", match, resp.StatusCode, len(body), want)
		}
	}
}

// TestTagParseFollowsCatalogChanges: parsed tags are reused only within one
// catalog generation. Redefining what "latest" means takes effect at once.
func TestTagParseFollowsCatalogChanges(t *testing.T) {
	p := newPublished(t)
	s := p.server(t)
	annotations := func() map[string]string {
		resp, err := s.Client().Get(s.URL + "/v2/env/manifests/latest")
		if err != nil {
			t.Fatal(err)
		}
		var idx struct{ Annotations map[string]string }
		if err := jsonDecode(resp, &idx); err != nil || resp.StatusCode != 200 {
			t.Fatalf("latest: %d %v", resp.StatusCode, err)
		}
		return idx.Annotations
	}
	if a := annotations(); a["io.envreg.package.php"] != "" {
		t.Fatalf("default latest already has php: %v", a)
	}
	st := catalog.DefaultStack()
	st.Latest = []catalog.Constraint{{Name: "php", Range: "~8.1"}}
	if err := p.cat.PutStack(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if got := annotations()["io.envreg.package.php"]; got != "8.1.27" {
		t.Errorf("after redefining latest as php ~8.1: php = %q, want 8.1.27", got)
	}
}
