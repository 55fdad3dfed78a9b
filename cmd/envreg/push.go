package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/layerstore/uploads/disk"
	"github.com/envreg/envreg/packages/ingest"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/server/auth"
)

// pushSettings are serve's flags for the push side and authentication.
type pushSettings struct {
	enabled       bool
	uploads       string
	uploadMaxAge  time.Duration
	maxBlobSize   int64
	htpasswd      string
	acl           string
	anonymousPull bool
	realm         string
	service       string
	tokenSecret   string
	allowSetuid   bool
	maxEntries    int
}

func pushFlags(fs *flag.FlagSet) *pushSettings {
	p := &pushSettings{}
	fs.BoolVar(&p.enabled, "push", true, "accept pushes (blob uploads, manifest PUT, DELETE) to ordinary repositories and packages/<name>:<semver>")
	fs.StringVar(&p.uploads, "uploads", "", "keep blob upload sessions in this directory (default: in Redis + S3 when --catalog and --blobs are both remote, so any replica continues any upload; else DATA/uploads)")
	fs.DurationVar(&p.uploadMaxAge, "upload-max-age", uploads.DefaultMaxAge, "remove upload sessions idle for longer than this")
	fs.Int64Var(&p.maxBlobSize, "max-blob-size", 0, "largest blob a client may upload, in bytes (0: no limit)")
	fs.StringVar(&p.htpasswd, "auth-htpasswd", "", "htpasswd file (bcrypt entries, htpasswd -B) of the users who may log in; without it writes are accepted from loopback clients only")
	fs.StringVar(&p.acl, "auth-acl", "", "YAML access rules per user and repository pattern (default: every user may pull, push and delete everywhere)")
	fs.BoolVar(&p.anonymousPull, "auth-anonymous-pull", true, "let clients without credentials pull (with --auth-htpasswd)")
	fs.StringVar(&p.realm, "auth-realm", "", "absolute URL of the token endpoint clients are sent to (default: this server's "+auth.TokenPath+" as the client addressed it)")
	fs.StringVar(&p.service, "auth-service", "envreg", "service name in token challenges and tokens")
	fs.StringVar(&p.tokenSecret, "auth-token-secret", "", "file holding the key that signs tokens (replicas must share one; default: a random key per process)")
	fs.BoolVar(&p.allowSetuid, "allow-setuid", false, "accept setuid and setgid files in pushed package layers")
	fs.IntVar(&p.maxEntries, "max-package-entries", 0, fmt.Sprintf("refuse a pushed package layer with more entries (0: %d)", ingest.DefaultMaxEntries))
	return p
}

// setup adds the push side and authentication to deps, and says at start-up
// who may write and where upload sessions live.
func (p *pushSettings) setup(ctx context.Context, deps *server.Deps, store *storage, b *backends, log *slog.Logger) error {
	if p.htpasswd != "" {
		cfg := auth.Config{Htpasswd: p.htpasswd, ACL: p.acl, AnonymousPull: p.anonymousPull, Realm: p.realm, Service: p.service}
		if p.tokenSecret != "" {
			key, err := os.ReadFile(p.tokenSecret)
			if err != nil {
				return fmt.Errorf("--auth-token-secret: %w", err)
			}
			cfg.TokenSecret = []byte(strings.TrimSpace(string(key)))
		}
		a, err := auth.New(cfg)
		if err != nil {
			return err
		}
		deps.Auth, deps.APIAuth = a, a
		deps.Token, deps.TokenPath = a.TokenHandler(), auth.TokenPath
		deps.MountWithoutFrom = p.anonymousPull
		log.Info(a.Describe())
		if p.acl != "" && p.anonymousPull {
			log.Warn("authentication: the ACL does not restrict anonymous pulls: with --auth-anonymous-pull on (the default) anyone may pull every repository and resolve every stack; set --auth-anonymous-pull=false to make the ACL govern pulls",
				"acl", p.acl)
		}
	} else {
		if p.acl != "" || p.realm != "" || p.tokenSecret != "" {
			return usagef("--auth-acl, --auth-realm and --auth-token-secret need --auth-htpasswd")
		}
		deps.Auth = auth.LoopbackWrites{}
		deps.MountWithoutFrom = true
		if p.enabled {
			log.Warn("authentication: none configured; pulls are open to everyone, writes (push, delete) and the provisioning API are accepted from loopback clients only, addressing this host as localhost or a loopback address and not sent by a web page of another origin (set --auth-htpasswd to allow others)")
		}
	}
	if !p.enabled {
		log.Info("push disabled (--push=false): the registry serves composed images only")
		return nil
	}
	up, sweeper, where, err := p.sessions(deps, store, b)
	if err != nil {
		return err
	}
	log.Info("upload sessions", "at", where, "max_age", p.uploadMaxAge)
	report := func(n int, err error) {
		if err != nil {
			log.Warn("sweeping abandoned uploads", "at", where, "err", err)
		} else if n > 0 {
			log.Info("removed abandoned uploads", "count", n, "at", where)
		}
	}
	report(sweeper.Sweep(ctx, time.Now()))
	go uploads.RunSweeper(ctx, sweeper, min(time.Hour, p.uploadMaxAge/4+time.Second), report)
	deps.Uploads = up
	deps.Ingest = &ingest.Ingestor{
		Blobs: deps.Blobs, Catalog: deps.Catalog, Log: log,
		Policy: layer.Policy{AllowSetuid: p.allowSetuid, MaxEntries: p.maxEntries},
	}
	return nil
}

// sessions chooses where upload sessions live: in the shared stores when
// the catalog is on Redis and the blobs on S3 (and --uploads does not name
// a directory), so that a load balancer may send each request of an upload
// to any replica; else on the local disk.
func (p *pushSettings) sessions(deps *server.Deps, store *storage, b *backends) (uploads.Sessions, uploads.Sweeper, string, error) {
	if p.uploads == "" && b.records != nil && b.chunks != nil {
		s := uploads.NewShared(b.records, b.chunks, deps.Blobs,
			uploads.WithMaxAge(p.uploadMaxAge), uploads.WithMaxSize(p.maxBlobSize))
		return s, s, "shared (Redis + S3)", nil
	}
	dir := p.uploads
	if dir == "" {
		dir = filepath.Join(store.data, "uploads")
	}
	s, err := disk.New(dir, deps.Blobs, p.uploadMaxAge, p.maxBlobSize)
	if err != nil {
		return nil, nil, "", err
	}
	return s, s, dir, nil
}
