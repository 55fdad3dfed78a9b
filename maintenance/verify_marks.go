package maintenance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// checkMarks checks the stacks' marks (catalog.Compositions) against the
// documents read before them (a composition marks everything before it
// stores its documents, so a document seen has its marks seen):
//
//   - A mark on a digest that is stored neither as a document nor as a
//     blob is a note, not damage: a gc on another replica removes a
//     composition's documents right after its marks, and a composition is
//     marked before it is stored. The stack serves nothing for it.
//   - A marked index or manifest whose manifests or config its stack does
//     not mark is damage: the stack serves the index, and a pull of it
//     fails on what it names. Nothing leaves a composition so (the
//     composer marks it whole; gc and purge remove the index's mark first).
//   - A composed index (io.envreg.stack) that no repository holds and its
//     stack does not mark is a note, not damage. Before adoption it is a
//     composition stored before marks existed, which envreg serve or gc
//     adopts. After, it is one whose marks gc removed because no one
//     pulled it within the retention (or purge, because it used a purged
//     version): the stack stops serving it on purpose, and gc deletes it
//     in the same run or, if that run was interrupted, the next one.
//     Calling it damage would fail every verify that overlaps a gc.
func (v *verifier) checkMarks(ctx context.Context) error {
	w, ok := v.s.Catalog.(catalog.ComposedWalker)
	if !ok {
		v.note("the catalog cannot list its marks (no WalkComposed): not checked")
		return nil
	}
	marks := map[string]map[digest.Digest]bool{}
	err := w.WalkComposed(ctx, func(stack string, m catalog.ComposedMark) error {
		if marks[stack] == nil {
			marks[stack] = map[digest.Digest]bool{}
		}
		marks[stack][m.Digest] = true
		v.r.Marks++
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing the stacks' marks: %w", err)
	}
	v.r.MarkedStacks = len(marks)
	for _, stack := range slices.Sorted(maps.Keys(marks)) {
		for _, d := range slices.Sorted(maps.Keys(marks[stack])) {
			if err := v.checkMark(ctx, stack, d, marks[stack]); err != nil {
				return err
			}
		}
	}
	return v.checkUnmarked(ctx, marks)
}

// checkMark checks one mark of stack: what it marks is stored, and what
// its document names is marked too.
func (v *verifier) checkMark(ctx context.Context, stack string, d digest.Digest, marks map[digest.Digest]bool) error {
	doc, isDoc := v.docs[d]
	if _, isBlob := v.blobs[d]; !isDoc && !isBlob {
		v.note("stack %s marks %s, which is not stored (a gc elsewhere may be collecting it, or a composition being stored)", stack, d)
		return nil
	}
	if !isDoc {
		return nil
	}
	parsed, err := parseDocument(doc)
	if err != nil {
		return nil // reported with the documents
	}
	var names []digest.Digest
	for _, m := range parsed.Manifests {
		names = append(names, m.Digest)
	}
	if parsed.Config != nil {
		names = append(names, parsed.Config.Digest)
	}
	for _, n := range names {
		if marks[n] {
			continue
		}
		// Read both again: a gc may have removed them since the walk,
		// the parent first.
		still, err := v.marked(ctx, stack, d)
		if err != nil || !still {
			return err
		}
		if child, err := v.marked(ctx, stack, n); err != nil || child {
			return err
		}
		v.damage("stack %s serves %s but not %s, which it names (no mark): a pull of it fails", stack, d, n)
	}
	return nil
}

// marked reads stack's mark on d afresh.
func (v *verifier) marked(ctx context.Context, stack string, d digest.Digest) (bool, error) {
	_, err := v.s.Catalog.Composed(ctx, stack, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the mark of %s in %s: %w", d, stack, err)
	}
	return true, nil
}

// checkUnmarked notes the composed indexes that no repository holds and
// their stack does not mark.
func (v *verifier) checkUnmarked(ctx context.Context, marks map[string]map[digest.Digest]bool) error {
	held, err := heldDocuments(ctx, v.s.Catalog)
	if err != nil {
		return err
	}
	adopted := true
	if la, ok := v.s.Catalog.(catalog.LegacyAdoption); ok {
		if adopted, err = la.LegacyAdopted(ctx); err != nil {
			return err
		}
	}
	for _, d := range slices.Sorted(maps.Keys(v.docs)) {
		doc, err := parseDocument(v.docs[d])
		stack := doc.stack()
		if err != nil || stack == "" || held[d] || marks[stack][d] {
			continue
		}
		if !adopted {
			v.note("index %s of stack %s was stored before marks existed: envreg serve or envreg gc adopts it (pinned)", d, stack)
			continue
		}
		v.note("index %s: stack %s no longer marks it (not pulled within gc's retention, or purged); the next envreg gc deletes it", d, stack)
	}
	return nil
}

// checkRepositories checks that every index a repository holds names only
// manifests the same repository holds: a DELETE of a child manifest is
// accepted (as the distribution spec's conformance suite does it, children
// before their index), and leaves an index whose pull fails on the child,
// which is reported here rather than refused there.
func (v *verifier) checkRepositories(ctx context.Context) error {
	names, err := v.s.Catalog.RepositoryNames(ctx)
	if err != nil {
		return fmt.Errorf("listing repositories: %w", err)
	}
	for _, repo := range names {
		recs, err := v.s.Catalog.Manifests(ctx, repo)
		if err != nil {
			return fmt.Errorf("listing the manifests of repository %s: %w", repo, err)
		}
		holds := map[digest.Digest]bool{}
		for _, rec := range recs {
			holds[rec.Digest] = true
		}
		for _, rec := range recs {
			doc, err := parseDocument(v.docs[rec.Digest])
			if err != nil || !isIndex(doc.MediaType) {
				continue // not stored or not parsable: reported with the documents
			}
			v.r.RepositoryIndexes++
			for _, m := range doc.Manifests {
				if !holds[m.Digest] {
					v.damage("repository %s: index %s names manifest %s, which the repository no longer holds: a pull of the index fails", repo, rec.Digest, m.Digest)
				}
			}
		}
		v.r.Repositories++
	}
	return nil
}
