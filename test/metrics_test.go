package test

import (
	"bufio"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// metricValue sums the samples of /metrics whose line starts with prefix
// (a name and, optionally, the start of its labels).
func metricValue(t *testing.T, s *server, prefix string) (float64, bool) {
	t.Helper()
	_, body := s.get(t, "/metrics", "")
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	return sum, found
}

// TestBackendMetrics: a pull through a real server shows up as storage
// operations of each configured backend, with latencies, and the catalog
// load as a reload (issue 19, item 1).
func TestBackendMetrics(t *testing.T) {
	check := func(t *testing.T, s *server, backends ...string) {
		pullIndex(t, s, "env:php-8.2_node-20")
		for _, b := range backends {
			if v, ok := metricValue(t, s, `envreg_backend_operations_total{backend="`+b+`"`); !ok || v == 0 {
				t.Errorf("no %s operations counted after a pull (%v)", b, v)
			}
			if v, ok := metricValue(t, s, `envreg_backend_operation_duration_seconds_count{backend="`+b+`"`); !ok || v == 0 {
				t.Errorf("no %s latencies observed after a pull", b)
			}
		}
		if v, ok := metricValue(t, s, "envreg_catalog_reload_duration_seconds_count"); !ok || v < 1 {
			t.Errorf("catalog reloads: %v, want at least the load at start", v)
		}
		if v, ok := metricValue(t, s, "envreg_catalog_generation"); !ok || v < 1 {
			t.Errorf("envreg_catalog_generation %v", v)
		}
		if v, _ := metricValue(t, s, `envreg_http_response_bytes_total{route="blob"}`); v == 0 {
			t.Error("no blob bytes served counted after a pull")
		}
	}
	t.Run("embedded", func(t *testing.T) {
		check(t, startServer(t, publishAll(t)), "fs")
	})
	t.Run("redis+s3", func(t *testing.T) {
		storage := startRemoteStores(t, "metrics").storage
		publishAllTo(t, storage)
		check(t, startServerWith(t, filepath.Join(t.TempDir(), "local"), storage...), "redis", "s3")
	})
}
