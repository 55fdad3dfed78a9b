package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// DefaultGrace is how old an unreferenced blob or document must be before
// gc deletes it: far longer than any publish (blob stored, then the
// release recorded), compose (config blob stored, then its manifest) or
// push (blobs, then the manifest) takes.
const DefaultGrace = time.Hour

// DefaultRetention is how long a composition nobody pinned stays
// collectable-proof after it was last served: a digest a client has seen
// stays pullable at least this long.
const DefaultRetention = 90 * 24 * time.Hour

// MinRetention is the shortest retention GC accepts. A served composition's
// marks are refreshed only once per touch interval
// (manifestgen.DefaultTouchInterval, an hour), and a replica trusts a
// composition it cached for as long without reading its marks, so a
// composition in use can look up to an hour old; a day leaves room for
// that and for clocks that disagree.
const MinRetention = 24 * time.Hour

// GCOptions configure GC.
type GCOptions struct {
	// Retention collects compositions (composed indexes, manifests and
	// configs) whose stack's marks are not pinned and were last served
	// longer ago than this; at least MinRetention. Zero collects no
	// composition.
	Retention time.Duration
	// Grace keeps unreferenced blobs and documents younger than this:
	// publishing, composing and pushing store content before the reference
	// that makes it live. Zero collects them whatever their age, and needs
	// no ages from the stores.
	Grace time.Duration
	// DryRun deletes nothing; the report and the callback say what would
	// go.
	DryRun bool
	// Clock is the time gc judges ages by (default time.Now).
	Clock func() time.Time
	// Reopen opens the catalog again for the second read of references
	// just before the sweep (a Redis replica's snapshot may lag); GC
	// closes it. Nil reads the same catalog again.
	Reopen func(ctx context.Context) (catalog.Store, error)
	// OnDelete is called for every blob and document deleted (or, in a dry
	// run, that would be), right after it went.
	OnDelete func(Deletion)
}

// Deletion is one blob or document gc deleted.
type Deletion struct {
	Digest digest.Digest
	// Document is set for a stored index or manifest, Size for a blob.
	Document bool
	Size     int64
	// LastServed is, for a composed document whose marks this run
	// removed, when a stack last served it (zero for other documents).
	LastServed time.Time
}

// GCReport says what a gc run did (or, in a dry run, would do).
type GCReport struct {
	// Adopted counts the compositions stored before marks existed that
	// this run adopted (pinned); once per store.
	Adopted int
	// Marks of compositions removed because they were not served within
	// the retention, and kept (served within it, or part of a composition
	// that was, or pinned: MarksPinned of them).
	MarksRemoved, MarksKept, MarksPinned int
	// Composed documents whose marks this run removed: deleted, and kept
	// because a stack marked them again (served them) meanwhile.
	CompositionsDeleted, CompositionsKept int
	// Other documents no repository holds and no stack marks: deleted,
	// and kept because they are younger than the grace period or their
	// age is unknown.
	DocumentsDeleted, DocumentsKept int
	// Blobs deleted and the bytes that freed; blobs kept because something
	// references them, and unreferenced ones kept for the grace period.
	BlobsDeleted, BlobsReferenced, BlobsYoung int
	BytesFreed, BytesReferenced               int64
}

// collector is one gc run.
type collector struct {
	s    Stores
	o    GCOptions
	bw   BlobWalker
	del  BlobDeleter
	ages BlobAger // nil with no grace period
	r    GCReport
	// cutoff is the time before which a composition's last serve makes
	// it collectable: now - Retention.
	cutoff time.Time
	// unmarked are the digests whose marks this run removed, with when
	// they were last served: their documents' age.
	unmarked map[digest.Digest]time.Time
	// removed are the marks this run removed (in a dry run, would have),
	// by stack.
	removed map[string][]digest.Digest
}

// GC collects what nothing keeps any more, in this order:
//
//  1. adopt the compositions stored before stacks kept marks (Adopt, once
//     per store), so that they are not taken for orphans;
//  2. remove the stacks' marks on compositions neither pinned nor served
//     within the retention, whole compositions at a time (see expire);
//  3. delete the documents that no repository holds and no stack marks
//     (nor names through a live index): compositions whose marks went in
//     step 2, and pushed manifests deleted from their repositories. Each
//     is checked again right before its delete, and kept if a repository
//     holds it or a stack marked it (a replica served it) meanwhile;
//  4. delete the blobs nothing references: no package version's layer,
//     no blob linked to an ordinary repository, no live document's config
//     or layer, no marked digest. A blob linked to a repository is
//     unlinked with it.
//
// Whatever is younger than the grace period is kept, because publishing,
// composing and pushing store content before the reference that makes it
// live; a composition whose marks step 2 removed is as old as its last
// serve. Upload temp files are not blobs and never touched.
//
// Mark and sweep run on two views: references are read once, the
// candidates listed, then references are read again (from a freshly opened
// catalog, Reopen) just before deleting, and each candidate's age is
// checked again right before its Delete. What stays racy is a publish that
// re-uses an old unreferenced blob and records its release in the
// milliseconds between that second read and the Delete (layerstore/fs
// renews a re-used blob's age, S3 cannot), and a replica that re-stores a
// composition in the microseconds between a document's last check and its
// delete.
func GC(ctx context.Context, s Stores, o GCOptions) (*GCReport, error) {
	c, err := newCollector(s, o)
	if err != nil {
		return nil, err
	}
	if err := c.adopt(ctx); err != nil {
		return nil, err
	}
	v, err := readView(ctx, s.Catalog)
	if err != nil {
		return nil, err
	}
	if err := c.planAdoption(ctx, v); err != nil {
		return nil, err
	}
	if err := c.expire(ctx, v); err != nil {
		return nil, err
	}
	v.classify()
	// Orphaned documents first: deleting one ends its claim on blobs,
	// which this same run can then free.
	deleted, err := c.collectOrphans(ctx, v)
	if err != nil {
		return nil, err
	}
	candidates, err := c.candidates(ctx, v.refs)
	if err != nil {
		return nil, err
	}
	refs, links := v.refs, v.links
	if len(candidates) > 0 {
		if refs, links, err = c.freshRefs(ctx, deleted); err != nil {
			return nil, err
		}
	}
	if err := c.sweep(ctx, candidates, refs, links); err != nil {
		return nil, err
	}
	return &c.r, nil
}

func newCollector(s Stores, o GCOptions) (*collector, error) {
	if o.Grace < 0 {
		return nil, errors.New("the grace period must not be negative")
	}
	if o.Retention != 0 && o.Retention < MinRetention {
		return nil, fmt.Errorf("a retention of %s is shorter than the minimum, %s: a composition in use can look an hour old", o.Retention, MinRetention)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	c := &collector{s: s, o: o, cutoff: o.Clock().Add(-o.Retention), unmarked: map[digest.Digest]time.Time{},
		removed: map[string][]digest.Digest{}}
	var err error
	if c.bw, _, err = Walkers(s); err != nil {
		return nil, err
	}
	var ok bool
	if c.del, ok = s.Blobs.(BlobDeleter); !ok && !o.DryRun {
		return nil, errNoDelete
	}
	if c.ages, err = Ages(s.Blobs, o.Grace); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *collector) deleted(d Deletion) {
	if c.o.OnDelete != nil {
		c.o.OnDelete(d)
	}
}

// blob is a candidate for deletion.
type blob struct {
	d    digest.Digest
	size int64
}

// candidates lists the unreferenced blobs older than the grace period.
func (c *collector) candidates(ctx context.Context, refs map[digest.Digest]bool) ([]blob, error) {
	var out []blob
	err := c.bw.Walk(ctx, func(d digest.Digest, size int64) error {
		if refs[d] {
			c.r.BlobsReferenced++
			c.r.BytesReferenced += size
			return nil
		}
		switch young, err := c.young(ctx, d); {
		case errors.Is(err, layerstore.ErrNotFound):
			return nil
		case err != nil:
			return err
		case young:
			c.r.BlobsYoung++
			return nil
		}
		out = append(out, blob{d, size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	return out, nil
}

// young reports whether blob d is younger than the grace period.
func (c *collector) young(ctx context.Context, d digest.Digest) (bool, error) {
	if c.ages == nil {
		return false, nil
	}
	t, err := c.ages.ModTime(ctx, d)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	return c.o.Clock().Sub(t) < c.o.Grace, nil
}

// freshRefs reads the references again, from a fresh catalog: a publish
// may have recorded a release since the first read. Orphans still there
// were kept or are new: they keep their blobs (in a dry run, those it
// would delete do not).
func (c *collector) freshRefs(ctx context.Context, deleted map[digest.Digest]bool) (map[digest.Digest]bool, map[digest.Digest][]string, error) {
	cat := c.s.Catalog
	if c.o.Reopen != nil {
		fresh, err := c.o.Reopen(ctx)
		if err != nil {
			return nil, nil, err
		}
		defer fresh.Close()
		cat = fresh
	}
	fv, err := readView(ctx, cat)
	if err != nil {
		return nil, nil, err
	}
	if c.o.DryRun { // the marks it would have removed are still there
		for stack, ds := range c.removed {
			for _, d := range ds {
				if m, ok := fv.marks[stack][d]; ok && c.expired(m) {
					delete(fv.marks[stack], d)
				}
			}
		}
	}
	fv.classify()
	for d, ms := range fv.orphans {
		if deleted[d] {
			continue
		}
		for _, m := range ms {
			fv.refs[m] = true
		}
	}
	return fv.refs, fv.links, nil
}

// sweep deletes the candidates that are still unreferenced and old, and
// unlinks each deleted blob from the repositories it was linked to.
func (c *collector) sweep(ctx context.Context, candidates []blob, refs map[digest.Digest]bool, links map[digest.Digest][]string) error {
	for _, b := range candidates {
		if refs[b.d] {
			c.r.BlobsReferenced++
			c.r.BytesReferenced += b.size
			continue
		}
		switch young, err := c.young(ctx, b.d); {
		case errors.Is(err, layerstore.ErrNotFound):
			continue
		case err != nil:
			return err
		case young:
			c.r.BlobsYoung++
			continue
		}
		if !c.o.DryRun {
			if err := c.del.Delete(ctx, b.d); err != nil {
				if errors.Is(err, layerstore.ErrNotFound) {
					continue
				}
				return fmt.Errorf("deleting blob %s: %w (%d deleted so far, %d bytes freed)", b.d, err, c.r.BlobsDeleted, c.r.BytesFreed)
			}
		}
		c.r.BlobsDeleted++
		c.r.BytesFreed += b.size
		c.deleted(Deletion{Digest: b.d, Size: b.size})
		if c.o.DryRun {
			continue
		}
		for _, repo := range links[b.d] { // links to a blob that is gone
			if err := c.s.Catalog.UnlinkBlob(ctx, repo, b.d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return fmt.Errorf("unlinking deleted blob %s from %s: %w", b.d, repo, err)
			}
		}
	}
	return nil
}
