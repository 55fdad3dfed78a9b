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

// collectOrphans deletes (or, in a dry run, lists) the orphaned documents
// old enough, indexes first (an index never names a deleted manifest),
// each after checking again that no repository holds it and no stack
// marks it, and makes the kept ones' digests references. An index kept
// keeps the manifests it names. It returns the set it deleted.
func (c *collector) collectOrphans(ctx context.Context, v *view) (map[digest.Digest]bool, error) {
	deleted := map[digest.Digest]bool{}
	spared := map[digest.Digest]bool{}
	purger, canDelete := c.s.Catalog.(catalog.Purger)
	orphans := slices.SortedFunc(maps.Keys(v.orphans), func(a, b digest.Digest) int {
		return cmp.Or(cmp.Compare(v.level(a), v.level(b)), cmp.Compare(a, b))
	})
	for _, d := range orphans {
		keep, err := c.keepOrphan(ctx, v, d, canDelete && !spared[d])
		if errors.Is(err, catalog.ErrNotFound) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, err
		}
		if keep {
			v.keep(d)
			c.count(d, false)
			if doc := v.docs[d].doc; doc != nil {
				for _, m := range doc.Manifests {
					spared[m.Digest] = true
				}
			}
			continue
		}
		if !c.o.DryRun {
			if err := purger.DeleteDocument(ctx, d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return nil, fmt.Errorf("deleting manifest %s: %w", d, err)
			}
		}
		deleted[d] = true
		c.count(d, true)
		c.deleted(Deletion{Digest: d, Document: true, LastServed: c.unmarked[d]})
	}
	return deleted, nil
}

// count counts orphan d as deleted or kept, as a composition (its marks
// went in this run) or as another document.
func (c *collector) count(d digest.Digest, deleted bool) {
	_, composed := c.unmarked[d]
	switch {
	case composed && deleted:
		c.r.CompositionsDeleted++
	case composed:
		c.r.CompositionsKept++
	case deleted:
		c.r.DocumentsDeleted++
	default:
		c.r.DocumentsKept++
	}
}

// keepOrphan reports whether orphan d stays: it is too young (or its age
// unknown), it cannot be deleted, or since gc read the store a repository
// holds it again or a stack marked it again. An error wrapping
// catalog.ErrNotFound means it is gone already.
func (c *collector) keepOrphan(ctx context.Context, v *view, d digest.Digest, deletable bool) (bool, error) {
	if !deletable {
		return true, nil
	}
	if old, err := c.orphanOld(ctx, d); err != nil || !old {
		return true, err
	}
	switch isHeld, err := held(ctx, c.s.Catalog, d); {
	case err != nil:
		return true, fmt.Errorf("checking manifest %s: %w", d, err)
	case isHeld: // pushed again since the first read
		return true, nil
	}
	marked, err := c.markedNow(ctx, v.stacks, d)
	if err != nil {
		return true, fmt.Errorf("checking manifest %s: %w", d, err)
	}
	return marked, nil // composed again (a replica served it) since the first read
}

// orphanOld reports whether orphaned document d is older than the grace
// period, or of any age with none. A composition whose marks this run
// removed is as old as its last serve; for other documents a catalog
// that cannot tell their age keeps them while a grace period applies.
func (c *collector) orphanOld(ctx context.Context, d digest.Digest) (bool, error) {
	if c.o.Grace == 0 {
		return true, nil
	}
	if served, ok := c.unmarked[d]; ok {
		return c.o.Clock().Sub(served) >= c.o.Grace, nil
	}
	ager, ok := c.s.Catalog.(DocumentAger)
	if !ok {
		return false, nil
	}
	t, err := ager.DocumentModTime(ctx, d)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return false, err
		}
		return false, fmt.Errorf("document %s: %w", d, err)
	}
	return c.o.Clock().Sub(t) >= c.o.Grace, nil
}

// held reports whether some repository holds manifest d now (read fresh,
// right before an orphaned document is deleted).
func held(ctx context.Context, repos catalog.Repositories, d digest.Digest) (bool, error) {
	names, err := repos.RepositoryNames(ctx)
	if err != nil {
		return false, err
	}
	for _, repo := range names {
		switch _, err := repos.Manifest(ctx, repo, d); {
		case err == nil:
			return true, nil
		case !errors.Is(err, catalog.ErrNotFound):
			return false, err
		}
	}
	return false, nil
}

// markedNow reports whether one of stacks marks d now (read fresh, right
// before an orphaned document is deleted). In a dry run, the marks gc
// would have removed do not count.
func (c *collector) markedNow(ctx context.Context, stacks map[string]bool, d digest.Digest) (bool, error) {
	for _, stack := range slices.Sorted(maps.Keys(stacks)) {
		m, err := c.s.Catalog.Composed(ctx, stack, d)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			continue
		case err != nil:
			return false, err
		case !c.o.DryRun || !c.expired(m):
			return true, nil
		}
	}
	return false, nil
}
