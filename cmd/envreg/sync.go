package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
)

// syncSettings are the flags of `envreg sync`.
type syncSettings struct {
	once          bool
	every, jitter time.Duration
	metricsAddr   string
	logLevel      string
	logFormat     string
	cacheDir      string
	debianSources listFlag
	registry      string
	registryUser  string
	passwordFile  string
	checkUpstream bool
	rebuild       bool
}

func syncFlags(fs *flag.FlagSet) *syncSettings {
	s := &syncSettings{}
	fs.BoolVar(&s.once, "once", false, "run one round and exit: 0 when every version is published or present, 1 when anything failed (the default without --every)")
	fs.DurationVar(&s.every, "every", 0, "run as a long-lived job: a round, then the next one this long after the previous one started (e.g. 1h), until SIGTERM")
	s.jitter = -1 // a tenth of --every
	fs.Func("jitter", "move each wait by a random amount up to this much earlier or later, so replicas do not hit the archive together (default: a tenth of --every; 0: none)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err == nil && d < 0 {
			err = errors.New("negative")
		}
		s.jitter = d
		return err
	})
	fs.StringVar(&s.metricsAddr, "metrics-addr", "", "serve the job's Prometheus metrics on this address (host:port) at /metrics (envreg_sync_*)")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info (a line per step and per round), warn or error")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&s.cacheDir, "cache-dir", "", "download cache for Debian packages (default $XDG_CACHE_HOME/envreg or ~/.cache/envreg)")
	fs.Var(&s.debianSources, "debian-source", "apt source line for Debian recipes that name none, e.g. 'deb http://mirror/debian bookworm main' (repeatable; default: this machine's apt sources)")
	fs.BoolVar(&s.checkUpstream, "check-upstream", true, "after each round, ask the archive whether the Debian versions in the catalog are still there (this refreshes its indexes every round); one that is gone is logged, kept and never a failure")
	fs.BoolVar(&s.rebuild, "rebuild", true, "after each round, resolve every Debian version in the catalog for all its platforms (no download) and publish a rebuild (VERSION+META.rN) of each whose packages changed upstream while its own version stayed (a library's security update); not with --registry")
	fs.StringVar(&s.registry, "registry", "", "publish to this envreg over the network instead of a local store (as envreg publish --registry): host[:port], http://host:port or https://host; what it has is read from its packages/<name>:<version> tags")
	fs.StringVar(&s.registryUser, "registry-user", "", "user for --registry (password from ENVREG_REGISTRY_PASSWORD or --registry-password-file; default: the Docker config of docker login)")
	fs.StringVar(&s.passwordFile, "registry-password-file", "", "file holding the password of --registry-user")
	return s
}

// runSync is `envreg sync`: the publishing job. Each round publishes every
// recipe version the catalog lacks (packages.Syncer) and logs one line.
func runSync(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "sync")
	store := storageFlags(fs)
	store.layerFormFlags(fs)
	set := syncFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if set.once && set.every > 0 {
		return usagef("give --once or --every, not both")
	}
	if set.every < 0 {
		return usagef("--every %s: want a positive duration", set.every)
	}
	log, err := newLogger(env.stderr, set.logLevel, set.logFormat)
	if err != nil {
		return err
	}
	sources := fs.Args()
	if len(sources) == 0 {
		sources = []string{"bundled"}
	}
	syncer := &packages.Syncer{What: "sync", Log: log, CheckUpstream: set.checkUpstream, Rebuild: set.rebuild && set.registry == ""}
	cleanup, err := syncTarget(ctx, syncer, store, set, log)
	if err != nil {
		return err
	}
	defer cleanup()
	metrics := newSyncMetrics()
	if set.metricsAddr != "" {
		stop, err := serveMetrics(set.metricsAddr, metrics.registry, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if set.every == 0 {
		return syncRound(ctx, syncer, sources, metrics, log)
	}
	return syncEvery(ctx, syncer, sources, set, metrics, log)
}

// syncTarget points s at the store of the storage flags, or at the
// remote registry of --registry.
func syncTarget(ctx context.Context, s *packages.Syncer, store *storage, set *syncSettings, log *slog.Logger) (cleanup func(), err error) {
	if set.registry != "" {
		if store.catalog != "" || store.blobs != "" {
			return nil, usagef("--registry publishes over the network; it does not take --catalog or --blobs")
		}
		t, err := parseRemote(set.registry, set.registryUser, set.passwordFile)
		if err != nil {
			return nil, err
		}
		return remoteSync(ctx, s, t, set, log), nil
	}
	b, err := store.open(ctx, log)
	if err != nil {
		return nil, err
	}
	s.Catalog = b.catalog
	s.NewPublisher = func() (*packages.Publisher, error) {
		return &packages.Publisher{Blobs: b.blobs, Catalog: b.catalog, Log: log, TempDir: store.tempDir(),
			CacheDir: set.cacheDir, DebianSources: set.debianSources, Uncompressed: store.uncompressed, Zstd: store.zstd}, nil
	}
	return func() { b.Close() }, nil
}

// syncEvery runs rounds until ctx ends; a failed round is logged and
// counted, and the next one comes all the same.
func syncEvery(ctx context.Context, s *packages.Syncer, sources []string, set *syncSettings, m *syncMetrics, log *slog.Logger) error {
	jitter := set.jitter
	if jitter < 0 {
		jitter = set.every / 10
	}
	log.Info("sync job started", "every", set.every, "jitter", jitter, "recipes", sources)
	for {
		start := time.Now()
		_ = syncRound(ctx, s, sources, m, log) // logged and counted
		wait := time.Until(start.Add(set.every))
		if jitter > 0 {
			wait += time.Duration(rand.Int64N(int64(2*jitter)+1)) - jitter
		}
		select {
		case <-ctx.Done():
			log.Info("sync job stopped")
			return nil
		case <-time.After(max(wait, 0)):
		}
	}
}

// syncRound loads the recipes anew (edits are picked up), runs one round,
// logs its line and updates the metrics. It fails when anything failed.
func syncRound(ctx context.Context, s *packages.Syncer, sources []string, m *syncMetrics, log *slog.Logger) error {
	recipes, err := loadRecipeSources(sources)
	if err == nil {
		var rep packages.SyncReport
		rep, err = s.Round(ctx, recipes)
		m.observe(rep, err)
		if err == nil {
			log.Info("sync round", "published", len(rep.Published), "present", rep.Present, "raced", len(rep.Raced),
				"failed", len(rep.Failed), "stopped", rep.Stopped, "took", roundDuration(rep.Took), "gone_upstream", len(rep.GoneUpstream),
				"rebuilt", len(rep.Rebuilt))
			if len(rep.Failed) > 0 {
				err = fmt.Errorf("%d of %d steps failed, the first: %s: %w", len(rep.Failed), rep.Steps, rep.Failed[0].Step, rep.Failed[0].Err)
			}
			return err
		}
	} else {
		m.failures.WithLabelValues("recipe").Inc()
	}
	log.Error("sync round failed", "err", err)
	return err
}

// loadRecipeSources loads "bundled" (the recipes built into the binary),
// recipe files and directories of recipes.
func loadRecipeSources(sources []string) ([]packages.Recipe, error) {
	var all []packages.Recipe
	for _, src := range sources {
		var recipes []packages.Recipe
		var err error
		if src == "bundled" {
			recipes, err = packages.Bundled()
		} else {
			recipes, err = loadRecipeArg(src)
		}
		if err != nil {
			return nil, fmt.Errorf("recipes %s: %w", src, err)
		}
		all = append(all, recipes...)
	}
	return all, nil
}

// syncMetrics are the job's own Prometheus metrics.
type syncMetrics struct {
	registry    *prometheus.Registry
	lastSuccess prometheus.Gauge
	lastRound   prometheus.Gauge
	duration    prometheus.Gauge
	rounds      *prometheus.CounterVec
	published   prometheus.Counter
	raced       prometheus.Counter
	rebuilt     prometheus.Counter
	failures    *prometheus.CounterVec
	gone        prometheus.Gauge
}

func newSyncMetrics() *syncMetrics {
	m := &syncMetrics{
		registry:    prometheus.NewRegistry(),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "envreg_sync_last_success_timestamp_seconds", Help: "When the last round that failed nowhere ended (Unix time; 0: none yet)."}),
		lastRound:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "envreg_sync_last_round_timestamp_seconds", Help: "When the last round ended, failed or not (Unix time)."}),
		duration:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "envreg_sync_last_round_duration_seconds", Help: "How long the last round took."}),
		rounds:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_sync_rounds_total", Help: "Rounds run, by result: ok, failed or stopped (by SIGTERM)."}, []string{"result"}),
		published:   prometheus.NewCounter(prometheus.CounterOpts{Name: "envreg_sync_versions_published_total", Help: "Package versions (with the platforms of one step) this job recorded in the catalog."}),
		raced:       prometheus.NewCounter(prometheus.CounterOpts{Name: "envreg_sync_versions_raced_total", Help: "Versions another job published while this one was about to (the catalog's exclusive publish decided)."}),
		rebuilt:     prometheus.NewCounter(prometheus.CounterOpts{Name: "envreg_sync_rebuilds_total", Help: "Rebuilds this job published: versions whose Debian packages changed upstream while their own version stayed (also counted in envreg_sync_versions_published_total)."}),
		gone:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "envreg_sync_versions_gone_upstream", Help: "Versions in the catalog whose Debian package the archive no longer has, as of the last round (kept; never a failure)."}),
		failures:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envreg_sync_failures_total", Help: "Failed steps, by reason: upstream (the archive lacks a package or version), recipe, catalog, conflict (the catalog has the version with other content), publish (download, build, blob store), deliver (the push to --registry)."}, []string{"reason"}),
	}
	for _, r := range []string{"upstream", "recipe", "catalog", "conflict", "publish", "deliver"} {
		m.failures.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "failed", "stopped"} {
		m.rounds.WithLabelValues(r)
	}
	m.registry.MustRegister(m.lastSuccess, m.lastRound, m.duration, m.rounds, m.published, m.raced, m.rebuilt, m.failures, m.gone)
	return m
}

// observe records a round (err: the round could not run).
func (m *syncMetrics) observe(rep packages.SyncReport, err error) {
	now := float64(time.Now().Unix())
	m.lastRound.Set(now)
	m.duration.Set(rep.Took.Seconds())
	m.published.Add(float64(len(rep.Published)))
	m.raced.Add(float64(len(rep.Raced)))
	m.rebuilt.Add(float64(len(rep.Rebuilt)))
	if err == nil && !rep.Stopped {
		m.gone.Set(float64(len(rep.GoneUpstream)))
	}
	for _, f := range rep.Failed {
		m.failures.WithLabelValues(f.Reason).Inc()
	}
	switch {
	case err != nil:
		reason := "recipe"
		if errors.Is(err, catalog.ErrUnavailable) {
			reason = "catalog"
		}
		m.failures.WithLabelValues(reason).Inc()
		m.rounds.WithLabelValues("failed").Inc()
	case len(rep.Failed) > 0:
		m.rounds.WithLabelValues("failed").Inc()
	case rep.Stopped:
		m.rounds.WithLabelValues("stopped").Inc()
	default:
		m.rounds.WithLabelValues("ok").Inc()
		m.lastSuccess.Set(now)
	}
}

// serveMetrics serves reg at /metrics on addr until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("sync metrics listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// roundDuration rounds d for a log line: to the millisecond, or the
// microsecond below a second (a round with nothing new).
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
