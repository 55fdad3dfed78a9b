package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/test/fixtures"
)

// BenchmarkWarmManifest: a warm manifest GET by tag through the whole
// server (middleware, metrics, routing, the registry), in process: what
// instrumentation adds to the hot path shows here.
func BenchmarkWarmManifest(b *testing.B) {
	st := fixtures.NewStores(b)
	h := server.New(server.DefaultConfig(), server.Deps{Catalog: st.Catalog, Blobs: st.Blobs, Log: slog.New(slog.DiscardHandler)}).Handler()
	req := httptest.NewRequest(http.MethodGet, "/v2/env/manifests/php-8.2_node-20", nil)
	req.RemoteAddr = "192.0.2.1:4711"
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
