package manifestgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/sbom"
)

// SBOMs: every platform manifest a stack composes has an SBOM (package
// sbom), stored as an OCI artifact whose subject is the manifest and
// listed by the referrers API.
//
// The artifact is composed when a client asks for the manifest's
// referrers, and stored then (blobs and marks, then the artifact
// manifest), before the answer names it; not on the pull path. Why: a pull
// of a new combination already waits for the durable writes of its
// configs, manifests and index, and most pulls never ask for an SBOM, so
// storing one per platform with every composition would slow every first
// pull and grow the store for anonymous pulls nobody scans. It costs
// nothing in consistency: the SBOM is a pure function of the manifest, its
// config (the io.envreg.* labels name the package versions) and the
// catalog's records of those versions, so every replica, before and after
// a restart, composes the same bytes, and storing them twice is a no-op.
// The stack marks the artifact, its SPDX blob and its empty config like
// the rest of its composition (catalog.Compositions), which is what lets
// it serve them by digest (Serves), and gc keeps them while it keeps
// their subject.

// maxConfig bounds the composed config Referrers reads.
const maxConfig = 4 << 20

// sbomEntry is a stored artifact, remembered for the touch interval.
type sbomEntry struct {
	desc   ocispec.Descriptor
	stored int64 // unix nanoseconds
}

// ImageSBOM renders the SBOM of img's manifest for platform p, composed
// from res: the same bytes the artifact Referrers stores carries.
func ImageSBOM(res *resolver.Resolution, img *Image, p catalog.Platform) ([]byte, error) {
	m, ok := img.Manifest(p)
	if !ok {
		return nil, fmt.Errorf("sbom: the image has no manifest for %s", p)
	}
	return sbom.Image(sbom.ImageInput{Stack: res.Stack.Name, Platform: p, Manifest: m.Descriptor.Digest, Releases: res.Releases})
}

// Referrers returns the referrers of subject in stack: the SBOM artifact
// when subject is a platform manifest the stack composed and its package
// versions are still in snap, stored before it returns; none otherwise.
// configs reads the subject's config.
func (c *Composer) Referrers(ctx context.Context, snap *catalog.Snapshot, stack string, subject digest.Digest, configs layerstore.Reader) ([]ocispec.Descriptor, error) {
	key := markKey{stack, subject}
	now := c.now()
	c.mu.Lock()
	e, ok := c.sboms[key]
	c.mu.Unlock()
	if ok && now.UnixNano()-e.stored < int64(c.touch) {
		return []ocispec.Descriptor{e.desc}, nil
	}
	if ok, err := c.Serves(ctx, snap, stack, subject); err != nil || !ok {
		return nil, err
	}
	in, doc, err := c.sbomInput(ctx, snap, stack, subject, configs)
	if err != nil || in == nil {
		return nil, err
	}
	data, err := sbom.Image(*in)
	if err != nil {
		return nil, err
	}
	a, err := sbom.NewArtifact(ocispec.Descriptor{MediaType: doc.MediaType, Digest: doc.Digest, Size: int64(len(doc.Data))}, data)
	if err != nil {
		return nil, err
	}
	if err := c.storeArtifact(ctx, stack, a, false); err != nil {
		return nil, err
	}
	c.rememberSBOM(key, a.Manifest)
	return []ocispec.Descriptor{a.Manifest}, nil
}

// storeArtifact stores a's blobs and the stack's marks on a, then its
// manifest: nothing stored names what is not.
func (c *Composer) storeArtifact(ctx context.Context, stack string, a *sbom.Artifact, pinned bool) error {
	now := c.now()
	if err := c.docs.MarkComposed(ctx, stack, now, pinned, a.Config.Digest, a.SBOM.Digest, a.Manifest.Digest); err != nil {
		return fmt.Errorf("marking the SBOM of %s as composed by %s: %w", a.Manifest.Digest, stack, err)
	}
	c.remember(stack, now, a.Config.Digest, a.SBOM.Digest, a.Manifest.Digest)
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{a.Config, a.ConfigData}, {a.SBOM, a.SBOMData}} {
		if err := c.blobs.Put(ctx, b.d.Digest, b.d.Size, bytes.NewReader(b.data)); err != nil {
			return fmt.Errorf("storing SBOM blob %s: %w", b.d.Digest, err)
		}
	}
	d := catalog.Document{MediaType: a.Manifest.MediaType, Digest: a.Manifest.Digest, Data: a.Data}
	if err := c.docs.PutDocument(ctx, d); err != nil {
		return fmt.Errorf("storing SBOM artifact %s: %w", d.Digest, err)
	}
	return nil
}

// sbomInput reads the composed manifest subject and its config and finds
// the package versions it was composed of in snap. It returns nil (no
// SBOM, no error) for a document that is not a composed platform manifest
// of stack, or whose versions snap no longer has with the same layers.
func (c *Composer) sbomInput(ctx context.Context, snap *catalog.Snapshot, stack string, subject digest.Digest, configs layerstore.Reader) (*sbom.ImageInput, catalog.Document, error) {
	doc, err := c.docs.Document(ctx, subject)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, doc, nil
	}
	if err != nil {
		return nil, doc, fmt.Errorf("reading manifest %s: %w", subject, err)
	}
	var m ocispec.Manifest
	if doc.MediaType != ocispec.MediaTypeImageManifest && doc.MediaType != MediaTypeDockerManifest ||
		json.Unmarshal(doc.Data, &m) != nil || m.Subject != nil || m.ArtifactType != "" || len(m.Layers) == 0 {
		return nil, doc, nil
	}
	cfg, err := readConfig(ctx, configs, m.Config)
	if err != nil || cfg == nil || cfg.Config.Labels[KeyStack] != stack {
		return nil, doc, err
	}
	p := catalog.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	rels := make([]catalog.Release, len(m.Layers))
	for i, l := range m.Layers {
		r, ok := releaseOf(snap, cfg.Config.Labels, p, l.Digest)
		if !ok {
			return nil, doc, nil
		}
		rels[i] = r
	}
	return &sbom.ImageInput{Stack: stack, Platform: p, Manifest: subject, Releases: rels}, doc, nil
}

// readConfig reads a composed image config, or returns nil when it is not
// one.
func readConfig(ctx context.Context, configs layerstore.Reader, d ocispec.Descriptor) (*ocispec.Image, error) {
	if d.MediaType != ocispec.MediaTypeImageConfig && d.MediaType != MediaTypeDockerConfig || d.Size > maxConfig {
		return nil, nil
	}
	rc, _, err := configs.Open(ctx, d.Digest)
	if errors.Is(err, layerstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", d.Digest, err)
	}
	defer rc.Close()
	var img ocispec.Image
	if err := json.NewDecoder(io.LimitReader(rc, maxConfig)).Decode(&img); err != nil {
		return nil, nil
	}
	return &img, nil
}

// servedAs reports whether d is one of the forms l is stored in (the
// published blob, or the tar a stack with layerCompression none serves).
func servedAs(l catalog.Layer, d digest.Digest) bool {
	return slices.ContainsFunc(l.Blobs(), func(b catalog.LayerBlob) bool { return b.Digest == d })
}

// releaseOf finds the release whose version a composed config's labels
// name and whose layer for p is layer (in any form).
func releaseOf(snap *catalog.Snapshot, labels map[string]string, p catalog.Platform, layer digest.Digest) (catalog.Release, bool) {
	for k, v := range labels {
		name, ok := strings.CutPrefix(k, KeyPackagePrefix)
		if !ok {
			continue
		}
		for _, r := range snap.Releases(name) {
			if l, ok := r.Layer(p); ok && servedAs(l, layer) && r.Version.String() == v {
				return r, true
			}
		}
	}
	return catalog.Release{}, false
}

// StoreSBOM renders the SBOM of img's manifest for platform p (ImageSBOM),
// stores its artifact as Referrers would (pinned marks when pinned: the
// provisioning API pins what it returns) and returns it, so that a
// resolution's SBOM is known, and pullable by digest, before anything is
// pulled.
func (c *Composer) StoreSBOM(ctx context.Context, res *resolver.Resolution, img *Image, p catalog.Platform, pinned bool) (*sbom.Artifact, error) {
	data, err := ImageSBOM(res, img, p)
	if err != nil {
		return nil, err
	}
	m, _ := img.Manifest(p) // found by ImageSBOM
	subject := ocispec.Descriptor{MediaType: m.Descriptor.MediaType, Digest: m.Descriptor.Digest, Size: m.Descriptor.Size}
	a, err := sbom.NewArtifact(subject, data)
	if err != nil {
		return nil, err
	}
	if err := c.storeArtifact(ctx, res.Stack.Name, a, pinned); err != nil {
		return nil, err
	}
	c.rememberSBOM(markKey{res.Stack.Name, subject.Digest}, a.Manifest)
	return a, nil
}

// rememberSBOM records a stored artifact in c.sboms.
func (c *Composer) rememberSBOM(key markKey, desc ocispec.Descriptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sboms) >= c.maxEntries {
		clear(c.sboms)
	}
	c.sboms[key] = sbomEntry{desc: desc, stored: c.now().UnixNano()}
}
