package catalogtest

import (
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// testCompositions checks catalog.Compositions and, where the store has
// it, catalog.ComposedWalker: marks are per stack, Served moves forward
// only, a pin is never removed by a later unpinned mark, and Unmark keeps
// pinned and recently served marks.
func testCompositions(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	d1 := digest.FromString("index")
	d2 := digest.FromString("manifest")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	if _, err := s.Composed(ctx, "env", d1); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Composed before any mark: got %v, want ErrNotFound", err)
	}
	if err := s.MarkComposed(ctx, "env", t0, false, d1, d2); err != nil {
		t.Fatal(err)
	}
	m, err := s.Composed(ctx, "env", d1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != d1 || !m.Served.Equal(t0) || m.Pinned {
		t.Errorf("Composed = %+v, want %s served %s unpinned", m, d1, t0)
	}
	if _, err := s.Composed(ctx, "other", d1); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("a mark of env seen in stack other: %v", err)
	}

	// Served moves forward only; a pin stays.
	if err := s.MarkComposed(ctx, "env", t0.Add(time.Hour), true, d2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkComposed(ctx, "env", t0, false, d2); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Composed(ctx, "env", d2); err != nil || !m.Served.Equal(t0.Add(time.Hour)) || !m.Pinned {
		t.Errorf("after a later pinned mark and an earlier unpinned one: %+v, %v; want served %s, pinned", m, err, t0.Add(time.Hour))
	}

	for _, bad := range []struct{ stack, d string }{{"../x", string(d1)}, {"env", "sha256:../../etc"}, {"env", "md5:abc"}} {
		if err := s.MarkComposed(ctx, bad.stack, t0, false, digest.Digest(bad.d)); err == nil {
			t.Errorf("MarkComposed(%q, %q) accepted", bad.stack, bad.d)
		}
	}

	if w, ok := s.(catalog.ComposedWalker); ok {
		testWalkComposed(t, s, w, d1, d2, t0)
		testRemoveMarks(t, s, w, d1, d2, t0)
	}
}

// testWalkComposed continues testCompositions: the two marks of env are
// walked (d1 unpinned served at t0, d2 pinned), and Unmark removes d1 only
// when served before the time given.
func testWalkComposed(t *testing.T, s catalog.Store, w catalog.ComposedWalker, d1, d2 digest.Digest, t0 time.Time) {
	ctx := t.Context()
	got := map[digest.Digest]catalog.ComposedMark{}
	err := w.WalkComposed(ctx, func(stack string, m catalog.ComposedMark) error {
		if stack != "env" {
			t.Errorf("WalkComposed: mark in stack %q", stack)
		}
		got[m.Digest] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[d2].Pinned || got[d1].Pinned || !got[d1].Served.Equal(t0) {
		t.Errorf("WalkComposed = %+v, want %s unpinned at %s and %s pinned", got, d1, t0, d2)
	}
	for _, tc := range []struct {
		d      digest.Digest
		before time.Time
		want   bool
	}{
		{d1, t0, false},                    // served at before: kept
		{d2, t0.Add(2 * time.Hour), false}, // pinned: kept
		{d1, t0.Add(time.Second), true},
		{d1, t0.Add(time.Second), false}, // gone already
	} {
		removed, err := w.Unmark(ctx, "env", tc.d, tc.before)
		if err != nil || removed != tc.want {
			t.Errorf("Unmark(%s, %s) = %v, %v; want %v", tc.d, tc.before, removed, err, tc.want)
		}
	}
	if _, err := s.Composed(ctx, "env", d1); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Composed after Unmark: %v, want ErrNotFound", err)
	}
}

// testRemoveMarks continues testWalkComposed: RemoveMarks removes pinned
// and fresh marks alike, in the stack named only, and skips marks that do
// not exist.
func testRemoveMarks(t *testing.T, s catalog.Store, w catalog.ComposedWalker, d1, d2 digest.Digest, t0 time.Time) {
	ctx := t.Context()
	d3 := digest.FromString("config")
	if err := s.MarkComposed(ctx, "env", t0.Add(time.Hour), true, d3); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkComposed(ctx, "other", t0, true, d2); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveMarks(ctx, "env", d1, d2, d3); err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{d1, d2, d3} {
		if m, err := s.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Composed(env, %s) after RemoveMarks = %+v, %v; want ErrNotFound", d, m, err)
		}
	}
	if m, err := s.Composed(ctx, "other", d2); err != nil || !m.Pinned {
		t.Errorf("RemoveMarks in env removed other's mark: %+v, %v", m, err)
	}
	// A digest marked again after its removal is not pinned by a pin that
	// was removed.
	if err := s.MarkComposed(ctx, "env", t0, false, d2); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Composed(ctx, "env", d2); err != nil || m.Pinned {
		t.Errorf("marked again after RemoveMarks: %+v, %v; want unpinned", m, err)
	}
	if err := w.RemoveMarks(ctx, "env", digest.Digest("sha256:../../etc")); err == nil {
		t.Error("RemoveMarks accepted an invalid digest")
	}
}

// testSharedCompositions checks that a mark made through one handle is
// seen through the other at once (the server checks marks on every GET by
// digest, on whichever replica it lands).
func testSharedCompositions(t *testing.T, a, b catalog.Store) {
	d := digest.FromString("shared index")
	now := time.Now().Truncate(time.Second)
	if err := a.MarkComposed(t.Context(), "env", now, true, d); err != nil {
		t.Fatal(err)
	}
	m, err := b.Composed(t.Context(), "env", d)
	if err != nil || !m.Pinned || !m.Served.Equal(now) {
		t.Errorf("through the other handle: %+v, %v; want pinned, served %s", m, err, now)
	}
}
