package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envreg/envreg/layerstore/uploads/disk"
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
		"# TYPE envreg_composition_duration_seconds histogram",
		"envreg_composition_duration_seconds_count 1",
		`envreg_resolution_failures_total{reason="unsatisfiable"} 1`,
		`envreg_http_requests_total{method="GET",route="manifest",status="200"} 3`,
		"# TYPE envreg_http_request_duration_seconds histogram",
		"# TYPE go_goroutines gauge",
		"# TYPE process_open_fds gauge",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, metrics)
		}
	}
	if strings.Contains(metrics, "envreg_composition_duration_seconds_sum 0\n") {
		t.Errorf("/metrics counts no composition time:\n%s", metrics)
	}
}

// TestMetricsLabelsBounded: clients choose repository names, tags, digests
// and methods; none of them becomes a label value, so a flood of random
// requests adds no series.
func TestMetricsLabelsBounded(t *testing.T) {
	st := fixtures.NewStores(t)
	srv := httptest.NewServer(server.New(server.DefaultConfig(),
		server.Deps{Catalog: st.Catalog, Blobs: st.Blobs, Log: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	do := func(method, path string) string {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	series := func() map[string]bool {
		names := map[string]bool{}
		for _, line := range strings.Split(do("GET", "/metrics"), "\n") {
			if name, _, ok := strings.Cut(line, " "); ok && strings.HasPrefix(line, "envreg_") {
				names[name] = true
			}
		}
		return names
	}
	round := func(i int) {
		r := fmt.Sprintf("%d-%x", i, i*7919)
		do("GET", "/v2/env/manifests/php-8.2_node-20")
		do("GET", "/v2/env/manifests/pkg"+r)
		do("GET", "/v2/repo"+r+"/manifests/tag"+r)
		do("GET", "/v2/env/blobs/sha256:"+strings.Repeat(fmt.Sprintf("%x", i%16), 64))
		do("HEAD", "/v2/x"+r+"/tags/list")
		do("PROPFIND"+fmt.Sprint(i%3), "/v2/env/manifests/latest")
		do("GET", "/no/such/"+r)
		do("GET", "/api/v1/stacks/s"+r)
	}
	round(0)
	round(1)
	series() // the scrape itself is a request, counted from the next one
	before := series()
	for i := 2; i < 200; i++ {
		round(i)
	}
	after := series()
	for name := range after {
		if !before[name] {
			t.Errorf("a new series after 198 rounds of random names, tags, digests and methods: %s", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("198 rounds of random requests took the envreg_ series from %d to %d", len(before), len(after))
	}
}

// TestReadyWhileSeeding: background work (a seed still publishing) shows in
// /readyz, which stays ready; /healthz is liveness only.
func TestReadyWhileSeeding(t *testing.T) {
	st := fixtures.NewStores(t)
	srv := httptest.NewServer(server.New(server.DefaultConfig(), server.Deps{Catalog: st.Catalog, Blobs: st.Blobs,
		Log: slog.New(slog.DiscardHandler), Progress: func() string { return "seeding: 3 of 12 package versions published" }}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ready":true`) || !strings.Contains(string(body), "3 of 12") {
		t.Errorf("/readyz while seeding: %d %s", resp.StatusCode, body)
	}
}

// TestMetricsUploadsInProgress: an upload body being received shows in
// envreg_upload_requests_in_progress until it ends.
func TestMetricsUploadsInProgress(t *testing.T) {
	st := fixtures.NewStores(t)
	sessions, err := disk.New(t.TempDir(), st.Blobs, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.DefaultConfig(), server.Deps{Catalog: st.Catalog, Blobs: st.Blobs,
		Uploads: sessions, Log: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	gauge := func() string {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "envreg_upload_requests_in_progress "); ok {
				return v
			}
		}
		return "missing"
	}
	resp, err := http.Post(srv.URL+"/v2/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+loc, pr)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := pw.Write([]byte("first bytes")); err != nil {
		t.Fatal(err)
	}
	// The body stays open: wait until the server is receiving it.
	waitGauge := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := gauge(); got != want; got = gauge() {
			if time.Now().After(deadline) {
				t.Fatalf("envreg_upload_requests_in_progress %s after 10s, want %s", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGauge("1")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitGauge("0") // the handler's deferred end may follow the answer by a moment
}
