package registry_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func benchGet(b *testing.B, h http.Handler, path, accept string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	// Warm the composition cache once.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("GET %s: %d", path, w.Code)
		}
	}
}

// BenchmarkGetManifest measures a warm composed manifest GET by tag and a
// stored one by digest, in process.
func BenchmarkGetManifest(b *testing.B) {
	p := newPublished(b)
	b.Run("tag", func(b *testing.B) { benchGet(b, p.handler, "/v2/env/manifests/php-8.2_node-20_gm", "") })
	w := httptest.NewRecorder()
	p.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/env/manifests/php-8.2_node-20_gm", nil))
	d := w.Header().Get("Docker-Content-Digest")
	b.Run("digest", func(b *testing.B) { benchGet(b, p.handler, "/v2/env/manifests/"+d, "") })
}

// BenchmarkGetBlob measures a layer blob GET, in process.
func BenchmarkGetBlob(b *testing.B) {
	p := newPublished(b)
	w := httptest.NewRecorder()
	p.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/env/manifests/php-8.2", nil))
	var m struct{ Manifests []struct{ Digest string } }
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	w = httptest.NewRecorder()
	p.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/env/manifests/"+m.Manifests[0].Digest, nil))
	var man struct{ Layers []struct{ Digest string } }
	_ = json.Unmarshal(w.Body.Bytes(), &man)
	benchGet(b, p.handler, "/v2/env/blobs/"+man.Layers[len(man.Layers)-1].Digest, "")
}
