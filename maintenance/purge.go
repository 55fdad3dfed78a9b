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
	// manifest used one of the release's layers, and Referrers the SBOM
	// artifacts of those manifests that stacks composed.
	Indexes, Manifests, Referrers []digest.Digest
	// Marks counts the stacks' marks removed with them (on the indexes,
	// the manifests and their configs), pins included.
	Marks int
}

// Purge removes a package version for good: what yank keeps, purge
// deletes. In an order that a crash at any point leaves consistent and a
// second run completes:
//
//  1. yank it, so that no new composition uses it;
//  2. remove the stacks' marks, pinned or not, on every composition that
//     uses one of its layers (its index, the manifests that use the
//     layers, their configs), so that no stack serves them any more;
//  3. delete those indexes, then those manifests (env@sha256:… pinned to
//     them now answers MANIFEST_UNKNOWN);
//  4. remove the release from the catalog.
//
// A composed index is one that names its stack in its annotations or that
// a stack marks; a document some repository holds is pushed content and
// stays (its marks go). Marks go before documents: a crash between leaves
// documents no stack serves, which a second run finds by their
// annotations (or gc collects), never marks on documents that are gone.
// The layer blobs are then referenced by nothing (unless a pushed
// repository holds them) and the next gc deletes them, with the configs.
// An unknown version is an error that lists the versions there are.
func Purge(ctx context.Context, cat catalog.Store, name string, v *semver.Version, o PurgeOptions) (*PurgeReport, error) {
	purger, ok := cat.(catalog.Purger)
	if !ok {
		return nil, errNoPurge
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
	u, err := readUsers(ctx, cat, r.Release)
	if err != nil {
		return nil, err
	}
	r.Indexes, r.Manifests, r.Referrers = u.indexes, u.manifests, u.referrers
	if r.Marks, err = u.removeMarks(ctx, cat, o.DryRun); err != nil {
		return nil, fmt.Errorf("purging %s: %w", r.Release.ID(), err)
	}
	// Referrers and indexes first: none ever names a missing manifest.
	for _, d := range slices.Concat(r.Referrers, r.Indexes, r.Manifests) {
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

// users are the compositions that use a release.
type users struct {
	indexes, manifests []digest.Digest // to delete, sorted
	// referrers are the composed SBOM artifacts of the manifests.
	referrers []digest.Digest
	// marks are the marks to remove, by stack, each composition's index
	// first.
	marks map[string][]digest.Digest
}

// readUsers finds the composed indexes that name a manifest using one of
// rel's layers, those manifests, and the marks on them and their configs.
func readUsers(ctx context.Context, cat catalog.Store, rel catalog.Release) (*users, error) {
	dw, ok := cat.(DocumentWalker)
	if !ok {
		return nil, errNoDocWalk
	}
	docs := map[digest.Digest]document{}
	err := dw.WalkDocuments(ctx, func(d catalog.Document) error {
		if doc, err := parseDocument(d); err == nil {
			docs[d.Digest] = doc
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing stored manifests (nothing deleted): %w", err)
	}
	marks, err := readMarks(ctx, cat)
	if err != nil {
		return nil, fmt.Errorf("listing the stacks' marks (nothing deleted): %w", err)
	}
	held, err := heldDocuments(ctx, cat)
	if err != nil {
		return nil, fmt.Errorf("%w (nothing deleted)", err)
	}
	layers := map[digest.Digest]bool{}
	for _, l := range rel.AllLayers() {
		for _, b := range l.Blobs() {
			layers[b.Digest] = true
		}
	}
	u := &users{marks: map[string][]digest.Digest{}}
	for _, dgst := range slices.Sorted(maps.Keys(docs)) {
		idx := docs[dgst]
		if !isIndex(idx.MediaType) || (idx.stack() == "" && len(marks[dgst]) == 0) {
			continue // not a composed index: pushed content is not purged
		}
		used := usingManifests(idx, docs, layers)
		if len(used) == 0 {
			continue
		}
		u.addMarks(marks, dgst)
		if !held[dgst] {
			u.indexes = append(u.indexes, dgst)
		}
		for _, m := range used {
			u.addMarks(marks, m, docs[m].Config.Digest)
			if !held[m] && !slices.Contains(u.manifests, m) {
				u.manifests = append(u.manifests, m)
			}
		}
	}
	u.addReferrers(docs, marks, held)
	return u, nil
}

// addReferrers adds the documents that stacks marked and that name one of
// u's manifests as their subject (SBOM artifacts), with the marks on them
// and on their layers (the SPDX documents). The empty config they share
// with the stack's other artifacts keeps its marks; gc collects it when
// no artifact is left.
func (u *users) addReferrers(docs map[digest.Digest]document, marks map[digest.Digest][]string, held map[digest.Digest]bool) {
	for _, dgst := range slices.Sorted(maps.Keys(docs)) {
		doc := docs[dgst]
		if doc.Subject == nil || len(marks[dgst]) == 0 || held[dgst] || !slices.Contains(u.manifests, doc.Subject.Digest) {
			continue
		}
		u.referrers = append(u.referrers, dgst)
		u.addMarks(marks, dgst)
		for _, l := range doc.Layers {
			u.addMarks(marks, l.Digest)
		}
	}
}

// usingManifests returns the manifests idx names that use one of layers.
func usingManifests(idx document, docs map[digest.Digest]document, layers map[digest.Digest]bool) []digest.Digest {
	var out []digest.Digest
	for _, m := range idx.Manifests {
		child, ok := docs[m.Digest]
		if ok && slices.ContainsFunc(child.Layers, func(l ocispec.Descriptor) bool { return layers[l.Digest] }) {
			out = append(out, m.Digest)
		}
	}
	return out
}

// addMarks adds the marks on ds, in every stack that has one, to the
// marks to remove.
func (u *users) addMarks(marks map[digest.Digest][]string, ds ...digest.Digest) {
	for _, d := range ds {
		for _, stack := range marks[d] {
			if !slices.Contains(u.marks[stack], d) {
				u.marks[stack] = append(u.marks[stack], d)
			}
		}
	}
}

// removeMarks removes the marks (in a dry run, counts them).
func (u *users) removeMarks(ctx context.Context, cat catalog.Store, dryRun bool) (int, error) {
	n := 0
	for _, stack := range slices.Sorted(maps.Keys(u.marks)) {
		ds := u.marks[stack]
		n += len(ds)
		if dryRun {
			continue
		}
		w := cat.(catalog.ComposedWalker) // marks were read through it
		if err := w.RemoveMarks(ctx, stack, ds...); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// readMarks returns the stacks that mark each digest; none when the
// catalog cannot list its marks.
func readMarks(ctx context.Context, cat catalog.Store) (map[digest.Digest][]string, error) {
	marks := map[digest.Digest][]string{}
	w, ok := cat.(catalog.ComposedWalker)
	if !ok {
		return marks, nil
	}
	err := w.WalkComposed(ctx, func(stack string, m catalog.ComposedMark) error {
		marks[m.Digest] = append(marks[m.Digest], stack)
		return nil
	})
	return marks, err
}
