package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/packages/ingest"
)

// Publishing to a remote envreg (`envreg publish --registry URL`): the
// layers are built into a private staging store exactly as for a local
// publish, then each package version is pushed to the registry as an
// index of single-layer images at packages/<name>:<version>, with the
// release's metadata in package labels (ingest.ReleaseLabels). The
// registry registers it through the same ingestion as any other push
// (ingest.Ingestor), so it checks the layers again and refuses what
// its own policy refuses.

// remoteTarget is where and as whom to push.
type remoteTarget struct {
	registry name.Registry
	auth     authn.Authenticator // nil: the Docker credential helpers and config (docker login)
}

// parseRemote parses --registry: "host[:port]", "http://host:port" (plain
// HTTP) or "https://host". Credentials come from --registry-user with the
// password in ENVREG_REGISTRY_PASSWORD or --registry-password-file, else
// from the Docker config (docker login).
func parseRemote(raw, user, passwordFile string) (*remoteTarget, error) {
	host := raw
	var opts []name.Option
	switch {
	case strings.HasPrefix(raw, "http://"):
		host, opts = strings.TrimPrefix(raw, "http://"), []name.Option{name.Insecure}
	case strings.HasPrefix(raw, "https://"):
		host = strings.TrimPrefix(raw, "https://")
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.Contains(host, "/") {
		return nil, usagef("--registry %q: want host[:port], http://host:port or https://host (no path)", raw)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, usagef("--registry %q: %v", raw, err)
	}
	t := &remoteTarget{registry: reg}
	password, err := registryPassword(user, passwordFile)
	if err != nil {
		return nil, err
	}
	if user != "" {
		t.auth = &authn.Basic{Username: user, Password: password}
	}
	return t, nil
}

// registryPassword is the password of --registry-user: the content of
// --registry-password-file, else ENVREG_REGISTRY_PASSWORD ("" without a
// user).
func registryPassword(user, passwordFile string) (string, error) {
	if user == "" {
		if passwordFile != "" {
			return "", usagef("--registry-password-file needs --registry-user")
		}
		return "", nil
	}
	password := os.Getenv("ENVREG_REGISTRY_PASSWORD")
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return "", fmt.Errorf("--registry-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return "", usagef("--registry-user needs a password: set ENVREG_REGISTRY_PASSWORD or --registry-password-file")
	}
	return password, nil
}

// pushReleases pushes every release of the staging catalog.
func (t *remoteTarget) pushReleases(ctx context.Context, cat catalog.Reader, blobs layerstore.Reader, log *slog.Logger, out io.Writer) error {
	snap, err := cat.Snapshot(ctx)
	if err != nil {
		return err
	}
	rels := snap.AllReleases()
	if len(rels) == 0 {
		return errors.New("nothing was published, nothing to push")
	}
	for _, rel := range rels {
		d, err := t.pushRelease(ctx, rel, blobs)
		if err != nil {
			return fmt.Errorf("pushing %s to %s: %w", rel.ID(), t.registry.Name(), err)
		}
		log.InfoContext(ctx, "pushed package", "name", rel.Name, "version", rel.Version.String(),
			"registry", t.registry.Name(), "digest", d.String())
		fmt.Fprintf(out, "pushed %s for %s to %s/%s%s:%s@%s\n", rel.ID(), platformList(rel), t.registry.Name(),
			packagesRepo, rel.Name, rel.Version, d)
	}
	return nil
}

// packagesRepo is the registry's package namespace (registry.PackagesPrefix).
const packagesRepo = "packages/"

// pushRelease pushes one release as an OCI index with one single-layer
// image per platform and returns the index digest.
func (t *remoteTarget) pushRelease(ctx context.Context, rel catalog.Release, blobs layerstore.Reader) (v1.Hash, error) {
	labels := ingest.ReleaseLabels(rel)
	var adds []mutate.IndexAddendum
	for _, l := range rel.Layers {
		img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
			&storedLayer{ctx: ctx, blobs: blobs, l: l})
		if err != nil {
			return v1.Hash{}, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return v1.Hash{}, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = l.Platform.OS, l.Platform.Architecture, l.Platform.Variant
		cf.Config.Labels = labels
		cf.Created = v1.Time{Time: rel.Published}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return v1.Hash{}, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: l.Platform.OS, Architecture: l.Platform.Architecture, Variant: l.Platform.Variant}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	ref := t.registry.Repo(strings.TrimSuffix(packagesRepo, "/"), rel.Name).Tag(rel.Version.String())
	if err := remote.WriteIndex(ref, idx, t.options(ctx)...); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// options are the go-containerregistry options of a request to t.
func (t *remoteTarget) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if t.auth != nil {
		return append(opts, remote.WithAuth(t.auth))
	}
	return append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
}

// storedLayer is a catalog layer read from a blob store, as a
// go-containerregistry layer (pushed as it is, never recompressed).
type storedLayer struct {
	ctx   context.Context
	blobs layerstore.Reader
	l     catalog.Layer
}

func (s *storedLayer) Digest() (v1.Hash, error) { return v1.NewHash(s.l.Digest.String()) }
func (s *storedLayer) DiffID() (v1.Hash, error) { return v1.NewHash(s.l.DiffID.String()) }
func (s *storedLayer) Size() (int64, error)     { return s.l.Size, nil }
func (s *storedLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(s.l.MediaType), nil
}

func (s *storedLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := s.blobs.Open(s.ctx, s.l.Digest)
	return rc, err
}

// Uncompressed is not needed to push a layer whose digests are known.
func (s *storedLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("storedLayer: uncompressed content is not available")
}
