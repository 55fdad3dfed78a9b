package maintenance

import (
	"context"
	"fmt"
	"maps"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// view is what gc reads before it deletes anything.
type view struct {
	// refs are the blobs that must stay: layers of package versions,
	// every digest a live document mentions, and every digest a stack
	// marks.
	refs map[digest.Digest]bool
	// orphans are documents that no repository holds and no stack marks
	// (nor names through a live index), with the digests each mentions:
	// gc deletes them (when old enough) and with them their claim on
	// blobs.
	orphans map[digest.Digest][]digest.Digest
	// links are the repositories each blob is linked to.
	links map[digest.Digest][]string
	// held are the documents some repository holds.
	held map[digest.Digest]bool
	// docs are the stored documents.
	docs map[digest.Digest]stored
	// marks are the stacks' marks on what they composed, by stack.
	marks map[string]map[digest.Digest]catalog.ComposedMark
	// referrers are, by subject, the stored documents that name it as
	// their subject (SBOM artifacts; filled by expire).
	referrers map[digest.Digest][]digest.Digest
	// stacks are the stacks of the catalog and those with marks: a
	// document is marked again in one of them, if at all.
	stacks map[string]bool
}

// keep makes orphan d's digests references: it stays, and so does what it
// names.
func (v *view) keep(d digest.Digest) {
	for _, m := range v.orphans[d] {
		v.refs[m] = true
	}
}

// marked reports whether some stack marks d.
func (v *view) marked(d digest.Digest) bool {
	for _, ms := range v.marks {
		if _, ok := ms[d]; ok {
			return true
		}
	}
	return false
}

// readView reads what keeps blobs and documents alive, as distribution's
// gc does for ordinary repositories: a blob stays while a package version
// uses it or a live document mentions it; a document is live while some
// repository holds it, some stack marks it (catalog.Compositions), or a
// live index names it. A blob linked to a repository that no manifest
// names (an upload whose manifest never came, or whose manifest was
// deleted) goes once it is older than the grace period.
//
// Documents are read before marks: a composition marks everything before
// it stores its documents, so a document seen here has its marks seen
// too.
func readView(ctx context.Context, cat catalog.Store) (*view, error) {
	dw, ok := cat.(DocumentWalker)
	if !ok {
		return nil, errNoDocWalk
	}
	mw, ok := cat.(catalog.ComposedWalker)
	if !ok {
		return nil, errNoMarkWalk
	}
	v := &view{refs: map[digest.Digest]bool{}, orphans: map[digest.Digest][]digest.Digest{},
		links: map[digest.Digest][]string{}, held: map[digest.Digest]bool{}, docs: map[digest.Digest]stored{},
		marks: map[string]map[digest.Digest]catalog.ComposedMark{}, stacks: map[string]bool{}}
	if err := v.readCatalog(ctx, cat); err != nil {
		return nil, err
	}
	if err := v.readRepositories(ctx, cat); err != nil {
		return nil, err
	}
	err := dw.WalkDocuments(ctx, func(d catalog.Document) error {
		v.docs[d.Digest] = readStored(d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing stored documents (nothing deleted; run envreg verify): %w", err)
	}
	err = mw.WalkComposed(ctx, func(stack string, m catalog.ComposedMark) error {
		v.mark(stack, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the stacks' marks (nothing deleted): %w", err)
	}
	return v, nil
}

func (v *view) mark(stack string, m catalog.ComposedMark) {
	if v.marks[stack] == nil {
		v.marks[stack] = map[digest.Digest]catalog.ComposedMark{}
	}
	v.marks[stack][m.Digest] = m
	v.stacks[stack] = true
}

// readCatalog reads the layers of every release, and the stacks.
func (v *view) readCatalog(ctx context.Context, cat catalog.Reader) error {
	snap, err := cat.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	for _, r := range snap.AllReleases() {
		for _, l := range r.AllLayers() {
			for _, b := range l.Blobs() {
				v.refs[b.Digest] = true
			}
		}
	}
	for _, st := range snap.Stacks() {
		v.stacks[st.Name] = true
	}
	return nil
}

// readRepositories reads the blob links and held manifests of every
// ordinary repository.
func (v *view) readRepositories(ctx context.Context, repos catalog.Repositories) error {
	names, err := repos.RepositoryNames(ctx)
	if err != nil {
		return fmt.Errorf("listing repositories: %w", err)
	}
	for _, repo := range names {
		linked, err := repos.Blobs(ctx, repo)
		if err != nil {
			return fmt.Errorf("listing the blobs of repository %s: %w", repo, err)
		}
		for _, d := range linked {
			v.links[d] = append(v.links[d], repo)
		}
		recs, err := repos.Manifests(ctx, repo)
		if err != nil {
			return fmt.Errorf("listing the manifests of repository %s: %w", repo, err)
		}
		for _, rec := range recs {
			v.held[rec.Digest] = true
		}
	}
	return nil
}

// classify splits the documents into live ones, whose mentions are
// references, and orphans; every marked digest is a reference too (a
// config marked by a composition being stored now, before its manifest).
func (v *view) classify() {
	live := maps.Clone(v.held)
	for _, ms := range v.marks {
		for d := range ms {
			v.refs[d] = true
			live[d] = true
		}
	}
	// A live index keeps its manifests (and nested indexes) whether or
	// not they are held or marked themselves.
	for changed := true; changed; {
		changed = false
		for dgst := range live {
			if st, ok := v.docs[dgst]; ok && st.doc != nil {
				for _, m := range st.doc.Manifests {
					if !live[m.Digest] {
						live[m.Digest], changed = true, true
					}
				}
			}
		}
	}
	for dgst, st := range v.docs {
		if st.doc != nil && !live[dgst] {
			v.orphans[dgst] = st.mentions
			continue
		}
		for _, m := range st.mentions {
			v.refs[m] = true
		}
	}
}
