package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envreg/envreg/manifestgen"
)

// metrics counts requests and bytes per route kind and status class, and
// exposes them in the Prometheus text format at /metrics. Hand-written to
// avoid a client library for a handful of counters.
type metrics struct {
	mu       sync.Mutex
	requests map[metricKey]uint64
	bytes    map[string]uint64
	seconds  map[string]float64
	// composer's counters are read at scrape time (nil: none).
	composer *manifestgen.Composer
	// connections counts open connections once Serve runs.
	connections atomic.Pointer[limitListener]
}

type metricKey struct {
	route  string
	method string
	status int
}

func newMetrics() *metrics {
	return &metrics{requests: map[metricKey]uint64{}, bytes: map[string]uint64{}, seconds: map[string]float64{}}
}

// routeKind classifies a path without keeping unbounded label values.
func routeKind(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "base"
	case path == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(path, "/v2/") && strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.HasPrefix(path, "/v2/") && strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.HasPrefix(path, "/v2/") && strings.HasSuffix(path, "/tags/list"):
		return "tags"
	case path == "/healthz" || path == "/metrics":
		return "ops"
	default:
		return "other"
	}
}

func (m *metrics) observe(r *http.Request, status int, n int64, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	route := routeKind(r.URL.Path)
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		method = "other" // clients choose methods: keep the label set bounded
	}
	m.mu.Lock()
	m.requests[metricKey{route, method, status}]++
	m.bytes[route] += uint64(n)
	m.seconds[route] += d.Seconds()
	m.mu.Unlock()
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	var b strings.Builder
	b.WriteString("# HELP envreg_http_requests_total HTTP requests by route, method and status.\n# TYPE envreg_http_requests_total counter\n")
	keys := make([]metricKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b metricKey) int {
		return strings.Compare(fmt.Sprint(a.route, a.method, a.status), fmt.Sprint(b.route, b.method, b.status))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "envreg_http_requests_total{route=%q,method=%q,status=\"%d\"} %d\n", k.route, k.method, k.status, m.requests[k])
	}
	b.WriteString("# HELP envreg_http_response_bytes_total Response body bytes by route.\n# TYPE envreg_http_response_bytes_total counter\n")
	for _, route := range slices.Sorted(maps.Keys(m.bytes)) {
		fmt.Fprintf(&b, "envreg_http_response_bytes_total{route=%q} %d\n", route, m.bytes[route])
	}
	b.WriteString("# HELP envreg_http_request_seconds_total Time spent serving requests by route.\n# TYPE envreg_http_request_seconds_total counter\n")
	for _, route := range slices.Sorted(maps.Keys(m.seconds)) {
		fmt.Fprintf(&b, "envreg_http_request_seconds_total{route=%q} %g\n", route, m.seconds[route])
	}
	m.mu.Unlock()
	if m.composer != nil {
		st := m.composer.Stats()
		b.WriteString("# HELP envreg_compositions_total Manifest requests by tag to stacks, by outcome: cached (composed before, in this catalog generation), composed (resolved, synthesized and stored now), failed.\n# TYPE envreg_compositions_total counter\n")
		fmt.Fprintf(&b, "envreg_compositions_total{result=\"cached\"} %d\n", st.Cached)
		fmt.Fprintf(&b, "envreg_compositions_total{result=\"composed\"} %d\n", st.Composed)
		fmt.Fprintf(&b, "envreg_compositions_total{result=\"failed\"} %d\n", st.Failed)
		b.WriteString("# HELP envreg_composition_seconds_total Time spent composing new combinations (resolve, synthesize, store durably).\n# TYPE envreg_composition_seconds_total counter\n")
		fmt.Fprintf(&b, "envreg_composition_seconds_total %g\n", st.ComposeTime.Seconds())
	}
	if l := m.connections.Load(); l != nil {
		b.WriteString("# HELP envreg_http_connections_open Open client connections.\n# TYPE envreg_http_connections_open gauge\n")
		fmt.Fprintf(&b, "envreg_http_connections_open %d\n", l.open.Load())
		if l.slots != nil {
			b.WriteString("# HELP envreg_http_connections_max The cap on open client connections (--max-connections).\n# TYPE envreg_http_connections_max gauge\n")
			fmt.Fprintf(&b, "envreg_http_connections_max %d\n", cap(l.slots))
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}
