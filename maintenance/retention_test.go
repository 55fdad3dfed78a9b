package maintenance_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
)

// retentionStore is a store with compositions of every kind gc's
// retention tells apart, stored at t0 unless said otherwise.
type retentionStore struct {
	*fixture
	t0 time.Time
	// old: composed at t0, never pinned nor pulled again.
	old *manifestgen.Image
	// pinned: composed at t0 and pinned (the provisioning API).
	pinned *manifestgen.Image
	// fresh: composed 20 days after t0.
	fresh *manifestgen.Image
	// reread: composed at t0, then only its index pulled again by digest
	// 20 days after t0 (a client that re-reads an index it pinned).
	reread *manifestgen.Image
	// legacy: stored at t0 without marks, as envreg did before marks.
	legacy *manifestgen.Image
}

func newRetentionStore(t *testing.T, f *fixture) *retentionStore {
	t.Helper()
	f.publish("php", "8.2.32")
	f.publish("php", "8.2.36")
	f.publish("nodejs", "20.1.0")
	// Ages are judged against the files' and objects' own times too: t0
	// is now, and gc runs a month later.
	s := &retentionStore{fixture: f, t0: time.Now().Truncate(time.Second)}
	at0 := f.composer(s.t0)
	s.old = f.compose(at0, "php-8.2.32")
	s.pinned = f.compose(at0, "php-8.2.36")
	if err := at0.Pin(t.Context(), "env", s.pinned); err != nil {
		t.Fatal(err)
	}
	s.reread = f.compose(at0, "node-20")
	later := s.t0.Add(20 * 24 * time.Hour)
	s.fresh = f.compose(f.composer(later), "php-8.2.32_node-20")
	served, err := f.composer(later).Serves(t.Context(), f.snapshot(), "env", s.reread.Index.Descriptor.Digest)
	if err != nil || !served {
		t.Fatalf("pulling the index of node-20 again: %v, %v", served, err)
	}
	s.legacy = f.generate("php-8.2.36_node-20", manifestgen.FormatOCI, nil)
	f.storeLegacy(s.legacy)
	return s
}

// documents returns the documents of img (its manifests and index).
func documents(img *manifestgen.Image) []digest.Digest { return img.Digests()[len(img.Configs):] }

// configs returns the config blobs of img.
func configs(img *manifestgen.Image) []digest.Digest { return img.Digests()[:len(img.Configs)] }

// TestGCRetention: a month after t0, with a retention of 15 days, gc
// collects the composition nobody pinned or pulled since t0 (its
// documents, its config, its marks), and keeps the pinned one, the fresh
// one, the one whose index alone was pulled again (whole: manifests and
// config too), and the legacy one, which it adopts first. A dry run says
// the same and changes nothing; the store verifies after.
func TestGCRetention(t *testing.T) {
	backends(t, testGCRetention)
}

func testGCRetention(t *testing.T, f *fixture) {
	s := newRetentionStore(t, f)
	now := s.t0.Add(30 * 24 * time.Hour)
	o := maintenance.GCOptions{Grace: time.Hour, Retention: 15 * 24 * time.Hour}

	dry := o
	dry.DryRun = true
	r, deleted := f.gc(dry, now)
	want := slices.Concat(documents(s.old), configs(s.old))
	if !sameDigests(deleted, want) || r.Adopted != 1 || r.MarksRemoved != 3 || r.CompositionsDeleted != 2 {
		t.Errorf("dry run: would delete %v (report %+v); want %v, 1 adopted, 3 marks removed, 2 compositions", deleted, r, want)
	}
	for _, d := range documents(s.old) {
		if _, err := f.cat.Composed(t.Context(), "env", d); err != nil || !f.hasDocument(d) {
			t.Errorf("the dry run changed %s: %v", d, err)
		}
	}
	if _, err := f.cat.Composed(t.Context(), "env", s.legacy.Index.Descriptor.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the dry run adopted: %v", err)
	}

	var lastServed []time.Time
	o.OnDelete = func(d maintenance.Deletion) {
		if d.Document {
			lastServed = append(lastServed, d.LastServed)
		}
	}
	r, deleted = f.gc(o, now)
	if !sameDigests(deleted, want) || r.Adopted != 1 || r.MarksRemoved != 3 || r.CompositionsDeleted != 2 || r.DocumentsDeleted != 0 {
		t.Errorf("gc deleted %v (report %+v); want %v", deleted, r, want)
	}
	for _, served := range lastServed {
		if !served.Equal(s.t0) {
			t.Errorf("a collected composition was last served %s, want %s", served, s.t0)
		}
	}
	s.checkCollected(t)
	if v, _ := f.verify(); len(v.Damage) != 0 {
		t.Errorf("after gc: %q", v.Damage)
	}
	if r, deleted := f.gc(o, now); len(deleted) != 0 || r.Adopted != 0 {
		t.Errorf("a second gc deleted %v, adopted %d", deleted, r.Adopted)
	}
}

// checkCollected checks that old went, marks and all, and the rest stayed
// whole.
func (s *retentionStore) checkCollected(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for _, d := range documents(s.old) {
		if s.hasDocument(d) {
			t.Errorf("gc kept document %s of the old composition", d)
		}
	}
	for _, d := range s.old.Digests() {
		if _, err := s.cat.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("gc kept the mark on %s of the old composition: %v", d, err)
		}
	}
	if s.hasBlob(configs(s.old)[0]) {
		t.Errorf("gc kept the config of the old composition")
	}
	for name, img := range map[string]*manifestgen.Image{"pinned": s.pinned, "fresh": s.fresh, "reread": s.reread, "legacy": s.legacy} {
		for _, d := range documents(img) {
			if !s.hasDocument(d) {
				t.Errorf("gc deleted document %s of the %s composition", d, name)
			}
		}
		for _, d := range configs(img) {
			if !s.hasBlob(d) {
				t.Errorf("gc deleted config %s of the %s composition", d, name)
			}
		}
		for _, d := range img.Digests() {
			if _, err := s.cat.Composed(ctx, "env", d); err != nil {
				t.Errorf("the %s composition lost its mark on %s: %v", name, d, err)
			}
		}
	}
}

// racingCatalog re-stores a composition, as a replica serving it would,
// right after gc removed its marks and before gc checks its documents
// again: the first time a repository list is read after an Unmark.
type racingCatalog struct {
	fullCatalog
	unmarked bool
	race     func()
}

// fullCatalog is every capability gc uses, on both backends.
type fullCatalog interface {
	catalog.Store
	catalog.Purger
	catalog.ComposedWalker
	catalog.LegacyAdoption
	maintenance.DocumentWalker
}

func (r *racingCatalog) Unmark(ctx context.Context, stack string, d digest.Digest, before time.Time) (bool, error) {
	r.unmarked = true
	return r.fullCatalog.Unmark(ctx, stack, d, before)
}

func (r *racingCatalog) RepositoryNames(ctx context.Context) ([]string, error) {
	if r.unmarked && r.race != nil {
		r.race()
		r.race = nil
	}
	return r.fullCatalog.RepositoryNames(ctx)
}

// TestGCKeepsWhatIsServedAgain: a composition whose marks gc removed, but
// that a replica serves (stores and marks again) before gc deletes its
// documents, stays whole.
func TestGCKeepsWhatIsServedAgain(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		s := newRetentionStore(t, f)
		now := s.t0.Add(30 * 24 * time.Hour)
		raced := false
		rc := &racingCatalog{fullCatalog: f.cat.(fullCatalog), race: func() {
			raced = true
			if err := f.composer(now).Store(t.Context(), "env", s.old, false); err != nil {
				t.Fatal(err)
			}
		}}
		f.stores.Catalog = rc
		r, deleted := f.gc(maintenance.GCOptions{Retention: 15 * 24 * time.Hour}, now)
		if !raced || len(deleted) != 0 || r.MarksRemoved != 3 || r.CompositionsKept != 2 || r.CompositionsDeleted != 0 {
			t.Fatalf("raced %v: deleted %v, report %+v; want nothing deleted, 3 marks removed, 2 compositions kept", raced, deleted, r)
		}
		for _, d := range documents(s.old) {
			if !f.hasDocument(d) {
				t.Errorf("gc deleted %s, served again meanwhile", d)
			}
		}
		if !f.hasBlob(configs(s.old)[0]) {
			t.Error("gc deleted the config of a composition served again meanwhile")
		}
		if v, _ := f.verify(); len(v.Damage) != 0 {
			t.Errorf("after gc: %q", v.Damage)
		}
	})
}

// TestGCRetentionMinimum: a retention shorter than a day is refused (a
// composition in use can look an hour old); zero collects no composition.
func TestGCRetentionMinimum(t *testing.T) {
	f := newEmbedded(t)
	f.publish("php", "8.2.36")
	old := f.compose(f.composer(time.Now().Add(-365*24*time.Hour)), "php-8.2")
	if _, err := maintenance.GC(t.Context(), f.stores, maintenance.GCOptions{Retention: 23 * time.Hour}); err == nil {
		t.Error("a retention of 23h was accepted")
	}
	if r, deleted := f.gc(maintenance.GCOptions{}, time.Now()); len(deleted) != 0 || r.MarksKept != 3 || !f.hasDocument(old.Index.Descriptor.Digest) {
		t.Errorf("no retention: deleted %v, report %+v", deleted, r)
	}
}
