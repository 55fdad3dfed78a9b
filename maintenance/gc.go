package maintenance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// GCOptions configure GC.
type GCOptions struct {
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
}

// GCReport says what a gc run did (or, in a dry run, would do).
type GCReport struct {
	// Documents no repository holds any more: deleted, and kept because
	// they are younger than the grace period or their age is unknown.
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
}

// GC deletes the blobs nothing references: no package version's layer, no
// blob linked to an ordinary (pushed-to) repository, no stored document's
// config or layer (documents are the composed indexes and manifests that
// keep env@sha256:… pullable, and pushed manifests). Before the blobs, it
// deletes the pushed documents no repository holds any more, which frees
// what they referenced in the same run. Whatever is younger than the grace
// period is kept, because publishing, composing and pushing store content
// before the reference that makes it live. Upload temp files are not blobs
// and never touched.
//
// Mark and sweep run on two views: references are read once, the
// candidates listed, then references are read again (from a freshly opened
// catalog, Reopen) just before deleting, and each candidate's age is
// checked again right before its Delete. What stays racy is a publish that
// re-uses an old unreferenced blob and records its release in the
// milliseconds between that second read and the Delete: layerstore/fs
// renews a re-used blob's age, S3 cannot.
func GC(ctx context.Context, s Stores, o GCOptions) (*GCReport, error) {
	c, err := newCollector(s, o)
	if err != nil {
		return nil, err
	}
	v, err := readView(ctx, s.Catalog)
	if err != nil {
		return nil, err
	}
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
	if o.Clock == nil {
		o.Clock = time.Now
	}
	c := &collector{s: s, o: o}
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

// collectOrphans deletes (or, in a dry run, lists) the orphaned documents
// older than the grace period, each after checking again that no
// repository holds it, and makes the kept ones' digests references. It
// returns the set it deleted.
func (c *collector) collectOrphans(ctx context.Context, v *view) (map[digest.Digest]bool, error) {
	deleted := map[digest.Digest]bool{}
	purger, canDelete := c.s.Catalog.(catalog.Purger)
	for _, d := range slices.Sorted(maps.Keys(v.orphans)) {
		switch old, err := c.orphanOld(ctx, d, canDelete); {
		case errors.Is(err, catalog.ErrNotFound):
			continue // gone meanwhile
		case err != nil:
			return nil, err
		case !old:
			v.keep(d)
			c.r.DocumentsKept++
			continue
		}
		switch isHeld, err := held(ctx, c.s.Catalog, d); {
		case err != nil:
			return nil, fmt.Errorf("checking manifest %s: %w", d, err)
		case isHeld: // pushed again since the first read
			v.keep(d)
			c.r.DocumentsKept++
			continue
		}
		if !c.o.DryRun {
			if err := purger.DeleteDocument(ctx, d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return nil, fmt.Errorf("deleting manifest %s: %w", d, err)
			}
		}
		deleted[d] = true
		c.r.DocumentsDeleted++
		c.deleted(Deletion{Digest: d, Document: true})
	}
	return deleted, nil
}

// orphanOld reports whether orphaned document d may be deleted as far as
// its age goes: older than the grace period, or of any age with none. A
// catalog that cannot delete documents, or cannot tell their age while a
// grace period applies, keeps them all.
func (c *collector) orphanOld(ctx context.Context, d digest.Digest, canDelete bool) (bool, error) {
	if !canDelete {
		return false, nil
	}
	if c.o.Grace == 0 {
		return true, nil
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
