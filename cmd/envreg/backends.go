package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	"github.com/envreg/envreg/catalog/redisstore"
	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/layerstore/s3"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/server"
)

// storage is where a command keeps its state: the embedded store under
// --data by default, or Redis (catalog and manifests) and S3 (blobs).
type storage struct {
	data    string
	catalog string
	blobs   string
	// metrics, when set (serve), observe every backend operation.
	metrics *server.Metrics
	// uncompressed: what is published also gets its uncompressed layer
	// form (--uncompressed-layers of publish, sync and serve --seed).
	uncompressed bool
	// zstd: ... and its zstd form (--zstd-layers).
	zstd bool
}

// layerFormFlags registers --uncompressed-layers and --zstd-layers on the
// commands that publish (packages.Publisher.Uncompressed and Zstd).
func (s *storage) layerFormFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.uncompressed, "uncompressed-layers", false, "also store each published layer's uncompressed tar beside the gzip one, for stacks with layerCompression: none (about 3x the bytes per layer; without it such a stack serves gzip)")
	fs.BoolVar(&s.zstd, "zstd-layers", false, "also store each published layer compressed with zstd beside the gzip one, for stacks with layerCompression: zstd (about the gzip size again; without it such a stack serves gzip)")
}

// storageFlags registers --data, --catalog and --blobs.
func storageFlags(fs *flag.FlagSet) *storage {
	s := &storage{}
	fs.StringVar(&s.data, "data", defaultDataDir, "data directory of the embedded store (catalog, manifests, blobs)")
	fs.StringVar(&s.catalog, "catalog", "", "catalog and manifest store URL instead of --data: redis://[user:pass@]host:port/db, rediss://…, redis+sentinel://…, redis+cluster://…")
	fs.StringVar(&s.blobs, "blobs", "", "blob store URL instead of DATA/blobs: s3://BUCKET[/PREFIX]?endpoint=URL&region=R[&presign=15m] (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	return s
}

// describe says where the state is, for logs (no credentials).
func (s *storage) describe() (catalogAt, blobsAt string) {
	catalogAt, blobsAt = absPath(s.data), filepath.Join(absPath(s.data), "blobs")
	if s.catalog != "" {
		catalogAt = redact(s.catalog)
	}
	if s.blobs != "" {
		blobsAt = redact(s.blobs)
	}
	return catalogAt, blobsAt
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redisLogger adapts slog to go-redis's logging interface.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// backends are the stores a command works on. This is the only place that
// names concrete backends; everything else receives interfaces.
type backends struct {
	catalog catalog.Store
	blobs   layerstore.Store
	// records and chunks are where upload sessions can live so that every
	// replica sees them: set when the catalog is on Redis and the blobs
	// are on S3 respectively.
	records uploads.RecordStore
	chunks  uploads.ChunkStore
}

// open selects the backends by URL scheme.
func (s *storage) open(ctx context.Context, log *slog.Logger) (*backends, error) {
	var b backends
	var err error
	var (
		fsOpts    []fsstore.Option
		redisOpts = []redisstore.Option{redisstore.WithLogger(log)}
		blobOpts  []blobfs.Option
		s3Opts    []s3.Option
	)
	if m := s.metrics; m != nil {
		fsOpts = append(fsOpts, fsstore.WithObservers(catalog.Observers{Op: m.Backend("fs"), Reload: m.Reload()}))
		redisOpts = append(redisOpts, redisstore.WithObservers(catalog.Observers{Op: m.Backend("redis"), Reload: m.Reload()}))
		blobOpts = append(blobOpts, blobfs.WithObserver(m.Backend("fs")))
		s3Opts = append(s3Opts, s3.WithObserver(m.Backend("s3")))
	}
	switch scheme := urlScheme(s.catalog); scheme {
	case "":
		b.catalog, err = fsstore.Open(s.data, fsOpts...)
	case "redis", "rediss", "redis+sentinel", "redis+cluster":
		// go-redis logs through a package global; route it to our logger.
		redis.SetLogger(redisLogger{log})
		var rs *redisstore.Store
		if rs, err = redisstore.Open(ctx, s.catalog, redisOpts...); err == nil {
			b.catalog, b.records = rs, rs.UploadRecords()
		}
	default:
		return nil, usagef("--catalog: unsupported scheme %q (want redis://, rediss://, redis+sentinel:// or redis+cluster://)", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	switch scheme := urlScheme(s.blobs); scheme {
	case "":
		b.blobs, err = blobfs.New(filepath.Join(s.data, "blobs"), blobOpts...)
		if err == nil { // publishing builds layers there (tempDir), whatever the catalog
			err = durable.MkdirAll(s.tempDir())
		}
	case "s3":
		var ss *s3.Store
		if ss, err = s3.Open(ctx, s.blobs, s3Opts...); err == nil {
			b.blobs, b.chunks = ss, ss.UploadChunks()
		}
	default:
		err = usagef("--blobs: unsupported scheme %q (want s3://)", scheme)
	}
	if err != nil {
		b.catalog.Close()
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, fmt.Errorf("opening blob store: %w", err)
	}
	return &b, nil
}

func urlScheme(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	return u.Scheme
}

// tempDir is where publishing builds layers: under --data when the
// embedded blob store is used (same file system), else the system default.
func (s *storage) tempDir() string {
	if s.blobs == "" {
		return filepath.Join(s.data, "tmp")
	}
	return ""
}

func (b *backends) Close() error { return b.catalog.Close() }

// stores returns b as maintenance jobs take it.
func (b *backends) stores() maintenance.Stores {
	return maintenance.Stores{Catalog: b.catalog, Blobs: b.blobs}
}

// explain names the store in a *maintenance.MissingCapabilityError, and
// says which stores have the capability (or how to do without it).
func (s *storage) explain(err error) error {
	var missing *maintenance.MissingCapabilityError
	if !errors.As(err, &missing) {
		return err
	}
	catalogAt, blobsAt := s.describe()
	at, hint := catalogAt, ""
	if missing.Store == "blob store" {
		at = blobsAt
	}
	switch missing.Method {
	case "Walk":
		hint = "; the embedded store (--data) and s3:// blob stores can"
	case "WalkDocuments":
		hint = "; the embedded store (--data) and redis:// catalogs can"
	case "ModTime":
		hint = "; give --grace 0 to collect anyway, only while nothing publishes or composes"
	}
	return fmt.Errorf("the %s %s cannot %s (no %s)%s", missing.Store, at, missing.Needed, missing.Method, hint)
}
