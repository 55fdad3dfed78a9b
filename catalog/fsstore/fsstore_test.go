package fsstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/catalogtest"
	"github.com/envreg/envreg/catalog/fsstore"
)

// TestMain doubles as the publisher process of TestProcesses.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FSSTORE_TEST_PUBLISHER_DIR"); dir != "" {
		if err := publisherProcess(dir, os.Getenv("FSSTORE_TEST_PUBLISHER_ID")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func open(t *testing.T, dir string, opts ...fsstore.Option) *fsstore.Store {
	t.Helper()
	s, err := fsstore.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		return open(t, t.TempDir())
	})
}

// TestShared runs the two-handle tests on two Stores on one directory: two
// processes' views, each with its own cache and its own lock descriptor.
func TestShared(t *testing.T) {
	catalogtest.RunShared(t, func(t *testing.T) (catalog.Store, catalog.Store) {
		dir := t.TempDir()
		return open(t, dir), open(t, dir)
	})
}

var snapshot = catalogtest.Snapshot

func asJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func publish(t *testing.T, s catalog.Publisher, r catalog.Release) {
	t.Helper()
	if err := s.Publish(t.Context(), r, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLayout checks the files the package doc promises.
func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by Open
	s := open(t, dir)
	doc := catalogtest.LayoutFixture(t, s)

	if got := readFile(t, filepath.Join(dir, "catalog", "GENERATION")); got != "2\n" {
		t.Errorf("GENERATION = %q, want %q", got, "2\n")
	}
	rel := readFile(t, filepath.Join(dir, "catalog", "releases", "php", "8.2.36.json"))
	var r catalog.Release
	if err := json.Unmarshal([]byte(rel), &r); err != nil || r.Version.String() != "8.2.36+deb12u1" {
		t.Errorf("release file: version %v, %v; want 8.2.36+deb12u1", r.Version, err)
	}
	if st := readFile(t, filepath.Join(dir, "catalog", "stacks", "web.yaml")); !strings.Contains(st, "name: web") {
		t.Errorf("stack file:\n%s", st)
	}
	if got := readFile(t, filepath.Join(dir, "documents", "sha256", doc.Digest.Encoded())); got != string(doc.Data) {
		t.Errorf("document file = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "documents", "sha256", doc.Digest.Encoded()+".type")); got != doc.MediaType {
		t.Errorf("document type file = %q", got)
	}
	// A document that declares its own media type is one file.
	self := catalog.Document{MediaType: "application/vnd.oci.image.index.v1+json",
		Data: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`)}
	self.Digest = digest.FromBytes(self.Data)
	if err := s.PutDocument(t.Context(), self); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "documents", "sha256", self.Digest.Encoded())); got != string(self.Data) {
		t.Errorf("self-describing document file = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "documents", "sha256", self.Digest.Encoded()+".type")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("self-describing document has a .type file: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "catalog", "LOCK")); got != "" {
		t.Errorf("LOCK holds %q after completed changes", got)
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp holds %q after completed writes", names)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := fsstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := catalogtest.Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	r.Labels = map[string]string{"a": "b"}
	publish(t, s, r)
	publish(t, s, catalogtest.Release("nodejs", "20.11.1", "linux/amd64"))
	if err := s.PutStack(t.Context(), catalog.Stack{Name: "web", Aliases: map[string]string{"node": "nodejs"}}); err != nil {
		t.Fatal(err)
	}
	doc := catalog.Document{MediaType: "application/vnd.oci.image.manifest.v1+json", Data: []byte(`{"m":1}`)}
	doc.Digest = digest.FromBytes(doc.Data)
	if err := s.PutDocument(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(t.Context()); err == nil {
		t.Error("Snapshot after Close succeeded")
	}

	s2 := open(t, dir)
	after := snapshot(t, s2)
	if after.Generation != before.Generation {
		t.Errorf("generation after restart = %d, want %d", after.Generation, before.Generation)
	}
	if g, w := asJSON(t, after.AllReleases()), asJSON(t, before.AllReleases()); g != w {
		t.Errorf("releases after restart:\n got %s\nwant %s", g, w)
	}
	if g, w := asJSON(t, after.Stacks()), asJSON(t, before.Stacks()); g != w {
		t.Errorf("stacks after restart:\n got %s\nwant %s", g, w)
	}
	got, err := s2.Document(t.Context(), doc.Digest)
	if err != nil || !bytes.Equal(got.Data, doc.Data) || got.MediaType != doc.MediaType {
		t.Errorf("document after restart = %+v, %v", got, err)
	}
}

func TestSnapshotCached(t *testing.T) {
	s := open(t, t.TempDir(), fsstore.WithPollInterval(0))
	a, b := snapshot(t, s), snapshot(t, s)
	if a != b {
		t.Error("Snapshot built a new snapshot although the generation did not change")
	}
	publish(t, s, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	if c := snapshot(t, s); c == a || c.Generation != a.Generation+1 {
		t.Errorf("after a publish: same snapshot %v, generation %d (was %d)", c == a, c.Generation, a.Generation)
	}
}

// TestPollInterval shows that another handle's change waits for the poll
// interval, and is then seen.
func TestPollInterval(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	b := open(t, dir, fsstore.WithPollInterval(time.Hour))
	g := snapshot(t, b).Generation
	publish(t, a, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	if got := snapshot(t, b).Generation; got != g {
		t.Errorf("generation through a handle polling hourly = %d, want the cached %d", got, g)
	}
	c := open(t, dir, fsstore.WithPollInterval(0))
	if got := snapshot(t, c).Generation; got != g+1 {
		t.Errorf("generation through a handle polling always = %d, want %d", got, g+1)
	}
}

var errCrash = errors.New("simulated crash")

// TestCrashAfterReleaseFile simulates a crash after the release file is in
// place and before GENERATION is bumped. Every process must end up with the
// release at a generation newer than the one it had cached.
func TestCrashAfterReleaseFile(t *testing.T) {
	dir := t.TempDir()
	other := open(t, dir) // another process, running through the crash
	g := snapshot(t, other).Generation

	crashing := open(t, dir)
	fsstore.SetHook(crashing, func(point, _ string) error {
		if point == "file-written" {
			return errCrash
		}
		return nil
	})
	r := catalogtest.Release("php", "8.2.36", "linux/amd64")
	if err := crashing.Publish(t.Context(), r, catalog.PublishOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("Publish error = %v, want the simulated crash", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "catalog", "GENERATION")); len(got) != 0 && string(got) != fmt.Sprintf("%d\n", g) {
		t.Fatalf("GENERATION = %q after the crash; the hook fired too late", got)
	}

	// Restart: Open completes the interrupted change.
	restarted := open(t, dir)
	snap := snapshot(t, restarted)
	if snap.Generation <= g {
		t.Errorf("generation after restart = %d, want > %d", snap.Generation, g)
	}
	checkHas(t, snap, r)
	if got := readFile(t, filepath.Join(dir, "catalog", "LOCK")); got != "" {
		t.Errorf("LOCK still marked (%q) after recovery", got)
	}

	// The process that ran through the crash sees it too.
	deadline := time.Now().Add(catalogtest.Visibility)
	for snapshot(t, other).Generation != snap.Generation {
		if time.Now().After(deadline) {
			t.Fatalf("other process still at generation %d, want %d", snapshot(t, other).Generation, snap.Generation)
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkHas(t, snapshot(t, other), r)
}

// TestCrashRecoveredByNextChange: without a restart, the next change of any
// process completes the interrupted one.
func TestCrashRecoveredByNextChange(t *testing.T) {
	dir := t.TempDir()
	other := open(t, dir, fsstore.WithPollInterval(0))
	g := snapshot(t, other).Generation
	crashing := open(t, dir)
	fsstore.SetHook(crashing, func(point, _ string) error {
		if point == "file-written" {
			return errCrash
		}
		return nil
	})
	r := catalogtest.Release("php", "8.2.36", "linux/amd64")
	if err := crashing.Publish(t.Context(), r, catalog.PublishOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("Publish error = %v, want the simulated crash", err)
	}
	// A no-op publish is still a change here: it bumps past the crash.
	publish(t, other, r)
	snap := snapshot(t, other)
	if snap.Generation <= g {
		t.Errorf("generation = %d, want > %d", snap.Generation, g)
	}
	checkHas(t, snap, r)
}

func checkHas(t *testing.T, snap *catalog.Snapshot, r catalog.Release) {
	t.Helper()
	for _, got := range snap.Releases(r.Name) {
		if got.Version.Equal(r.Version) {
			if len(got.Layers) != len(r.Layers) {
				t.Errorf("%s has %d layers, want %d", r.ID(), len(got.Layers), len(r.Layers))
			}
			return
		}
	}
	t.Errorf("snapshot %d lacks %s", snap.Generation, r.ID())
}

// TestCrashBeforeRename simulates a crash with a complete temp file that was
// never renamed: the release is absent, the temp file is never read, and
// Open removes it once it is stale.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	crashing := open(t, dir)
	g := snapshot(t, crashing).Generation
	leftover := filepath.Join(dir, "tmp", "crash-leftover")
	fsstore.SetHook(crashing, func(point, path string) error {
		if point != "temp-written" || !strings.HasPrefix(filepath.Base(path), "8.2.36.json") {
			return nil
		}
		// Keep what the crash would have left: the complete temp file.
		if err := os.Link(path, leftover); err != nil {
			t.Error(err)
		}
		return errCrash
	})
	r := catalogtest.Release("php", "8.2.36", "linux/amd64")
	if err := crashing.Publish(t.Context(), r, catalog.PublishOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("Publish error = %v, want the simulated crash", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "catalog", "releases", "php", "8.2.36.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("release file exists after a crash before rename: %v", err)
	}
	// Also a torn temp file, as a crash mid-write leaves.
	torn := filepath.Join(dir, "tmp", "8.2.36.json.123456")
	writeFile(t, torn, `{"name":"php","vers`)
	fresh := filepath.Join(dir, "tmp", "GENERATION.999")
	writeFile(t, fresh, "12")
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{leftover, torn} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	restarted := open(t, dir)
	snap := snapshot(t, restarted)
	if names := snap.Names(); len(names) != 0 {
		t.Errorf("packages after a crash before rename: %q, want none", names)
	}
	if snap.Generation < g || snap.Generation > g+1 {
		t.Errorf("generation = %d, want %d (or %d after completing the interrupted change)", snap.Generation, g, g+1)
	}
	// Stale temp files are gone; a young one may belong to a live process.
	if got, want := dirNames(t, filepath.Join(dir, "tmp")), []string{"GENERATION.999"}; !slices.Equal(got, want) {
		t.Errorf("tmp after Open = %q, want %q", got, want)
	}

	// The store works on.
	publish(t, restarted, r)
	checkHas(t, snapshot(t, restarted), r)
}

// TestFailedWriteLeavesNothing: a write that fails before the rename (here:
// injected) removes its temp file and changes nothing.
func TestFailedWriteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	g := snapshot(t, s).Generation
	fsstore.SetHook(s, func(point, _ string) error {
		if point == "temp-written" {
			return errCrash
		}
		return nil
	})
	if err := s.Publish(t.Context(), catalogtest.Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("Publish error = %v", err)
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp holds %q after a failed write", names)
	}
	if snap := snapshot(t, s); snap.Generation != g || len(snap.Names()) != 0 {
		t.Errorf("after a failed publish: generation %d (want %d), packages %q", snap.Generation, g, snap.Names())
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	valid, err := json.Marshal(catalogtest.Release("php", "8.2.36", "linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, data string
	}{
		{"torn release", "catalog/releases/php/8.2.36.json", `{"name":"php","vers`},
		{"invalid release", "catalog/releases/php/8.2.36.json", `{"name":"php","version":"8.2.36","layers":[]}`},
		{"misplaced release", "catalog/releases/nodejs/8.2.36.json", string(valid)},
		{"misnamed version", "catalog/releases/php/8.2.35.json", string(valid)},
		{"bad stack", "catalog/stacks/web.yaml", "name: web\nunknown: 1\n"},
		{"misplaced stack", "catalog/stacks/web.yaml", "name: api\n"},
		{"bad generation", "catalog/GENERATION", "seven\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, tc.file), tc.data)
			_, err := fsstore.Open(dir)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Errorf("error %q does not name %s", err, tc.file)
			}
		})
	}
}

// TestReloadError: a bad file that appears while running makes Snapshot
// fail (naming the file) until it is fixed.
func TestReloadError(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, fsstore.WithPollInterval(0))
	publish(t, s, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	good := snapshot(t, s)

	bad := filepath.Join(dir, "catalog", "releases", "php", "8.3.0.json")
	writeFile(t, bad, "{")
	writeFile(t, filepath.Join(dir, "catalog", "GENERATION"), fmt.Sprintf("%d\n", good.Generation+1))
	for range 2 {
		if _, err := s.Snapshot(t.Context()); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Snapshot error = %v, want one naming %s", err, bad)
		}
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, s)
	if snap.Generation != good.Generation+1 || len(snap.Releases("php")) != 1 {
		t.Errorf("after the fix: generation %d, %d php releases", snap.Generation, len(snap.Releases("php")))
	}
}

func TestClosed(t *testing.T) {
	s, err := fsstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(t.Context(), catalogtest.Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{}); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if err := s.PutStack(t.Context(), catalog.Stack{Name: "web"}); err == nil {
		t.Error("PutStack after Close succeeded")
	}
}

func TestDocumentMediaTypeConflict(t *testing.T) {
	s := open(t, t.TempDir())
	data := []byte(`{"schemaVersion":2}`)
	d := catalog.Document{MediaType: "application/vnd.oci.image.index.v1+json", Digest: digest.FromBytes(data), Data: data}
	if err := s.PutDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d.MediaType = "application/vnd.docker.distribution.manifest.list.v2+json"
	if err := s.PutDocument(t.Context(), d); !errors.Is(err, catalog.ErrExists) {
		t.Errorf("PutDocument with another media type: error = %v, want ErrExists", err)
	}
}

// Cross-process publishing: publisher processes and this one publish
// platforms of the same versions at once; flock must serialise them.
const (
	processes = 3
	versions  = 8
)

func publisherProcess(dir, id string) error {
	s, err := fsstore.Open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	return publishAll(s, id)
}

func publishAll(s *fsstore.Store, id string) error {
	for v := range versions {
		r := catalogtest.Release("php", fmt.Sprintf("1.%d.0", v), "linux/proc"+id)
		if err := s.Publish(context.Background(), r, catalog.PublishOptions{}); err != nil {
			return fmt.Errorf("process %s: %w", id, err)
		}
	}
	return nil
}

func TestProcesses(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	g := snapshot(t, s).Generation

	var wg sync.WaitGroup
	errs := make([]error, processes+1)
	for i := range processes {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0])
			cmd.Env = append(os.Environ(), "FSSTORE_TEST_PUBLISHER_DIR="+dir, fmt.Sprintf("FSSTORE_TEST_PUBLISHER_ID=%d", i+1))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("publisher process %d: %v\n%s", i+1, err, out)
			}
		})
	}
	wg.Go(func() { errs[processes] = publishAll(s, "0") })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	want := g + uint64((processes+1)*versions)
	deadline := time.Now().Add(catalogtest.Visibility)
	snap := snapshot(t, s)
	for snap.Generation != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		snap = snapshot(t, s)
	}
	if snap.Generation != want {
		t.Errorf("generation = %d, want %d", snap.Generation, want)
	}
	rs := snap.Releases("php")
	if len(rs) != versions {
		t.Fatalf("%d php releases, want %d", len(rs), versions)
	}
	for _, r := range rs {
		if len(r.Layers) != processes+1 {
			t.Errorf("%s has %d layers, want one per process (%d)", r.ID(), len(r.Layers), processes+1)
		}
	}
}

// TestDocumentMediaTypes covers the two ways a document's media type is kept:
// a .type file, or the document's own top-level mediaType; a .type file
// wins when both exist (stores written before the rule), and one left
// behind by an interrupted delete does not outlive a re-put.
func TestDocumentMediaTypes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	const index = "application/vnd.oci.image.index.v1+json"
	const manifest = "application/vnd.oci.image.manifest.v1+json"
	doc := func(mt, data string) catalog.Document {
		return catalog.Document{MediaType: mt, Digest: digest.FromString(data), Data: []byte(data)}
	}
	typeFile := func(d catalog.Document) string {
		return filepath.Join(dir, "documents", "sha256", d.Digest.Encoded()+".type")
	}
	for _, tc := range []struct {
		name     string
		doc      catalog.Document
		typeFile bool
	}{
		{"declared", doc(index, `{"mediaType":"`+index+`","manifests":[]}`), false},
		{"undeclared JSON", doc(manifest, `{"schemaVersion":2,"config":{}}`), true},
		{"declared otherwise", doc(manifest, `{"mediaType":"`+index+`"}`), true},
		{"not JSON", doc("text/plain", "hello"), true},
		{"JSON array", doc(index, `[{"mediaType":"`+index+`"}]`), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutDocument(t.Context(), tc.doc); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(typeFile(tc.doc))
			if has := err == nil; has != tc.typeFile {
				t.Errorf(".type file exists = %v, want %v (%v)", has, tc.typeFile, err)
			}
			for _, st := range []*fsstore.Store{s, open(t, dir)} {
				got, err := st.Document(t.Context(), tc.doc.Digest)
				if err != nil || got.MediaType != tc.doc.MediaType || string(got.Data) != string(tc.doc.Data) {
					t.Errorf("Document = %q %q, %v; want %q", got.MediaType, got.Data, err, tc.doc.MediaType)
				}
			}
		})
	}

	// A store written before the rule has a .type file for every document.
	legacy := doc(index, `{"mediaType":"`+index+`","legacy":true}`)
	path := filepath.Join(dir, "documents", "sha256", legacy.Digest.Encoded())
	if err := os.WriteFile(path+".type", []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, legacy.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Document(t.Context(), legacy.Digest); err != nil || got.MediaType != index {
		t.Errorf("legacy Document = %q, %v", got.MediaType, err)
	}
	if err := s.PutDocument(t.Context(), legacy); err != nil {
		t.Errorf("re-putting a legacy document: %v", err)
	}

	// A delete that stopped after removing the data file leaves a .type file
	// behind; putting the document again must not read it back.
	stale := doc(index, `{"mediaType":"`+index+`","stale":true}`)
	if err := os.WriteFile(typeFile(stale), []byte("application/x-stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDocument(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Document(t.Context(), stale.Digest); err != nil || got.MediaType != index {
		t.Errorf("Document after a stale .type = %q, %v; want %q", got.MediaType, err, index)
	}

	// A data file whose media type is nowhere is an error, not a guess.
	lost := doc(manifest, `{"schemaVersion":2,"lost":true}`)
	if err := s.PutDocument(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(typeFile(lost)); err != nil {
		t.Fatal(err)
	}
	// (A fresh Store: s caches the document against its data file, which
	// this did not touch.)
	if _, err := open(t, dir).Document(t.Context(), lost.Digest); err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Document without any media type: error = %v, want a corruption error", err)
	}
}

// TestDocumentCacheSeesOtherProcesses: documents are cached per Store, and
// every read checks the cached copy against the file, so what another
// process (another Store on the directory, or a hand) does to the file is
// seen at once: a delete, a delete and re-put with another media type, a
// file replaced with other bytes.
func TestDocumentCacheSeesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	serving, other := open(t, dir), open(t, dir)
	const manifest = "application/vnd.oci.image.manifest.v1+json"
	data := `{"schemaVersion":2,"config":{}}`
	d := catalog.Document{MediaType: manifest, Digest: digest.FromString(data), Data: []byte(data)}
	if err := other.PutDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a miss, then a hit
		if got, err := serving.Document(t.Context(), d.Digest); err != nil || got.MediaType != manifest || string(got.Data) != data {
			t.Fatalf("Document = %q %q, %v", got.MediaType, got.Data, err)
		}
	}

	if err := other.DeleteDocument(t.Context(), d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Document(t.Context(), d.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Document after another process deleted it: error = %v, want ErrNotFound", err)
	}

	// Stored again by the other process with another media type (the data
	// does not declare one, so it goes into the .type file).
	const artifact = "application/vnd.example.artifact.v1+json"
	again := catalog.Document{MediaType: artifact, Digest: d.Digest, Data: d.Data}
	if err := other.PutDocument(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if got, err := serving.Document(t.Context(), d.Digest); err != nil || got.MediaType != artifact {
		t.Fatalf("Document after a re-put = %q, %v; want %q", got.MediaType, err, artifact)
	}

	// A hit must not hide a file that now holds other bytes.
	path := filepath.Join(dir, "documents", "sha256", d.Digest.Encoded())
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(`{"schemaVersion":2,"config":{"x":1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Document(t.Context(), d.Digest); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Document of a replaced file: error = %v, want a corruption error", err)
	}
}

// TestDocumentCacheBounded: the cache holds at most its byte budget.
func TestDocumentCacheBounded(t *testing.T) {
	s := open(t, t.TempDir())
	fsstore.SetDocCacheBytes(s, 16384)
	for i := range 100 {
		data := fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.index.v1+json","n":%d,"pad":"%0200d"}`, i, 0)
		d := catalog.Document{MediaType: "application/vnd.oci.image.index.v1+json", Digest: digest.FromString(data), Data: []byte(data)}
		if err := s.PutDocument(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Document(t.Context(), d.Digest); err != nil {
			t.Fatal(err)
		}
		if n := fsstore.DocCacheBytes(s); n > 16384 {
			t.Fatalf("after %d documents the cache holds %d bytes, more than its 16384", i+1, n)
		}
	}
	if fsstore.DocCacheBytes(s) == 0 {
		t.Error("the cache holds nothing")
	}
}
