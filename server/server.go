// Package server composes envreg's HTTP APIs on one router and owns the
// http.Server: timeouts, middleware (request id, access log, panic
// recovery, metrics) and graceful shutdown. It depends on the domain
// packages and the API handlers; it never names a storage backend (those
// are chosen and injected by cmd/envreg).
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/server/registry"
)

// Config holds the HTTP server's settings.
type Config struct {
	// ReadHeaderTimeout bounds how long a client may take to send headers
	// (slow-loris protection).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight requests (blob downloads)
	// may run after shutdown begins.
	ShutdownTimeout time.Duration
	// MaxHeaderBytes bounds request headers.
	MaxHeaderBytes int
	// BodyTimeout bounds how long a client may take to send a request
	// body other than blob data (manifests, /api/v1, /auth/token), from
	// the end of its headers; 0: no bound. See limits.go.
	BodyTimeout time.Duration
	// StallTimeout drops a blob upload whose body, or any response whose
	// client, makes no progress for this long; 0: never.
	StallTimeout time.Duration
	// MaxConnections caps concurrent connections; clients beyond it wait
	// to be accepted (0: no cap).
	MaxConnections int
	// TLSCert and TLSKey are PEM files; when both are set the server speaks
	// HTTPS only.
	TLSCert, TLSKey string
}

// Defaults of the transport limits (limits.go). A manifest body is at
// most 4 MiB: a minute is enough at 70 KB/s. A minute without progress
// is nginx's client_body_timeout and send_timeout. Each connection is a
// file descriptor, and a blob download holds a second one; Go raises the
// soft descriptor limit to the hard one at start-up (often 2^19 or more).
const (
	DefaultBodyTimeout    = time.Minute
	DefaultStallTimeout   = time.Minute
	DefaultMaxConnections = 4096
)

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ShutdownTimeout:   30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BodyTimeout:       DefaultBodyTimeout,
		StallTimeout:      DefaultStallTimeout,
		MaxConnections:    DefaultMaxConnections,
	}
}

// Deps are the backends the server serves from.
type Deps struct {
	Catalog catalog.Store
	Blobs   layerstore.Store
	Log     *slog.Logger
	// Uploads keeps blob upload sessions of the push API, committing them
	// to Blobs; nil turns the push side off (every write is 405
	// UNSUPPORTED).
	Uploads uploads.Sessions
	// Ingest registers images pushed to packages/<name>:<semver> as
	// package versions; nil stores them as ordinary images only.
	Ingest registry.PackageIngester
	// Auth decides who may pull, push and delete (nil: everyone).
	Auth registry.Authorizer
	// APIAuth authorizes the provisioning API and the catalog page with
	// the registry's users, tokens and ACL (auth.Auth). Nil leaves them to
	// clients on this host (api.LoopbackOnly), the rule while no
	// authentication is configured.
	APIAuth api.Authorizer
	// Token serves the token endpoint of the Docker token flow at
	// TokenPath (nil: none).
	Token     http.Handler
	TokenPath string
	// MountWithoutFrom lets cross-repository mounts without "from" link
	// any stored blob (turn off when pulls need credentials).
	MountWithoutFrom bool
	// Sendfile says how blob bodies are sent (registry.SendfileMode; the
	// zero value is SendfileAuto).
	Sendfile registry.SendfileMode
	// Budget bounds the new compositions each client can make the server
	// store (nil: unlimited).
	Budget *registry.Budget
	// Metrics are the server's metrics (nil: new ones). Made first, they
	// also observe the storage backends (Metrics.Backend, Metrics.Reload).
	Metrics *Metrics
	// Progress, when set, says what background work is under way (a
	// seed still publishing); /readyz shows it and stays ready, and a
	// manifest not found mentions it.
	Progress func() string
}

// Server is envreg's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	metrics *Metrics
	// watchOnce registers the listener's gauges once.
	watchOnce sync.Once
}

// New wires the APIs over deps.
func New(cfg Config, deps Deps) *Server {
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, metrics: deps.Metrics}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.metrics.watchCatalog(deps.Catalog)
	composer := manifestgen.NewComposer(deps.Catalog, deps.Blobs, manifestgen.WithObserver(s.metrics.composition))
	opts := []registry.Option{registry.WithLogger(log), registry.WithMountWithoutFrom(deps.MountWithoutFrom),
		registry.WithSendfile(deps.Sendfile), registry.WithCompositionBudget(deps.Budget), registry.WithProgress(deps.Progress)}
	if deps.Uploads != nil {
		opts = append(opts, registry.WithPush(deps.Catalog, deps.Blobs, deps.Uploads))
	}
	if deps.Ingest != nil {
		opts = append(opts, registry.WithIngester(deps.Ingest))
	}
	if deps.Auth != nil {
		opts = append(opts, registry.WithAuthorizer(deps.Auth))
	}
	reg := registry.New(deps.Catalog, deps.Catalog, deps.Blobs, composer, opts...)

	// No path cleaning: a path with dot segments gets the error for the
	// path as sent, never a redirect to another resource.
	r := mux.NewRouter().SkipClean(true)
	reg.Register(r) // first: mux tries routes in order, and /v2/ is the hot path
	// Liveness: the process serves HTTP. Whether it can do its work is
	// /readyz.
	r.Handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", s.readiness(deps)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metrics.handler()).Methods(http.MethodGet)
	if deps.Token != nil && deps.TokenPath != "" {
		r.Handle(deps.TokenPath, deps.Token).Methods(http.MethodGet, http.MethodPost)
	}
	apiOpts := []api.Option{api.WithLogger(log)}
	if deps.APIAuth != nil {
		apiOpts = append(apiOpts, api.WithAuthorizer(deps.APIAuth))
	}
	api.New(deps.Catalog, deps.Catalog, composer, apiOpts...).Register(r)
	r.NotFoundHandler = http.HandlerFunc(registry.NotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(registry.MethodNotAllowed)

	// mux runs Use middleware only for matched routes, so the middleware
	// wraps the whole router instead.
	s.handler = s.middleware(r)
	return s
}

// Handler returns the server's root handler (for httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish within ShutdownTimeout, and
// returns nil on a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if (s.cfg.TLSCert == "") != (s.cfg.TLSKey == "") {
		return errors.New("TLS needs both a certificate and a key")
	}
	limited := newLimitListener(ln, s.cfg.MaxConnections)
	ln = limited
	s.watchOnce.Do(func() { s.metrics.watchConnections(limited) })
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnState:         limited.connState,
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statusWriter records the status and bytes written for logs and
// metrics, and moves the write deadline as bytes go out (limits.go).
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	progress progress
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.bytes+int64(len(p)) > stallChunk {
		w.progress.extend() // a small response never waits for the client: the socket buffers take it
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's io.ReaderFrom reachable, so blob
// bodies copied by http.ServeContent from a file go out with sendfile(2)
// instead of through a user-space buffer, in chunks between which the
// write deadline moves.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if w.progress.dl != nil && w.progress.stall > 0 {
		n, err = readFromChunked(w.ResponseWriter, r, w.progress.extend)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		sw := &statusWriter{ResponseWriter: w}
		defer s.metrics.uploadStarted(r)()
		if dl, ok := w.(deadliner); ok {
			// No write deadline while the handler works, nor for a small
			// response; a large one sets it (limits.go). A previous
			// request on the connection may have left one.
			_ = dl.SetWriteDeadline(time.Time{})
			sw.progress = progress{dl: dl, stall: s.cfg.StallTimeout}
			r = s.boundBody(dl, r)
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic serving request", "request_id", id, "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if sw.status == 0 {
					sw.Header().Set("Content-Type", "application/json")
					sw.WriteHeader(http.StatusInternalServerError)
					_, _ = sw.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`))
				}
			}
			d := time.Since(start)
			s.metrics.observe(r, sw.status, sw.bytes, d)
			s.log.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "bytes", sw.bytes, "duration", d, "remote", r.RemoteAddr,
				"user_agent", r.UserAgent())
		}()
		next.ServeHTTP(sw, r)
	})
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
