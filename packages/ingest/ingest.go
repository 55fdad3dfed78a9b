package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/sbom"
)

// Push is an image or index pushed to packages/<Name> with tag Version.
type Push struct {
	Name, Version string
	// Annotations are the pushed manifest's (the index's, for an index).
	Annotations map[string]string
	// Images are the platform images: one for an image manifest, one per
	// (non-attestation) entry of an index.
	Images []PushedImage
}

// PushedImage is one platform image of a push.
type PushedImage struct {
	Platform catalog.Platform
	Config   ocispec.Image
	// Layers are the image manifest's layer descriptors.
	Layers []ocispec.Descriptor
	// Annotations are the image manifest's.
	Annotations map[string]string
}

// KnownArchitectures are the architectures a pushed package may be
// registered for (Go's GOARCH names, as OCI uses them).
var KnownArchitectures = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}

// DefaultMaxEntries is the entry limit of a pushed package layer when
// the Ingestor's Policy sets none. It is lower than
// layer.DefaultMaxEntries, which bounds what a trusted publisher builds: anyone allowed to push
// makes the registry read every entry of the layer, keep its name and
// record it in the catalog. A layer of a million empty files, a few MiB
// of gzip, took 53 s and 700 MB before it was refused at
// layer.DefaultMaxEntries (issue 15); 65,536 is 25 times the entries of the
// largest bundled package (base, 2,639).
const DefaultMaxEntries = 1 << 16

// DefaultMaxIngestions is how many pushed packages an Ingestor checks at
// once when MaxIngestions is zero. Checking a layer is CPU-bound (gunzip,
// SHA-256, tar) and keeps each entry's name, so more at once would not
// finish sooner on most machines, only multiply the memory held.
const DefaultMaxIngestions = 4

// Ingestor registers pushed packages. Its methods may be called
// concurrently; the fields must not change after the first call.
type Ingestor struct {
	// Blobs holds the pushed layers and configs.
	Blobs layerstore.Reader
	// Catalog records the release.
	Catalog interface {
		catalog.Reader
		catalog.Publisher
	}
	// Policy checks the layers (layer.Policy.Inspect); the zero Policy
	// refuses setuid files and applies the default limits, with
	// DefaultMaxEntries as MaxEntries.
	Policy layer.Policy
	// MaxIngestions bounds the pushes whose layers are checked at once
	// (0: DefaultMaxIngestions); others wait for a slot, or for their
	// context to end.
	MaxIngestions int
	// Now gives the publish time (nil: time.Now).
	Now func() time.Time
	// Log receives a line per registered package (nil: discard).
	Log *slog.Logger

	slotsOnce sync.Once
	slots     chan struct{}
}

// Ingest checks p and registers it as a package version: the labels, the
// platforms (known, not repeated), exactly one gzip layer per image whose
// content passes Policy.Inspect and whose diffID is the config's.
// Anything wrong is refused with a *catalog.ValidationError (or a
// *layer.RefusedError for a hostile layer) and nothing is registered. Pushing the same content
// again succeeds; different content for an existing version fails with an
// error wrapping catalog.ErrExists.
func (in *Ingestor) Ingest(ctx context.Context, p Push) (catalog.Release, error) {
	what := fmt.Sprintf("registering pushed package %s %s", p.Name, p.Version)
	rel, err := in.ingest(ctx, p)
	if err != nil {
		return catalog.Release{}, fmt.Errorf("%s: %w", what, err)
	}
	return rel, nil
}

func (in *Ingestor) ingest(ctx context.Context, p Push) (catalog.Release, error) {
	if in.Blobs == nil || in.Catalog == nil {
		return catalog.Release{}, errors.New("ingestor has no blob store or no catalog")
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(p.Images) == 0 {
		add("the push holds no platform image")
	}

	// The labels: the same on every platform.
	var first map[string]string
	for i, img := range p.Images {
		labels, conflicts := mergeLabels(p.Annotations, img.Annotations, img.Config.Config.Labels)
		problems = append(problems, conflicts...)
		if i == 0 {
			first = labels
		} else if !maps.Equal(first, labels) {
			add("%s: package labels differ from those of %s; a package version has one set of metadata", img.Platform, p.Images[0].Platform)
		}
	}
	pl, lp := ParseLabels(first)
	problems = append(problems, lp...)
	if pl.Name != "" && pl.Name != p.Name {
		add("label %s: %q, but the repository names package %q", LabelName, pl.Name, p.Name)
	}
	if pl.Version != "" && pl.Version != p.Version {
		add("label %s: %q, but the tag is %q", LabelVersion, pl.Version, p.Version)
	}
	rel, mp := catalog.ReleaseSpec{Name: p.Name, Version: p.Version, Path: pl.Path, Env: pl.Env, Labels: pl.Labels,
		Requires: pl.Requires, Conflicts: pl.Conflicts}.Release()
	rel.Aliases = pl.Aliases
	for _, m := range mp {
		problems = append(problems, "package "+m)
	}

	// The platforms and their single layers.
	seen := map[catalog.Platform]bool{}
	for _, img := range p.Images {
		problems = append(problems, checkImage(img, seen)...)
	}
	aliasProblems := in.checkAliases(ctx, p.Name, pl.Aliases)
	problems = append(problems, aliasProblems...)
	if len(problems) > 0 {
		return catalog.Release{}, &catalog.ValidationError{Problems: problems}
	}

	// The layers' content, one at a time (each is read once, streaming),
	// while holding one of the ingestion slots.
	release, err := in.acquire(ctx, p)
	if err != nil {
		return catalog.Release{}, err
	}
	defer release()
	for _, img := range p.Images {
		l, err := in.inspect(ctx, img)
		if err != nil {
			return catalog.Release{}, fmt.Errorf("%s: %w", img.Platform, err)
		}
		rel.Layers = append(rel.Layers, l)
	}
	rel.Published = in.now()
	rel.Canonicalize()
	if err := rel.Validate(); err != nil {
		return catalog.Release{}, &catalog.ValidationError{Problems: []string{err.Error()}}
	}
	if err := in.Catalog.Publish(ctx, rel, catalog.PublishOptions{}); err != nil {
		return catalog.Release{}, fmt.Errorf("recording release in catalog: %w", err)
	}
	for _, l := range rel.Layers {
		in.log().InfoContext(ctx, "registered pushed package", "name", rel.Name, "version", rel.Version.String(),
			"platform", l.Platform.String(), "digest", l.Digest.String(), "size", l.Size)
	}
	return rel, nil
}

// mergeLabels merges the package labels of the index annotations, the
// manifest annotations and the config labels; a key with two different
// values is a problem.
func mergeLabels(sources ...map[string]string) (map[string]string, []string) {
	out := map[string]string{}
	var problems []string
	for _, src := range sources {
		for _, k := range slices.Sorted(maps.Keys(src)) {
			if !strings.HasPrefix(k, LabelPrefix) {
				continue
			}
			if cur, ok := out[k]; ok && cur != src[k] {
				problems = append(problems, fmt.Sprintf("label %s: two values, %q and %q (annotations and config labels must agree)", k, cur, src[k]))
				continue
			}
			out[k] = src[k]
		}
	}
	return out, problems
}

// checkImage checks one platform image's description (not the content).
func checkImage(img PushedImage, seen map[catalog.Platform]bool) []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, img.Platform.String()+": "+fmt.Sprintf(format, args...))
	}
	if _, err := catalog.ParsePlatform(img.Platform.String()); err != nil {
		add("%v", err)
	} else if img.Platform.OS != "linux" || !slices.Contains(KnownArchitectures, img.Platform.Architecture) {
		add("unknown platform (packages are registered for linux on %s)", strings.Join(KnownArchitectures, ", "))
	}
	if seen[img.Platform] {
		add("the platform appears twice")
	}
	seen[img.Platform] = true
	if img.Config.OS != "" && img.Config.OS != img.Platform.OS || img.Config.Architecture != "" && img.Config.Architecture != img.Platform.Architecture {
		add("the config says %s/%s", img.Config.OS, img.Config.Architecture)
	}
	switch n := len(img.Layers); {
	case n != 1:
		add("a package image has exactly one layer, this one has %d (build it FROM scratch and COPY the package's files in one step)", n)
	default:
		d := img.Layers[0]
		if err := layer.CheckMediaType(d.MediaType); err != nil {
			add("%v", err)
		}
		if len(img.Config.RootFS.DiffIDs) != 1 {
			add("the config lists %d diff_ids for 1 layer", len(img.Config.RootFS.DiffIDs))
		}
	}
	return problems
}

// inspect reads the layer of img, checks it (and that its content has the
// digest and size of its descriptor and the config's diffID) and returns
// the catalog layer.
func (in *Ingestor) inspect(ctx context.Context, img PushedImage) (catalog.Layer, error) {
	desc := img.Layers[0]
	rc, size, err := in.Blobs.Open(ctx, desc.Digest)
	if err != nil {
		return catalog.Layer{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	if size != desc.Size {
		return catalog.Layer{}, &catalog.ValidationError{Problems: []string{fmt.Sprintf("layer %s: the manifest says %d bytes, the blob has %d", desc.Digest, desc.Size, size)}}
	}
	dg := desc.Digest.Algorithm().Digester()
	// The layer is read once: what Inspect reads is also digested and
	// scanned for dpkg records (sbom.Scan, for the package's SBOM).
	pr, pw := io.Pipe()
	scanned := make(chan scanResult, 1)
	go func() {
		c, err := sbom.Scan(ctx, pr)
		pr.CloseWithError(err) // unblocks the tee if Scan stopped early
		scanned <- scanResult{c, err}
	}()
	diffID, files, err := in.policy().Inspect(ctx, io.TeeReader(rc, io.MultiWriter(dg.Hash(), pw)), desc.MediaType)
	pw.CloseWithError(err)
	scan := <-scanned
	if err != nil {
		return catalog.Layer{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if scan.err != nil {
		return catalog.Layer{}, fmt.Errorf("layer %s: %w", desc.Digest, scan.err)
	}
	if got := dg.Digest(); got != desc.Digest {
		return catalog.Layer{}, fmt.Errorf("layer %s: stored content has digest %s", desc.Digest, got)
	}
	if want := img.Config.RootFS.DiffIDs[0]; diffID != want {
		return catalog.Layer{}, &catalog.ValidationError{Problems: []string{fmt.Sprintf(
			"layer %s: its uncompressed content has digest %s, but the config's diff_ids[0] is %s", desc.Digest, diffID, want)}}
	}
	return catalog.Layer{
		Platform:  img.Platform,
		Digest:    desc.Digest,
		DiffID:    diffID,
		Size:      desc.Size,
		MediaType: ocispec.MediaTypeImageLayerGzip, // the Docker gzip type is the same bytes
		Files:     files,
		// What the layer carries of Debian's, for its SBOM (package sbom).
		Components: scan.c.Components,
		Distro:     scan.c.Distro,
	}, nil
}

// scanResult is what sbom.Scan returned.
type scanResult struct {
	c   sbom.Contents
	err error
}

// checkAliases checks that every alias is a valid name, not a package
// name, and not declared by another package.
func (in *Ingestor) checkAliases(ctx context.Context, pkg string, aliases []string) []string {
	if len(aliases) == 0 {
		return nil
	}
	snap, err := in.Catalog.Snapshot(ctx)
	if err != nil {
		return []string{fmt.Sprintf("reading the catalog for aliases: %v", err)}
	}
	var problems []string
	for _, a := range aliases {
		switch err := catalog.ValidateName(a); {
		case err != nil:
			problems = append(problems, fmt.Sprintf("label %s: %v", LabelAliases, err))
		case a == pkg || len(snap.Releases(a)) > 0:
			problems = append(problems, fmt.Sprintf("label %s: alias %q is a package name", LabelAliases, a))
		default:
			for _, name := range snap.Names() {
				if name == pkg {
					continue
				}
				for _, r := range snap.Releases(name) {
					if slices.Contains(r.Aliases, a) {
						problems = append(problems, fmt.Sprintf("label %s: alias %q is declared by package %s already", LabelAliases, a, name))
						break
					}
				}
			}
		}
	}
	return problems
}

// policy is in.Policy with the push default for MaxEntries.
func (in *Ingestor) policy() layer.Policy {
	p := in.Policy
	if p.MaxEntries == 0 {
		p.MaxEntries = DefaultMaxEntries
	}
	return p
}

// acquire waits for an ingestion slot (or for ctx to end) and returns the
// function that gives it back.
func (in *Ingestor) acquire(ctx context.Context, p Push) (release func(), err error) {
	in.slotsOnce.Do(func() {
		n := in.MaxIngestions
		if n <= 0 {
			n = DefaultMaxIngestions
		}
		in.slots = make(chan struct{}, n)
	})
	select {
	case in.slots <- struct{}{}:
		return func() { <-in.slots }, nil
	default:
	}
	in.log().DebugContext(ctx, "pushed package waits for an ingestion slot", "name", p.Name, "version", p.Version, "slots", cap(in.slots))
	select {
	case in.slots <- struct{}{}:
		return func() { <-in.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an ingestion slot: %w", ctx.Err())
	}
}

func (in *Ingestor) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Ingestor) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.New(slog.DiscardHandler)
}
