package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
)

// `envreg sync --registry URL`: the job asks the remote envreg which
// versions it has (packages/NAME:VERSION, remoteTarget.Platforms), builds
// what it lacks in a staging store of the round, and pushes each version
// as `envreg publish --registry` does; the remote's ingestion records it
// (an identical version pushed twice is stored once).

// Platforms implements packages.Inventory: the platforms of the index at
// packages/NAME:VERSION on the registry (none when there is no such tag).
func (t *remoteTarget) Platforms(ctx context.Context, name string, v *semver.Version) ([]catalog.Platform, error) {
	ref := t.registry.Repo(strings.TrimSuffix(packagesRepo, "/"), name).Tag(v.String())
	idx, err := remote.Index(ref, t.options(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []catalog.Platform
	for _, m := range im.Manifests {
		if m.Platform != nil {
			out = append(out, catalog.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant})
		}
	}
	return out, nil
}

// A version is pushed with every platform of its recipe when the registry
// lacks any (the push replaces the tag's index; the registry merges the
// platforms it had), so the tag always lists them all.

// remoteSync wires s to push to t: each round publishes into a new
// staging store (removed at the next round and by the returned cleanup).
func remoteSync(ctx context.Context, s *packages.Syncer, t *remoteTarget, set *syncSettings, log *slog.Logger) (cleanup func()) {
	var staging *backends
	var dir string
	drop := func() {
		if staging != nil {
			staging.Close()
			os.RemoveAll(dir)
			staging = nil
		}
	}
	s.Catalog, s.Inventory = nil, t
	s.NewPublisher = func() (*packages.Publisher, error) {
		drop()
		var err error
		if dir, err = os.MkdirTemp("", "envreg-sync-"); err != nil {
			return nil, err
		}
		st := &storage{data: dir}
		if staging, err = st.open(ctx, log); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return &packages.Publisher{Blobs: staging.blobs, Catalog: staging.catalog, Log: log, TempDir: st.tempDir(),
			CacheDir: set.cacheDir, DebianSources: set.debianSources}, nil
	}
	s.Deliver = func(ctx context.Context, rel catalog.Release) error {
		d, err := t.pushRelease(ctx, rel, staging.blobs)
		if err == nil {
			log.InfoContext(ctx, "pushed package", "name", rel.Name, "version", rel.Version.String(),
				"registry", t.registry.Name(), "digest", d.String())
		}
		return err
	}
	return drop
}
