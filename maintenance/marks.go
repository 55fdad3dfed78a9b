package maintenance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// expire removes the marks of compositions that were neither pinned nor
// served since the cutoff (now - Retention), stack by stack, and records
// in c.unmarked when each removed mark was last served: that is the age
// of the documents it covered.
//
// A composition is removed whole or not at all. Its index, manifests and
// configs are marked separately and a pull by digest refreshes only what
// it fetches (a client that re-reads the index only keeps the index
// fresh), so a mark that is pinned or fresh protects every marked digest
// its document names, down the tree: an index its manifests, a manifest
// its config. The rest is unmarked parents first (indexes, then
// manifests, then blobs), with the backend's conditional Unmark: a mark
// served again since it was read is kept, and then what it names is kept
// too. So a stack never keeps serving an index whose manifests or configs
// it stopped serving.
func (c *collector) expire(ctx context.Context, v *view) error {
	v.findReferrers()
	for _, stack := range slices.Sorted(maps.Keys(v.marks)) {
		if err := c.expireStack(ctx, v, stack); err != nil {
			return err
		}
	}
	return nil
}

func (c *collector) expireStack(ctx context.Context, v *view, stack string) error {
	marks := v.marks[stack]
	protected := map[digest.Digest]bool{}
	var expired []digest.Digest
	for d, m := range marks {
		if !c.expired(m) {
			v.protect(marks, d, protected)
			continue
		}
		expired = append(expired, d)
	}
	slices.SortFunc(expired, func(a, b digest.Digest) int {
		return cmp.Or(cmp.Compare(v.level(a), v.level(b)), cmp.Compare(a, b))
	})
	for _, d := range expired {
		if protected[d] {
			continue
		}
		removed, err := c.unmark(ctx, stack, d)
		if err != nil {
			return err
		}
		if !removed { // served again meanwhile: it and what it names stay
			v.protect(marks, d, protected)
			continue
		}
		if served := marks[d].Served; served.After(c.unmarked[d]) {
			c.unmarked[d] = served
		}
		c.removed[stack] = append(c.removed[stack], d)
		delete(marks, d)
		c.r.MarksRemoved++
	}
	for _, m := range marks {
		c.r.MarksKept++
		if m.Pinned {
			c.r.MarksPinned++
		}
	}
	return nil
}

// protect marks d and every digest marked in the same stack that d's
// document names, recursively, as protected; and the referrers of d that
// the stack marked (its SBOM artifacts), which gc keeps while it keeps
// their subject.
func (v *view) protect(marks map[digest.Digest]catalog.ComposedMark, d digest.Digest, protected map[digest.Digest]bool) {
	if protected[d] {
		return
	}
	protected[d] = true
	for _, m := range slices.Concat(v.docs[d].mentions, v.referrers[d]) {
		if _, ok := marks[m]; ok {
			v.protect(marks, m, protected)
		}
	}
}

// findReferrers fills v.referrers: for each stored document that has a
// subject, subject → the document.
func (v *view) findReferrers() {
	v.referrers = map[digest.Digest][]digest.Digest{}
	for d, st := range v.docs {
		if st.doc != nil && st.doc.Subject != nil {
			v.referrers[st.doc.Subject.Digest] = append(v.referrers[st.doc.Subject.Digest], d)
		}
	}
}

// level orders a composition's parts: indexes, manifests, the rest.
func (v *view) level(d digest.Digest) int {
	switch doc := v.docs[d].doc; {
	case doc != nil && isIndex(doc.MediaType):
		return 0
	case doc != nil:
		return 1
	default:
		return 2
	}
}

// expired reports whether m is a mark gc removes: not pinned, and last
// served before the cutoff. With no retention no mark is.
func (c *collector) expired(m catalog.ComposedMark) bool {
	return c.o.Retention > 0 && !m.Pinned && m.Served.Before(c.cutoff)
}

// unmark removes stack's mark on d unless it was served since the cutoff
// or pinned meanwhile (in a dry run it only says it would). A mark removed
// by someone else meanwhile counts as removed.
func (c *collector) unmark(ctx context.Context, stack string, d digest.Digest) (bool, error) {
	if c.o.DryRun {
		return true, nil
	}
	w := c.s.Catalog.(catalog.ComposedWalker) // checked by readView
	removed, err := w.Unmark(ctx, stack, d, c.cutoff)
	if err != nil {
		return false, fmt.Errorf("unmarking %s in %s: %w", d, stack, err)
	}
	if removed {
		return true, nil
	}
	switch _, err := c.s.Catalog.Composed(ctx, stack, d); {
	case errors.Is(err, catalog.ErrNotFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading the mark of %s in %s: %w", d, stack, err)
	}
	return false, nil
}

// adopt adopts the compositions stored before marks existed, once per
// store, so that they are not taken for orphans (not in a dry run: see
// planAdoption).
func (c *collector) adopt(ctx context.Context) error {
	as, ok := c.s.Catalog.(AdoptionStore)
	if !ok || c.o.DryRun {
		return nil
	}
	n, err := Adopt(ctx, as, c.o.Clock(), false)
	if err != nil {
		return fmt.Errorf("%w (nothing deleted; run envreg verify)", err)
	}
	c.r.Adopted = n
	return nil
}

// planAdoption adds to v, in a dry run, the marks adopt would make.
func (c *collector) planAdoption(ctx context.Context, v *view) error {
	as, ok := c.s.Catalog.(AdoptionStore)
	if !ok || !c.o.DryRun {
		return nil
	}
	if done, err := as.LegacyAdopted(ctx); err != nil || done {
		return err
	}
	found, err := legacyCompositions(ctx, as)
	if err != nil {
		return fmt.Errorf("adopting compositions (nothing deleted; run envreg verify): %w", err)
	}
	for _, l := range found {
		for _, d := range l.digests {
			v.mark(l.stack, catalog.ComposedMark{Digest: d, Served: c.o.Clock(), Pinned: true})
		}
	}
	c.r.Adopted = len(found)
	return nil
}
