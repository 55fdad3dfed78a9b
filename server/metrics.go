package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/server/errcode"
)

// Metrics, with the Prometheus client library; each Server has its own
// registry, exposed at /metrics. Every label takes values from a fixed set
// (route kinds, methods, statuses, outcomes, error kinds, backend
// operations), never from a client's input, so random names and tags do not
// add series. The names:
//
//	envreg_http_requests_total{route,method,status}          counter
//	envreg_http_request_duration_seconds{route,method}       histogram
//	envreg_http_response_bytes_total{route}                  counter; route="blob" is the blob bytes
//	                                                         served (what a node downloaded)
//	envreg_http_connections_open, envreg_http_connections_max   gauges
//	envreg_upload_requests_in_progress                       gauge: upload bodies being received
//	envreg_compositions_total{result="cached|composed|failed"}  counter: manifest requests by tag
//	envreg_composition_duration_seconds                      histogram: resolving, synthesizing and
//	                                                         storing a new combination
//	envreg_resolution_failures_total{reason}                 counter; reason is the error kind
//	                                                         (unsatisfiable, conflict, overlap,
//	                                                         no_platform, unknown_package, …)
//	envreg_catalog_generation                                gauge: the generation served
//	envreg_catalog_reload_duration_seconds                   histogram: loading a new generation
//	envreg_backend_operations_total{backend,op,result}        counter: Redis commands, S3 requests,
//	                                                         local store operations; result ok,
//	                                                         not_found, unavailable or error
//	envreg_backend_operation_duration_seconds{backend,op}     histogram
//	go_*, process_*                                          the Go runtime and the process
type Metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bytes       *prometheus.CounterVec
	composed    *prometheus.CounterVec
	composeTime prometheus.Histogram
	failures    *prometheus.CounterVec
	reloads     prometheus.Histogram
	backendOps  *prometheus.CounterVec
	backendTime *prometheus.HistogramVec
	uploading   prometheus.Gauge

	// perRequest caches the metrics of each route, method and status seen
	// (requestKey -> *requestMetrics), so the hot path does one lookup and
	// no label hashing; composedBy the three outcome counters.
	perRequest sync.Map
	composedBy map[string]prometheus.Counter
}

type requestMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
	bytes    prometheus.Counter
}

type requestKey struct {
	route, method string
	status        int
}

// methods are the method label values (routeKind gives the route ones).
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, "other"}

// NewMetrics returns a Server's metrics; give it to the storage backends
// (Backend, Reload) before the server exists, then in Deps.Metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), composedBy: map[string]prometheus.Counter{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_http_requests_total",
		Help: "HTTP requests by route kind, method and status."}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "envreg_http_request_duration_seconds",
		Help:    "Time to serve a request (until the body was written) by route kind and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"route", "method"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_http_response_bytes_total",
		Help: `Response body bytes by route kind; route="blob" counts the blob bytes served.`}, []string{"route"})
	m.composed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_compositions_total",
		Help: "Manifest requests by tag to stacks, by outcome: cached (composed before, in this catalog generation), composed (resolved, synthesized and stored now), failed."}, []string{"result"})
	m.composeTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "envreg_composition_duration_seconds",
		Help:    "Time to compose a new combination: resolve, synthesize, store durably.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_resolution_failures_total",
		Help: "Compositions that failed, by reason (the error kind: unsatisfiable, conflict, overlap, no_platform, unknown_package, …)."}, []string{"reason"})
	m.reloads = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "envreg_catalog_reload_duration_seconds",
		Help:    "Time to load a new catalog generation.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}})
	m.backendOps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_backend_operations_total",
		Help: "Storage backend operations by backend, operation and result (ok, not_found, unavailable, error)."}, []string{"backend", "op", "result"})
	m.backendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "envreg_backend_operation_duration_seconds",
		Help:    "Storage backend operation time by backend and operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"backend", "op"})
	m.uploading = prometheus.NewGauge(prometheus.GaugeOpts{Name: "envreg_upload_requests_in_progress",
		Help: "Blob upload requests (POST, PATCH, PUT of upload sessions) this server is receiving now. Sessions started and finished are envreg_http_requests_total{route=\"upload\"} by method and status."})
	m.reg.MustRegister(m.uploading, m.requests, m.duration, m.bytes, m.composed, m.composeTime, m.failures, m.reloads,
		m.backendOps, m.backendTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"cached", "composed", "failed"} {
		m.composedBy[r] = m.composed.WithLabelValues(r) // present from the start, at 0
	}
	return m
}

// Backend returns the observer a storage backend calls after each operation
// (catalog.Observers.Op, a blob store's WithObserver): op is from a fixed set per backend (Redis
// command names, S3 request methods, store operations).
func (m *Metrics) Backend(backend string) func(op string, d time.Duration, err error) {
	return func(op string, d time.Duration, err error) { m.backendOp(backend, op, d, err) }
}

// Reload returns the observer a catalog store calls after loading a new
// generation (catalog.Observers.Reload).
func (m *Metrics) Reload() func(d time.Duration) {
	return func(d time.Duration) { m.reloads.Observe(d.Seconds()) }
}

// routeKind classifies a path without keeping unbounded label values.
func routeKind(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "base"
	case path == "/v2/_catalog":
		return "catalog"
	case !strings.HasPrefix(path, "/v2/"):
		switch {
		case strings.HasPrefix(path, "/api/"):
			return "api"
		case path == "/" || strings.HasPrefix(path, "/packages/") || strings.HasPrefix(path, "/static/"):
			return "page"
		case path == "/healthz" || path == "/readyz" || path == "/metrics":
			return "ops"
		case strings.HasPrefix(path, "/auth/"):
			return "token"
		}
		return "other"
	case strings.Contains(path, "/blobs/uploads"):
		return "upload"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.HasSuffix(path, "/tags/list"):
		return "tags"
	case strings.Contains(path, "/referrers/"):
		return "referrers"
	}
	return "other"
}

// statusLabels are the status label values: the code for 100-599 (what
// the server sends), else "other".
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = "other"
		if i >= 100 {
			l[i] = strconv.Itoa(i)
		}
	}
	return l
}()

func statusText(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return "other"
}

// observe records one request.
func (m *Metrics) observe(r *http.Request, status int, n int64, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	key := requestKey{routeKind(r.URL.Path), r.Method, status}
	rm, ok := m.perRequest.Load(key)
	if !ok {
		rm = m.newRequestMetrics(key)
	}
	x := rm.(*requestMetrics)
	x.requests.Inc()
	x.duration.Observe(d.Seconds())
	x.bytes.Add(float64(n))
}

// newRequestMetrics binds the label values of key, with methods outside
// the fixed set as "other": clients choose methods, and the cache must
// stay bounded too.
func (m *Metrics) newRequestMetrics(key requestKey) any {
	if !slices.Contains(methods, key.method) {
		key.method = "other"
		if rm, ok := m.perRequest.Load(key); ok {
			return rm
		}
	}
	rm, _ := m.perRequest.LoadOrStore(key, &requestMetrics{
		requests: m.requests.WithLabelValues(key.route, key.method, statusText(key.status)),
		duration: m.duration.WithLabelValues(key.route, key.method),
		bytes:    m.bytes.WithLabelValues(key.route),
	})
	return rm
}

// composition records a manifest request by tag (manifestgen.Composer's
// observer): cached, composed (with its time) or failed (with its reason).
func (m *Metrics) composition(cached bool, d time.Duration, err error) {
	switch {
	case err != nil:
		m.composedBy["failed"].Inc()
		f, ok := errcode.Classify(err)
		if !ok {
			return
		}
		m.failures.WithLabelValues(string(f.Kind)).Inc()
	case cached:
		m.composedBy["cached"].Inc()
	default:
		m.composedBy["composed"].Inc()
		m.composeTime.Observe(d.Seconds())
	}
}

// backendOp records one storage backend operation.
func (m *Metrics) backendOp(backend, op string, d time.Duration, err error) {
	m.backendOps.WithLabelValues(backend, op, resultOf(err)).Inc()
	m.backendTime.WithLabelValues(backend, op).Observe(d.Seconds())
}

// resultOf classifies a backend operation's error.
func resultOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, layerstore.ErrNotFound):
		return "not_found"
	case errors.Is(err, catalog.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "unavailable"
	}
	return "error"
}

// watchCatalog exposes the generation a reader serves, read at scrape time.
func (m *Metrics) watchCatalog(r catalog.Reader) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "envreg_catalog_generation",
		Help: "The catalog generation this server serves."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		snap, err := r.Snapshot(ctx)
		if err != nil {
			return -1
		}
		return float64(snap.Generation)
	}))
}

// watchConnections exposes the listener's open connections and cap.
func (m *Metrics) watchConnections(l *limitListener) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "envreg_http_connections_open",
		Help: "Open client connections."}, func() float64 { return float64(l.open.Load()) }))
	if l.slots != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "envreg_http_connections_max",
			Help: "The cap on open client connections (--max-connections)."}, func() float64 { return float64(cap(l.slots)) }))
	}
}

// handler serves /metrics.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// uploadStarted counts an upload request in progress when r is one; the
// returned func ends it.
func (m *Metrics) uploadStarted(r *http.Request) func() {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete || routeKind(r.URL.Path) != "upload" {
		return func() {}
	}
	m.uploading.Inc()
	return m.uploading.Dec
}
