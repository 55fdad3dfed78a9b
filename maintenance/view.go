package maintenance

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// view is what gc reads before it deletes anything.
type view struct {
	// refs are the blobs that must stay: layers of package versions and
	// every digest a live document mentions.
	refs map[digest.Digest]bool
	// orphans are documents no repository holds and nothing else keeps
	// live, with the digests each mentions: gc deletes them (when old
	// enough) and with them their claim on blobs.
	orphans map[digest.Digest][]digest.Digest
	// links are the repositories each blob is linked to.
	links map[digest.Digest][]string
	// held are the documents some repository holds.
	held map[digest.Digest]bool
	// docs are the stored documents.
	docs map[digest.Digest]stored
}

// keep makes orphan d's digests references: it stays, and so does what it
// names.
func (v *view) keep(d digest.Digest) {
	for _, m := range v.orphans[d] {
		v.refs[m] = true
	}
}

// readView reads what keeps blobs alive, as distribution's gc does for
// ordinary repositories: a blob stays while a package version uses it, a
// composed image (an index with io.envreg.stack and its manifests) or a
// manifest that some repository holds mentions it. A blob linked to a
// repository that no manifest names (an upload whose manifest never came,
// or whose manifest was deleted) goes once it is older than the grace
// period.
func readView(ctx context.Context, cat catalog.Store) (*view, error) {
	dw, ok := cat.(DocumentWalker)
	if !ok {
		return nil, errNoDocWalk
	}
	v := &view{refs: map[digest.Digest]bool{}, orphans: map[digest.Digest][]digest.Digest{},
		links: map[digest.Digest][]string{}, held: map[digest.Digest]bool{}, docs: map[digest.Digest]stored{}}
	snap, err := cat.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for _, r := range snap.AllReleases() {
		for _, l := range r.Layers {
			v.refs[l.Digest] = true
		}
	}
	if err := v.readRepositories(ctx, cat); err != nil {
		return nil, err
	}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		v.docs[d.Digest] = readStored(d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing stored documents (nothing deleted; run envreg verify): %w", err)
	}
	v.classify()
	return v, nil
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
// references, and orphans.
func (v *view) classify() {
	live := map[digest.Digest]bool{}
	for d := range v.held {
		live[d] = true
	}
	for dgst, st := range v.docs {
		if st.doc.stack() != "" {
			live[dgst] = true
		}
	}
	// A live index keeps its manifests (and nested indexes) whether or
	// not they are held themselves.
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
