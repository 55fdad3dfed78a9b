package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// Source is the store Migrate copies from: an embedded store, whose
// catalog and blobs can be listed.
type Source struct {
	Catalog SourceCatalog
	Blobs   SourceBlobs
}

// SourceCatalog is what Migrate reads of the source catalog.
type SourceCatalog interface {
	catalog.Reader
	catalog.Repositories
	DocumentWalker
	catalog.ComposedWalker
}

// SourceBlobs is what Migrate reads of the source blob store.
type SourceBlobs interface {
	layerstore.Reader
	BlobWalker
}

// The steps of a migration, in order.
const (
	StepBlobs        = "blobs"
	StepDocuments    = "documents"
	StepMarks        = "composition marks"
	StepRepositories = "repositories"
	StepCatalog      = "catalog"
)

// MigrateOptions configure Migrate.
type MigrateOptions struct {
	// Clock dates the marks of compositions adopted in the target (default
	// time.Now).
	Clock func() time.Time
	// OnStep is called after each step with the counts so far.
	OnStep func(step string, r *MigrateReport)
}

// MigrateReport counts what Migrate copied, and what the verification of
// the copy found missing.
type MigrateReport struct {
	Blobs, BlobBytes int64 // copied (blobs the target had are skipped)
	Documents        int
	Marks, Adopted   int // marks copied; legacy compositions adopted in the target
	Repositories     int
	Manifests, Tags  int // of the repositories
	Stacks, Releases int
	// Problems are what the target lacks after the copy; none means the
	// migration is complete.
	Problems []string
}

// Migrate copies src into dst, then verifies the copy.
//
// Order is what keeps the target consistent at every moment, so serving
// from it while migrating is safe: blobs first (each verified by the
// target on Put), then documents (which reference configs), the stacks'
// marks on what they composed, ordinary repositories, then stacks, and
// releases last (which reference layers). Running it again copies only
// what is missing.
func Migrate(ctx context.Context, src Source, dst Stores, o MigrateOptions) (*MigrateReport, error) {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	m := &migration{src: src, dst: dst, o: o}
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{StepBlobs, m.copyBlobs},
		{StepDocuments, m.copyDocuments},
		{StepMarks, m.copyMarks},
		{StepRepositories, m.copyRepositories},
		{StepCatalog, m.copyCatalog},
	} {
		if err := step.run(ctx); err != nil {
			return nil, err
		}
		if o.OnStep != nil {
			o.OnStep(step.name, &m.r)
		}
	}
	if err := m.verify(ctx); err != nil {
		return nil, err
	}
	return &m.r, nil
}

// migration is one run of Migrate.
type migration struct {
	src  Source
	dst  Stores
	o    MigrateOptions
	r    MigrateReport
	rels []catalog.Release
}

// copyBlobs copies layers and configs.
func (m *migration) copyBlobs(ctx context.Context) error {
	return m.src.Blobs.Walk(ctx, func(d digest.Digest, size int64) error {
		if n, err := m.dst.Blobs.Stat(ctx, d); err == nil && n == size {
			return nil
		}
		rc, _, err := m.src.Blobs.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := m.dst.Blobs.Put(ctx, d, size, rc); err != nil {
			return fmt.Errorf("copying blob %s: %w", d, err)
		}
		m.r.Blobs++
		m.r.BlobBytes += size
		return nil
	})
}

// copyDocuments copies composed and pushed indexes and manifests, so that
// pinned digests stay pullable.
func (m *migration) copyDocuments(ctx context.Context) error {
	err := m.src.Catalog.WalkDocuments(ctx, func(d catalog.Document) error {
		m.r.Documents++
		return m.dst.Catalog.PutDocument(ctx, d)
	})
	if err != nil {
		return fmt.Errorf("copying documents: %w", err)
	}
	return nil
}

// copyMarks copies the stacks' marks on what they composed: without them a
// stack serves none of the digests clients pinned. Compositions of a
// source written before marks existed are adopted in the target.
func (m *migration) copyMarks(ctx context.Context) error {
	err := m.src.Catalog.WalkComposed(ctx, func(stack string, mk catalog.ComposedMark) error {
		m.r.Marks++
		return m.dst.Catalog.MarkComposed(ctx, stack, mk.Served, mk.Pinned, mk.Digest)
	})
	if err != nil {
		return fmt.Errorf("copying composition marks: %w", err)
	}
	if as, ok := m.dst.Catalog.(AdoptionStore); ok {
		n, err := Adopt(ctx, as, m.o.Clock(), true)
		if err != nil {
			return err
		}
		m.r.Adopted = n
	}
	return nil
}

// copyRepositories copies every ordinary (pushed-to) repository: blob
// links, then manifest records (their documents were copied before), then
// tags.
func (m *migration) copyRepositories(ctx context.Context) error {
	names, err := m.src.Catalog.RepositoryNames(ctx)
	if err != nil {
		return fmt.Errorf("listing repositories: %w", err)
	}
	for _, repo := range names {
		if err := m.copyRepository(ctx, repo); err != nil {
			return fmt.Errorf("repository %s: %w", repo, err)
		}
		m.r.Repositories++
	}
	return nil
}

func (m *migration) copyRepository(ctx context.Context, repo string) error {
	src, dst := m.src.Catalog, m.dst.Catalog
	blobs, err := src.Blobs(ctx, repo)
	if err != nil {
		return err
	}
	for _, d := range blobs {
		if err := dst.LinkBlob(ctx, repo, d); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	recs, err := src.Manifests(ctx, repo)
	if err != nil {
		return err
	}
	byDigest := map[digest.Digest]catalog.ManifestRecord{}
	for _, rec := range recs {
		if err := dst.PutManifest(ctx, repo, rec); err != nil {
			return fmt.Errorf("manifest %s: %w", rec.Digest, err)
		}
		byDigest[rec.Digest] = rec
	}
	tags, err := src.Tags(ctx, repo)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	for _, tag := range tags {
		d, err := src.Tag(ctx, repo, tag)
		if err != nil {
			return fmt.Errorf("tag %s: %w", tag, err)
		}
		rec, ok := byDigest[d]
		if !ok {
			continue // deleted meanwhile
		}
		if err := dst.PutManifest(ctx, repo, rec, tag); err != nil {
			return fmt.Errorf("tag %s: %w", tag, err)
		}
	}
	m.r.Manifests += len(recs)
	m.r.Tags += len(tags)
	return nil
}

// copyCatalog copies the stacks, then the releases, with their original
// publish times, so that digests do not change.
func (m *migration) copyCatalog(ctx context.Context) error {
	snap, err := m.src.Catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, st := range snap.Stacks() {
		if err := m.dst.Catalog.PutStack(ctx, st); err != nil {
			return fmt.Errorf("copying stack %s: %w", st.Name, err)
		}
	}
	m.rels = snap.AllReleases()
	for _, r := range m.rels {
		if err := m.dst.Catalog.Publish(ctx, r, catalog.PublishOptions{}); err != nil {
			return fmt.Errorf("copying %s: %w", r.ID(), err)
		}
	}
	m.r.Stacks, m.r.Releases = len(snap.Stacks()), len(m.rels)
	return nil
}

// verify checks the copy: every release is in the target with the same
// layers, and every layer blob exists with its size; every document is
// readable (its digest is rechecked on read); every repository, manifest
// and tag is there.
func (m *migration) verify(ctx context.Context) error {
	dsnap, err := m.dst.Catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, r := range m.rels {
		m.checkRelease(ctx, dsnap, r)
	}
	err = m.src.Catalog.WalkDocuments(ctx, func(d catalog.Document) error {
		if _, err := m.dst.Catalog.Document(ctx, d.Digest); err != nil {
			m.problem("document %s: %v", d.Digest, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.compareRepositories(ctx)
	return nil
}

func (m *migration) problem(format string, a ...any) {
	m.r.Problems = append(m.r.Problems, fmt.Sprintf(format, a...))
}

// checkRelease checks that r is in the target's snapshot with its layers.
func (m *migration) checkRelease(ctx context.Context, dsnap *catalog.Snapshot, r catalog.Release) {
	var got *catalog.Release
	for _, c := range dsnap.Releases(r.Name) {
		if c.Version.Equal(r.Version) {
			got = &c
		}
	}
	if got == nil {
		m.problem("%s missing in target", r.ID())
		return
	}
	for _, l := range r.Layers {
		gl, ok := got.Layer(l.Platform)
		if !ok || !gl.Equal(l) {
			m.problem("%s %s: layer differs in target", r.ID(), l.Platform)
			continue
		}
		if n, err := m.dst.Blobs.Stat(ctx, l.Digest); err != nil || n != l.Size {
			m.problem("%s %s: blob %s: size %d, err %v", r.ID(), l.Platform, l.Digest, n, err)
		}
	}
	for _, l := range r.Superseded {
		if !slices.ContainsFunc(got.Superseded, l.Equal) {
			m.problem("%s %s: superseded layer %s missing in target", r.ID(), l.Platform, l.Digest)
		} else if n, err := m.dst.Blobs.Stat(ctx, l.Digest); err != nil || n != l.Size {
			m.problem("%s %s: superseded blob %s: size %d, err %v", r.ID(), l.Platform, l.Digest, n, err)
		}
	}
}

// compareRepositories lists what of the source's repositories the target
// lacks.
func (m *migration) compareRepositories(ctx context.Context) {
	src, dst := m.src.Catalog, m.dst.Catalog
	names, err := src.RepositoryNames(ctx)
	if err != nil {
		m.problem("listing repositories: %v", err)
		return
	}
	for _, repo := range names {
		blobs, _ := src.Blobs(ctx, repo)
		for _, d := range blobs {
			if ok, err := dst.BlobLinked(ctx, repo, d); err != nil || !ok {
				m.problem("repository %s: blob %s not linked in target (%v)", repo, d, err)
			}
		}
		recs, _ := src.Manifests(ctx, repo)
		for _, rec := range recs {
			if _, err := dst.Manifest(ctx, repo, rec.Digest); err != nil {
				m.problem("repository %s: manifest %s: %v", repo, rec.Digest, err)
			}
		}
		tags, _ := src.Tags(ctx, repo)
		for _, tag := range tags {
			want, _ := src.Tag(ctx, repo, tag)
			if got, err := dst.Tag(ctx, repo, tag); err != nil || got != want {
				m.problem("repository %s: tag %s is %s in target, want %s (%v)", repo, tag, got, want, err)
			}
		}
	}
}
