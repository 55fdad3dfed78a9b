package manifestgen_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

// recordingStore is an in-memory Documents + blob Writer that records the
// order of writes and can be made to fail: the faults a real store cannot
// produce on demand.
type recordingStore struct {
	mu     sync.Mutex
	order  []string
	docs   map[digest.Digest]catalog.Document
	blobs  map[digest.Digest][]byte
	marks  map[string]catalog.ComposedMark // stack + " " + digest
	fail   atomic.Bool
	writes atomic.Int64
	delay  time.Duration
}

func newRecordingStore() *recordingStore {
	return &recordingStore{docs: map[digest.Digest]catalog.Document{}, blobs: map[digest.Digest][]byte{},
		marks: map[string]catalog.ComposedMark{}}
}

var errInjected = errors.New("injected storage failure")

func (s *recordingStore) Put(_ context.Context, d digest.Digest, size int64, r io.Reader) error {
	time.Sleep(s.delay)
	s.writes.Add(1)
	if s.fail.Load() {
		return errInjected
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	if digest.FromBytes(b.Bytes()) != d || int64(b.Len()) != size {
		return errors.New("config blob does not match its descriptor")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[d] = b.Bytes()
	s.order = append(s.order, "blob "+d.String())
	return nil
}

func (s *recordingStore) PutDocument(_ context.Context, d catalog.Document) error {
	s.writes.Add(1)
	if s.fail.Load() {
		return errInjected
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[d.Digest] = d
	s.order = append(s.order, "doc "+d.Digest.String())
	return nil
}

func (s *recordingStore) Document(_ context.Context, d digest.Digest) (catalog.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.docs[d]
	if !ok {
		return catalog.Document{}, catalog.ErrNotFound
	}
	return doc, nil
}

// MarkComposed records one write for the batch and one "mark" entry per
// digest, with catalog.Compositions' rules (Served forward only, pins kept).
func (s *recordingStore) MarkComposed(_ context.Context, stack string, served time.Time, pinned bool, ds ...digest.Digest) error {
	s.writes.Add(1)
	if s.fail.Load() {
		return errInjected
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		m := s.marks[stack+" "+d.String()]
		m.Digest = d
		if served.After(m.Served) {
			m.Served = served
		}
		m.Pinned = m.Pinned || pinned
		s.marks[stack+" "+d.String()] = m
		s.order = append(s.order, "mark "+d.String())
	}
	return nil
}

func (s *recordingStore) Composed(_ context.Context, stack string, d digest.Digest) (catalog.ComposedMark, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.marks[stack+" "+d.String()]
	if !ok {
		return catalog.ComposedMark{}, catalog.ErrNotFound
	}
	return m, nil
}

func composerRelease(name, version string) catalog.Release {
	layer := func(arch string) catalog.Layer {
		return catalog.Layer{
			Platform:  catalog.Platform{OS: "linux", Architecture: arch},
			Digest:    digest.FromString(name + version + arch),
			DiffID:    digest.FromString("diff" + name + version + arch),
			Size:      100,
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		}
	}
	return catalog.Release{Name: name, Version: semver.MustParse(version),
		Layers:    []catalog.Layer{layer("amd64"), layer("arm64")},
		Published: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func snapshotAt(gen uint64, rels ...catalog.Release) (*catalog.Snapshot, catalog.Stack) {
	snap := catalog.NewSnapshot(gen, rels, nil)
	st, _ := snap.Stack(catalog.DefaultStackName)
	return snap, st
}

func request(t *testing.T, snap *catalog.Snapshot, st catalog.Stack, tag string) resolver.Request {
	t.Helper()
	req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestComposerStoresBeforeReturning(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	img, err := c.Compose(t.Context(), snap, st, request(t, snap, st, "php-8.2"), manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	// Every digest the index names can be fetched, and nothing was stored
	// before what it references: configs and the stack's marks on every
	// digest, then manifests, then the index. Within a step the writes run
	// concurrently, so their order is free.
	var steps [][]string
	step := func(kind string, bs ...manifestgen.Blob) {
		var names []string
		for _, b := range bs {
			names = append(names, kind+" "+b.Descriptor.Digest.String())
		}
		if kind == "blob" {
			for _, d := range img.Digests() {
				names = append(names, "mark "+d.String())
			}
		}
		slices.Sort(names)
		steps = append(steps, names)
	}
	step("blob", img.Configs...)
	step("doc", img.Manifests...)
	step("doc", img.Index)
	got := slices.Clone(store.order)
	for i, want := range steps {
		if len(got) < len(want) {
			t.Fatalf("step %d: writes %v, want %v next", i, store.order, want)
		}
		these := slices.Clone(got[:len(want)])
		slices.Sort(these)
		if !slices.Equal(these, want) {
			t.Errorf("step %d wrote %v, want %v (in any order)", i, these, want)
		}
		got = got[len(want):]
	}
	if len(got) > 0 {
		t.Errorf("extra writes %v", got)
	}
}

func TestComposerCachesPerGeneration(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	rels := []catalog.Release{composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36")}
	snap, st := snapshotAt(1, rels...)
	req := request(t, snap, st, "php-8.2")
	first, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	writes := store.writes.Load()
	again, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil || again != first || store.writes.Load() != writes {
		t.Errorf("second compose in the same generation: same image %v, writes %d -> %d", again == first, writes, store.writes.Load())
	}

	// A new generation with a newer patch recomposes.
	snap2, st2 := snapshotAt(2, append(rels, composerRelease("php", "8.2.37"))...)
	moved, err := c.Compose(t.Context(), snap2, st2, request(t, snap2, st2, "php-8.2"), manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Index.Descriptor.Digest == first.Index.Descriptor.Digest {
		t.Error("new generation with php 8.2.37 served the cached 8.2.36 index")
	}
	// An older snapshot (a slow request) still gets its own answer.
	old, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil || old.Index.Descriptor.Digest != first.Index.Descriptor.Digest {
		t.Errorf("older snapshot: %v %v", old, err)
	}
}

func TestComposerDoesNotCacheFailures(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	req := request(t, snap, st, "php")
	store.fail.Store(true)
	if _, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI); !errors.Is(err, errInjected) {
		t.Fatalf("compose with failing store: %v", err)
	}
	store.fail.Store(false)
	img, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		t.Fatalf("compose after the store recovered: %v", err)
	}
	if _, err := store.Document(t.Context(), img.Index.Descriptor.Digest); err != nil {
		t.Errorf("index not stored after recovery: %v", err)
	}
}

func TestComposerConcurrentRequestsShareOneComposition(t *testing.T) {
	store := newRecordingStore()
	store.delay = 20 * time.Millisecond // keep the first composition in flight
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	req := request(t, snap, st, "php")
	const n = 500 // no thundering herd: 500 concurrent first requests compose once
	imgs := make([]*manifestgen.Image, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			img, err := c.Compose(context.Background(), snap, st, req, manifestgen.FormatDocker)
			if err != nil {
				t.Error(err)
			}
			imgs[i] = img
		})
	}
	wg.Wait()
	for _, img := range imgs[1:] {
		if img != imgs[0] {
			t.Fatal("concurrent requests got different compositions")
		}
	}
	// One composition: 2 configs + 2 manifests + 1 index + one batch of marks.
	if got := store.writes.Load(); got != 6 {
		t.Errorf("%d writes for %d concurrent requests; want 6 (one composition)", got, n)
	}
	if st := c.Stats(); st.Composed != 1 || st.Cached != n-1 || st.Failed != 0 || st.ComposeTime < store.delay {
		t.Errorf("Stats = %+v; want 1 composed (taking at least %s), %d cached, 0 failed", st, store.delay, n-1)
	}
}

// TestComposerStats counts each request once, by how it was answered.
func TestComposerStats(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	compose := func(snap *catalog.Snapshot, tag string) error {
		_, err := c.Compose(t.Context(), snap, st, request(t, snap, st, tag), manifestgen.FormatOCI)
		return err
	}
	for range 3 {
		if err := compose(snap, "php-8.2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := compose(snap, "php-9"); err == nil {
		t.Fatal("php-9 resolved")
	}
	// A new generation composes again.
	next, _ := snapshotAt(2, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	if err := compose(next, "php-8.2"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Stats(), (manifestgen.Stats{Cached: 2, Composed: 2, Failed: 1}); got.Cached != want.Cached ||
		got.Composed != want.Composed || got.Failed != want.Failed || got.ComposeTime <= 0 {
		t.Errorf("Stats = %+v, want %+v and a positive ComposeTime", got, want)
	}
}

func TestComposerResolutionErrors(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	_, err := c.Compose(t.Context(), snap, st, request(t, snap, st, "php-9"), manifestgen.FormatOCI)
	var unsat *resolver.UnsatisfiableError
	if !errors.As(err, &unsat) || unsat.Package != "php" {
		t.Errorf("compose php-9: %v, want *resolver.UnsatisfiableError", err)
	}
	if store.writes.Load() != 0 {
		t.Errorf("a failed resolution stored %d things", store.writes.Load())
	}
}

// TestComposerServes: a stack serves the catalog's layers and what it
// composed itself, nothing else; a mark is refreshed when it is older
// than the touch interval, and not before.
func TestComposerServes(t *testing.T) {
	store := newRecordingStore()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := manifestgen.NewComposer(store, store, manifestgen.WithClock(func() time.Time { return now }))
	php := composerRelease("php", "8.2.36")
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), php)
	img, err := c.Compose(t.Context(), snap, st, request(t, snap, st, "php"), manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	// Something another repository pushed: stored, but never composed.
	foreign := catalog.Document{MediaType: "application/vnd.oci.image.manifest.v1+json", Data: []byte(`{"secret":1}`)}
	foreign.Digest = digest.FromBytes(foreign.Data)
	if err := store.PutDocument(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		stack string
		d     digest.Digest
		want  bool
	}{
		{"a layer", "env", php.Layers[0].Digest, true},
		{"the index", "env", img.Index.Descriptor.Digest, true},
		{"a manifest", "env", img.Manifests[1].Descriptor.Digest, true},
		{"a config", "env", img.Configs[0].Descriptor.Digest, true},
		{"a pushed document", "env", foreign.Digest, false},
		{"another stack's composition", "other", img.Index.Descriptor.Digest, false},
		{"a layer through another stack", "other", php.Layers[0].Digest, true},
	} {
		got, err := c.Serves(t.Context(), snap, tc.stack, tc.d)
		if err != nil || got != tc.want {
			t.Errorf("%s: Serves(%s) = %v, %v; want %v", tc.what, tc.stack, got, err, tc.want)
		}
	}

	idx := img.Index.Descriptor.Digest
	writes := store.writes.Load()
	now = now.Add(manifestgen.DefaultTouchInterval - time.Second)
	if _, err := c.Serves(t.Context(), snap, "env", idx); err != nil || store.writes.Load() != writes {
		t.Errorf("a read within the touch interval wrote %d times (err %v)", store.writes.Load()-writes, err)
	}
	now = now.Add(time.Second)
	if _, err := c.Serves(t.Context(), snap, "env", idx); err != nil {
		t.Fatal(err)
	}
	if m, _ := store.Composed(t.Context(), "env", idx); !m.Served.Equal(now) {
		t.Errorf("after the touch interval the mark says served %s, want %s", m.Served, now)
	}
}

// TestComposerTouchesServedCompositions: a warm GET writes nothing, and
// the first GET after the touch interval stores the composition again, so
// what gc collected meanwhile comes back and the marks move.
func TestComposerTouchesServedCompositions(t *testing.T) {
	store := newRecordingStore()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := manifestgen.NewComposer(store, store, manifestgen.WithClock(func() time.Time { return now }))
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	req := request(t, snap, st, "php")
	img, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cached(snap, st, req, manifestgen.FormatOCI) {
		t.Error("Cached is false right after a composition")
	}
	writes := store.writes.Load()
	now = now.Add(manifestgen.DefaultTouchInterval / 2)
	if _, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI); err != nil || store.writes.Load() != writes {
		t.Fatalf("warm GET: %d writes, err %v; want none", store.writes.Load()-writes, err)
	}

	// gc collected the index meanwhile.
	store.mu.Lock()
	delete(store.docs, img.Index.Descriptor.Digest)
	store.mu.Unlock()
	now = now.Add(manifestgen.DefaultTouchInterval)
	if c.Cached(snap, st, req, manifestgen.FormatOCI) {
		t.Error("Cached is true for an entry older than the touch interval")
	}
	if _, err := c.Compose(t.Context(), snap, st, req, manifestgen.FormatOCI); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Document(t.Context(), img.Index.Descriptor.Digest); err != nil {
		t.Errorf("the index was not stored again after the touch interval: %v", err)
	}
	if m, _ := store.Composed(t.Context(), "env", img.Index.Descriptor.Digest); !m.Served.Equal(now) {
		t.Errorf("mark served %s, want %s", m.Served, now)
	}
}

// TestComposerPin pins every digest of a composition.
func TestComposerPin(t *testing.T) {
	store := newRecordingStore()
	c := manifestgen.NewComposer(store, store)
	snap, st := snapshotAt(1, composerRelease("base", "12.0.0"), composerRelease("php", "8.2.36"))
	img, err := c.Compose(t.Context(), snap, st, request(t, snap, st, "php"), manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := store.Composed(t.Context(), "env", img.Index.Descriptor.Digest); m.Pinned {
		t.Fatal("a composition served by tag is pinned")
	}
	if err := c.Pin(t.Context(), "env", img); err != nil {
		t.Fatal(err)
	}
	for _, d := range img.Digests() {
		if m, err := store.Composed(t.Context(), "env", d); err != nil || !m.Pinned {
			t.Errorf("%s after Pin: %+v, %v; want pinned", d, m, err)
		}
	}
}
