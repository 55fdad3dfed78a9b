package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/server/registry"
)

func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "serve")
	configFlag(fs)
	store := storageFlags(fs)
	addr := fs.String("addr", ":5000", "address to listen on (host:port; port 0 picks a free port)")
	addrFile := fs.String("addr-file", "", "write the address actually listened on to this file (for scripts and tests)")
	logLevel := fs.String("log-level", "info", "log level: debug (every request), info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	seed := fs.String("seed", "", "publish the recipes under this directory that the store does not have yet (\"bundled\": the recipes built into the binary), in the background while serving: newest versions and linux/amd64 first, progress in the log and /readyz; a second start publishes nothing")
	store.layerFormFlags(fs)
	seedWait := fs.Bool("seed-wait", false, "with --seed, publish everything before listening (the behaviour before background seeding)")
	cacheDir := fs.String("cache-dir", "", "download cache for Debian packages (default $XDG_CACHE_HOME/envreg or ~/.cache/envreg)")
	cfg := server.DefaultConfig()
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may run after SIGTERM")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "how long a client may take to send request headers")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", cfg.BodyTimeout, "how long a client may take to send a request body other than blob data (manifests, API and token requests); 0: no limit")
	fs.DurationVar(&cfg.StallTimeout, "stall-timeout", cfg.StallTimeout, "close a blob upload that receives no data, or a response (blob download) whose client reads nothing, for this long; 0: never")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most client connections open at once; more wait to be accepted (0: no limit; each takes a file descriptor, a blob download two)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	sendfile := fs.String("sendfile", "auto", "how blob bodies are sent: auto (sendfile(2), but bodies over 2 MiB to loopback clients, e.g. a proxy on this host, are copied), always, or never")
	budget := fs.Int("compose-budget", registry.DefaultBudget, "new compositions one client (TCP peer address) may cause per hour: a tag that resolves to an image not stored yet costs one, anything already stored nothing; beyond it 429 TOOMANYREQUESTS with Retry-After (0: unlimited)")
	push := pushFlags(fs)
	printCfg := fs.Bool("print-config", false, "print the effective configuration (defaults < --config file < ENVREG_* < flags) as YAML, credentials masked, and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := validateServe(fs); err != nil {
		return err
	}
	if *printCfg {
		return printConfig(env.stdout, fs)
	}
	sendfileMode, err := registry.ParseSendfileMode(*sendfile)
	if err != nil {
		return usagef("--sendfile: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %v", fs.Args())
	}
	log, err := newLogger(env.stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}

	metrics := server.NewMetrics()
	store.metrics = metrics
	b, err := store.open(ctx, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := adoptCompositions(ctx, b, log); err != nil {
		return err
	}
	seeding, err := newSeeder(ctx, env, b, store, log, *seed, *cacheDir, *seedWait)
	if err != nil {
		return err
	}
	ln, err := listen(ctx, b, store, log, *addr, *addrFile, sendfileMode)
	if err != nil {
		return err
	}
	deps := server.Deps{Catalog: b.catalog, Blobs: b.blobs, Log: log, Sendfile: sendfileMode, Budget: registry.NewBudget(*budget),
		Metrics: metrics, Progress: seeding.status}
	if err := push.setup(ctx, &deps, store, b, log); err != nil {
		ln.Close()
		return err
	}
	warnFileLimit(log, cfg.MaxConnections)
	start := time.Now()
	srv := server.New(cfg, deps)
	defer seeding.start(ctx)() // waits for the seeding to stop before the stores close
	err = srv.Serve(ctx, ln)
	log.Info("envreg stopped", "uptime", time.Since(start).Round(time.Second), "err", err)
	return err
}

// writeFileAtomic writes data to path via a temp file and rename, so a
// reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// listen listens on addr, writes the address to addrFile (if set) and logs
// that the registry serves.
func listen(ctx context.Context, b *backends, store *storage, log *slog.Logger, addr, addrFile string, sendfile registry.SendfileMode) (net.Listener, error) {
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, []byte(ln.Addr().String()+"\n")); err != nil {
			ln.Close()
			return nil, err
		}
	}
	catalogAt, blobsAt := store.describe()
	log.Info("envreg serving", "addr", ln.Addr().String(), "catalog", catalogAt, "blobs", blobsAt,
		"packages", len(snap.Names()), "generation", snap.Generation, "sendfile", sendfile.String(), "version", version())
	return ln, nil
}

// adoptCompositions gives the compositions of a store written before
// stacks kept marks their marks, once per store (maintenance.Adopt):
// without them a stack would no longer serve digests clients pinned.
func adoptCompositions(ctx context.Context, b *backends, log *slog.Logger) error {
	as, ok := b.catalog.(maintenance.AdoptionStore)
	if !ok {
		return nil
	}
	start := time.Now()
	n, err := maintenance.Adopt(ctx, as, time.Now(), false)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("adopted compositions stored before this version as pinned", "indexes", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// warnFileLimit warns when --max-connections cannot be reached: each
// connection takes a file descriptor and a blob download a second one, so
// past the process's open-file limit accepts and blob opens fail instead
// of clients waiting their turn.
func warnFileLimit(log *slog.Logger, maxConns int) {
	limit, ok := openFileLimit()
	if !ok || maxConns <= 0 {
		return
	}
	if need := 2*uint64(maxConns) + 64; limit < need {
		log.Warn("--max-connections is above what the open-file limit allows: each connection takes a file descriptor, a blob download two; raise the limit (ulimit -n, systemd LimitNOFILE=) or lower --max-connections",
			"max_connections", maxConns, "open_file_limit", limit, "needed", need)
	}
}
