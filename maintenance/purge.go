package maintenance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
)

// PurgeOptions configure Purge.
type PurgeOptions struct {
	// DryRun changes nothing; the report says what would go.
	DryRun bool
	// OnDelete is called for every composed document deleted (or, in a
	// dry run, that would be).
	OnDelete func(digest.Digest)
}

// PurgeReport says what Purge removed.
type PurgeReport struct {
	// Release is the package version purged.
	Release catalog.Release
	// Indexes and Manifests are the composed documents deleted because a
	// manifest used one of the release's layers.
	Indexes, Manifests []digest.Digest
}

// Purge removes a package version for good: what yank keeps, purge
// deletes. In an order that a crash at any point leaves consistent and a
// second run completes:
//
//  1. yank it, so that no new composition uses it;
//  2. delete every stored composed index that names a manifest using one
//     of its layers, then those manifests (env@sha256:… pinned to them
//     now answers MANIFEST_UNKNOWN);
//  3. remove the release from the catalog.
//
// Its layer blobs are then referenced by nothing (unless a pushed
// repository holds them) and the next gc deletes them. An unknown version
// is an error that lists the versions there are.
func Purge(ctx context.Context, cat catalog.Store, name string, v *semver.Version, o PurgeOptions) (*PurgeReport, error) {
	purger, ok := cat.(catalog.Purger)
	if !ok {
		return nil, errNoPurge
	}
	dw, ok := cat.(DocumentWalker)
	if !ok {
		return nil, errNoDocWalk
	}
	snap, err := cat.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(snap.Releases(name), func(r catalog.Release) bool { return r.Version.Equal(v) })
	if i < 0 {
		_, err := catalog.SetYanked(ctx, cat, name, v, true) // the error lists the versions there are
		return nil, err
	}
	r := &PurgeReport{Release: snap.Releases(name)[i]}
	if !o.DryRun && !r.Release.Yanked {
		if _, err := catalog.SetYanked(ctx, cat, name, v, true); err != nil {
			return nil, err
		}
	}
	if r.Indexes, r.Manifests, err = usersOf(ctx, dw, r.Release); err != nil {
		return nil, err
	}
	for _, d := range slices.Concat(r.Indexes, r.Manifests) { // indexes first: none ever names a missing manifest
		if !o.DryRun {
			if err := purger.DeleteDocument(ctx, d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return nil, fmt.Errorf("purging %s: %w", r.Release.ID(), err)
			}
		}
		if o.OnDelete != nil {
			o.OnDelete(d)
		}
	}
	if !o.DryRun {
		if err := purger.RemoveRelease(ctx, name, v); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return nil, fmt.Errorf("purging %s: %w", r.Release.ID(), err)
		}
	}
	return r, nil
}

// usersOf returns the composed indexes that name a manifest using one of
// rel's layers, and those manifests, sorted.
func usersOf(ctx context.Context, dw DocumentWalker, rel catalog.Release) (indexes, manifests []digest.Digest, err error) {
	layers := map[digest.Digest]bool{}
	for _, l := range rel.Layers {
		layers[l.Digest] = true
	}
	docs := map[digest.Digest]document{}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		if doc, err := parseDocument(d); err == nil {
			docs[d.Digest] = doc
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing stored manifests (nothing deleted): %w", err)
	}
	for _, dgst := range slices.Sorted(maps.Keys(docs)) {
		idx := docs[dgst]
		if idx.Annotations[manifestgen.KeyStack] == "" {
			continue // not a composed index: pushed content is not purged
		}
		uses := false
		for _, m := range idx.Manifests {
			child, ok := docs[m.Digest]
			if !ok || !slices.ContainsFunc(child.Layers, func(l ocispec.Descriptor) bool { return layers[l.Digest] }) {
				continue
			}
			uses = true
			if !slices.Contains(manifests, m.Digest) {
				manifests = append(manifests, m.Digest)
			}
		}
		if uses {
			indexes = append(indexes, dgst)
		}
	}
	return indexes, manifests, nil
}
