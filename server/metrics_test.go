package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/test/fixtures"
)

// TestMetricsCountCompositions: /metrics tells new combinations from
// cached ones and failures, as a first GET, a repeat and an unsatisfiable
// tag produce them.
func TestMetricsCountCompositions(t *testing.T) {
	st := fixtures.NewStores(t)
	srv := httptest.NewServer(server.New(server.DefaultConfig(),
		server.Deps{Catalog: st.Catalog, Blobs: st.Blobs, Log: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, want := range []struct {
		path   string
		status int
	}{
		{"/v2/env/manifests/php-8.2_node-20", 200},
		{"/v2/env/manifests/php-8.2_node-20", 200},
		{"/v2/env/manifests/php-8.2_node-20", 200},
		{"/v2/env/manifests/php-99", 404},
	} {
		if code, body := get(want.path); code != want.status {
			t.Fatalf("GET %s: %d %s, want %d", want.path, code, body, want.status)
		}
	}
	_, metrics := get("/metrics")
	for _, line := range []string{
		`envreg_compositions_total{result="composed"} 1`,
		`envreg_compositions_total{result="cached"} 2`,
		`envreg_compositions_total{result="failed"} 1`,
		"# TYPE envreg_composition_seconds_total counter",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, metrics)
		}
	}
	if strings.Contains(metrics, "envreg_composition_seconds_total 0\n") {
		t.Errorf("/metrics counts no composition time:\n%s", metrics)
	}
}
