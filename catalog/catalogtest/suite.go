// Package catalogtest is the contract suite every catalog.Store backend runs
// (fsstore and redisstore), in the spirit of distribution's driver suites
// and containerd's content testsuite.
//
//	func TestContract(t *testing.T) {
//		catalogtest.Run(t, func(t *testing.T) catalog.Store { ... empty store, closed by t.Cleanup ... })
//		catalogtest.RunShared(t, func(t *testing.T) (a, b catalog.Store) { ... two handles on one storage ... })
//	}
//
// The contract, beyond the interface docs in package catalog:
//   - a snapshot holds what was published, canonicalised (layers sorted by
//     platform, publish time UTC seconds) and as it reads back from JSON;
//     releases newest first; the default stack "env" always present;
//   - every change increments the generation by exactly one; a publish or
//     stack put that changes nothing does not;
//   - a release is identified by name and version without build metadata:
//     publishing 1.2.3+b when 1.2.3+a exists is a metadata conflict;
//   - a merge keeps the first publish time; force replaces conflicting
//     layers and metadata and keeps the other platforms;
//   - refused publishes (invalid, conflicting, cancelled) change nothing;
//   - Publish does not modify its argument, and a snapshot never changes
//     after it was returned;
//   - through another handle on the same storage (another process), a
//     change is visible within a second, and conflicts are detected
//     against the storage, not a cache.
//
// The subtests "Repositories/..." check catalog.Repositories (see
// RunRepositories and the contract in repos.go): a repository change is
// visible through the other handle as soon as the call returns, and never
// moves the generation.
//
// The subtests use only the catalog.Store interface, and no fixed sleeps:
// waiting for another handle polls with a deadline.
package catalogtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
)

// Visibility is how long a change made through one handle may take to be
// visible through another.
const Visibility = time.Second

// Run runs the contract suite on fresh, empty stores from newStore, which
// registers their cleanup (Close) with t.
func Run(t *testing.T, newStore func(t *testing.T) catalog.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"Empty", testEmpty},
		{"PublishRoundTrip", testPublishRoundTrip},
		{"NewestFirst", testNewestFirst},
		{"Generation", testGeneration},
		{"MergePlatforms", testMergePlatforms},
		{"ConflictingLayer", testConflictingLayer},
		{"ConflictingMetadata", testConflictingMetadata},
		{"BuildMetadata", testBuildMetadata},
		{"Force", testForce},
		{"Yank", testYank},
		{"Purge", testPurge},
		{"InvalidRelease", testInvalidRelease},
		{"CancelledContext", testCancelledContext},
		{"ArgumentNotModified", testArgumentNotModified},
		{"Stacks", testStacks},
		{"Documents", testDocuments},
		{"ConcurrentPublishes", testConcurrentPublishes},
		{"SnapshotImmutable", testSnapshotImmutable},
		{"Compositions", testCompositions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
	t.Run("Repositories", func(t *testing.T) { RunRepositories(t, newStore) })
}

// RunShared runs the tests of two handles on the same storage, as two
// processes would have. newPair returns two handles on fresh, empty storage
// and registers their cleanup with t.
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b catalog.Store)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b catalog.Store)
	}{
		{"PublishVisible", testSharedPublishVisible},
		{"StackVisible", testSharedStackVisible},
		{"MergeAcrossHandles", testSharedMerge},
		{"ConflictAcrossHandles", testSharedConflict},
		{"NoOpAcrossHandles", testSharedNoOp},
		{"ConcurrentPublishes", testSharedConcurrent},
		{"ExclusiveRace", testSharedExclusiveRace},
		{"Documents", testSharedDocuments},
		{"RemoveVisible", testSharedRemove},
		{"Compositions", testSharedCompositions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			tc.fn(t, a, b)
		})
	}
	t.Run("Repositories", func(t *testing.T) { RunSharedRepositories(t, newPair) })
}

// LayoutFixture stores what the backends' layout tests look for: php
// 8.2.36+deb12u1 for linux/amd64 (generation 1), the stack "web" based on
// base (generation 2), and the returned document.
func LayoutFixture(t *testing.T, s catalog.Store) catalog.Document {
	t.Helper()
	publish(t, s, Release("php", "8.2.36+deb12u1", "linux/amd64"), catalog.PublishOptions{})
	if err := s.PutStack(t.Context(), catalog.Stack{Name: "web", Base: []catalog.Constraint{{Name: "base", Range: "*"}}}); err != nil {
		t.Fatal(err)
	}
	doc := catalog.Document{MediaType: ocispec.MediaTypeImageIndex, Data: []byte(`{"schemaVersion":2}`)}
	doc.Digest = digest.FromBytes(doc.Data)
	if err := s.PutDocument(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Published is the publish time of the releases Release returns.
var Published = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Release returns a valid release of name at version (strict semver) with
// one layer per platform ("linux/amd64"); layer digests derive from name,
// version and platform.
func Release(name, version string, platforms ...string) catalog.Release {
	r := catalog.Release{
		Name:      name,
		Version:   semver.MustParse(version),
		Env:       catalog.Env{Path: []string{"/opt/" + name + "/bin"}},
		Published: Published,
	}
	for _, p := range platforms {
		r.Layers = append(r.Layers, NewLayer(p, name+" "+version+" "+p))
	}
	return r
}

// NewLayer returns a layer for platform p whose digests derive from seed.
func NewLayer(p, seed string) catalog.Layer {
	plat, err := catalog.ParsePlatform(p)
	if err != nil {
		panic(err)
	}
	return catalog.Layer{
		Platform:  plat,
		Digest:    digest.FromString("blob " + seed),
		DiffID:    digest.FromString("diff " + seed),
		Size:      int64(1000 + len(seed)),
		MediaType: ocispec.MediaTypeImageLayerGzip,
	}
}

// canonical returns r as a store returns it: canonicalised, JSON round trip.
func canonical(t *testing.T, r catalog.Release) catalog.Release {
	t.Helper()
	r.Layers = slices.Clone(r.Layers)
	r.Canonicalize()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out catalog.Release
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Snapshot returns s's snapshot or fails t.
func Snapshot(t *testing.T, s catalog.Reader) *catalog.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if snap == nil {
		t.Fatal("Snapshot returned nil without an error")
	}
	return snap
}

func publish(t *testing.T, s catalog.Publisher, r catalog.Release, opts catalog.PublishOptions) {
	t.Helper()
	if err := s.Publish(t.Context(), r, opts); err != nil {
		t.Fatalf("Publish(%s): %v", r.ID(), err)
	}
}

// find returns the release of name at version in snap.
func find(snap *catalog.Snapshot, name, version string) (catalog.Release, bool) {
	v := semver.MustParse(version)
	for _, r := range snap.Releases(name) {
		if r.Version.Equal(v) {
			return r, true
		}
	}
	return catalog.Release{}, false
}

// checkRelease asserts that snap holds exactly want (as canonical JSON).
func checkRelease(t *testing.T, snap *catalog.Snapshot, want catalog.Release) {
	t.Helper()
	got, ok := find(snap, want.Name, want.Version.String())
	if !ok {
		t.Fatalf("snapshot %d has no %s", snap.Generation, want.ID())
	}
	if g, w := asJSON(t, got), asJSON(t, canonical(t, want)); g != w {
		t.Errorf("release %s in snapshot %d:\n got %s\nwant %s", want.ID(), snap.Generation, g, w)
	}
}

func checkGeneration(t *testing.T, s catalog.Reader, want uint64) {
	t.Helper()
	if got := Snapshot(t, s).Generation; got != want {
		t.Errorf("generation = %d, want %d", got, want)
	}
}

func testEmpty(t *testing.T, s catalog.Store) {
	snap := Snapshot(t, s)
	if names := snap.Names(); len(names) != 0 {
		t.Errorf("empty store has packages %q", names)
	}
	st, ok := snap.Stack(catalog.DefaultStackName)
	if !ok {
		t.Fatal("default stack env missing")
	}
	if g, w := asJSON(t, st), asJSON(t, catalog.DefaultStack()); g != w {
		t.Errorf("default stack:\n got %s\nwant %s", g, w)
	}
	if again := Snapshot(t, s); again.Generation != snap.Generation {
		t.Errorf("generation moved from %d to %d without a change", snap.Generation, again.Generation)
	}
}

func testPublishRoundTrip(t *testing.T, s catalog.Store) {
	r := Release("php", "8.2.36", "linux/arm64", "linux/amd64", "linux/arm/v7") // unsorted on purpose
	r.Env = catalog.Env{Path: []string{"/opt/php/bin", "/opt/php/sbin"}, Vars: map[string]string{"PHP_INI_DIR": "/opt/php/etc"}}
	r.Requires = []catalog.Constraint{{Name: "base", Range: "^12"}, {Name: "libxml2", Range: ">=2.9 <3"}}
	r.Conflicts = []catalog.Constraint{{Name: "php5", Range: "*"}}
	r.Labels = map[string]string{"org.opencontainers.image.source": "https://www.php.net"}
	r.Published = time.Date(2024, 5, 1, 14, 30, 15, 999_999_999, time.FixedZone("CEST", 2*3600))
	publish(t, s, r, catalog.PublishOptions{})

	snap := Snapshot(t, s)
	checkRelease(t, snap, r)
	got, _ := find(snap, "php", "8.2.36")
	if want := time.Date(2024, 5, 1, 12, 30, 15, 0, time.UTC); !got.Published.Equal(want) || got.Published.Location() != time.UTC {
		t.Errorf("Published = %v, want %v (UTC, whole seconds)", got.Published, want)
	}
	if plats := got.Platforms(); !slices.IsSortedFunc(plats, func(a, b catalog.Platform) int { return strings.Compare(a.String(), b.String()) }) {
		t.Errorf("layers not sorted by platform: %v", plats)
	}
	if names := snap.Names(); !slices.Equal(names, []string{"php"}) {
		t.Errorf("Names() = %q, want [php]", names)
	}
}

func testNewestFirst(t *testing.T, s catalog.Store) {
	for _, v := range []string{"8.1.0", "8.2.36", "8.2.4", "8.3.0-rc.1", "7.4.33"} {
		publish(t, s, Release("php", v, "linux/amd64"), catalog.PublishOptions{})
	}
	publish(t, s, Release("nodejs", "20.11.1", "linux/amd64"), catalog.PublishOptions{})
	snap := Snapshot(t, s)
	var got []string
	for _, r := range snap.Releases("php") {
		got = append(got, r.Version.String())
	}
	if want := []string{"8.3.0-rc.1", "8.2.36", "8.2.4", "8.1.0", "7.4.33"}; !slices.Equal(got, want) {
		t.Errorf("php releases = %q, want %q", got, want)
	}
	if names := snap.Names(); !slices.Equal(names, []string{"nodejs", "php"}) {
		t.Errorf("Names() = %q, want [nodejs php]", names)
	}
}

func testGeneration(t *testing.T, s catalog.Store) {
	g0 := Snapshot(t, s).Generation
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, s, r, catalog.PublishOptions{})
	checkGeneration(t, s, g0+1)

	publish(t, s, r, catalog.PublishOptions{}) // identical: no change
	checkGeneration(t, s, g0+1)
	publish(t, s, r, catalog.PublishOptions{Force: true}) // forced but identical: no change
	checkGeneration(t, s, g0+1)
	later := r
	later.Published = r.Published.Add(time.Hour) // only the time differs: the first publish time stays
	publish(t, s, later, catalog.PublishOptions{})
	checkGeneration(t, s, g0+1)

	publish(t, s, Release("php", "8.2.36", "linux/arm64"), catalog.PublishOptions{})
	checkGeneration(t, s, g0+2)
	publish(t, s, Release("php", "8.2.36", "linux/arm64", "linux/amd64"), catalog.PublishOptions{}) // subset of what exists
	checkGeneration(t, s, g0+2)

	st := catalog.Stack{Name: "web", Base: []catalog.Constraint{{Name: "base", Range: "*"}}}
	if err := s.PutStack(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	checkGeneration(t, s, g0+3)
	if err := s.PutStack(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	checkGeneration(t, s, g0+3)

	d := document(`{"n":1}`)
	if err := s.PutDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	checkGeneration(t, s, g0+3) // documents are not catalog changes
}

func testMergePlatforms(t *testing.T, s catalog.Store) {
	first := Release("php", "8.2.36", "linux/amd64")
	publish(t, s, first, catalog.PublishOptions{})
	second := Release("php", "8.2.36", "linux/arm64")
	second.Published = first.Published.Add(24 * time.Hour)
	publish(t, s, second, catalog.PublishOptions{})

	want := Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	want.Published = first.Published // the first publish
	checkRelease(t, Snapshot(t, s), want)
}

func testConflictingLayer(t *testing.T, s catalog.Store) {
	r := Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	publish(t, s, r, catalog.PublishOptions{})
	before := Snapshot(t, s)

	other := Release("php", "8.2.36", "linux/amd64", "linux/riscv64")
	other.Layers[0] = NewLayer("linux/amd64", "rebuilt")
	err := s.Publish(t.Context(), other, catalog.PublishOptions{})
	if !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("Publish of another layer for linux/amd64: error = %v, want ErrExists", err)
	}
	for _, want := range []string{"php", "8.2.36", "linux/amd64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Refused whole: the new platform riscv64 is not added either.
	after := Snapshot(t, s)
	if after.Generation != before.Generation {
		t.Errorf("generation moved from %d to %d on a refused publish", before.Generation, after.Generation)
	}
	checkRelease(t, after, r)
}

func testConflictingMetadata(t *testing.T, s catalog.Store) {
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, s, r, catalog.PublishOptions{})
	g := Snapshot(t, s).Generation

	for _, tc := range []struct {
		field  string
		modify func(r *catalog.Release)
	}{
		{"env", func(r *catalog.Release) { r.Env.Path = []string{"/usr/local/bin"} }},
		{"env vars", func(r *catalog.Release) { r.Env.Vars = map[string]string{"X": "1"} }},
		{"requires", func(r *catalog.Release) { r.Requires = []catalog.Constraint{{Name: "base", Range: "*"}} }},
		{"conflicts", func(r *catalog.Release) { r.Conflicts = []catalog.Constraint{{Name: "hhvm", Range: "*"}} }},
		{"labels", func(r *catalog.Release) { r.Labels = map[string]string{"a": "b"} }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			other := Release("php", "8.2.36", "linux/arm64") // a new platform would otherwise merge
			tc.modify(&other)
			err := s.Publish(t.Context(), other, catalog.PublishOptions{})
			if !errors.Is(err, catalog.ErrExists) {
				t.Fatalf("Publish with other %s: error = %v, want ErrExists", tc.field, err)
			}
			if !strings.Contains(err.Error(), "php 8.2.36") {
				t.Errorf("error %q does not name php 8.2.36", err)
			}
			checkGeneration(t, s, g)
			checkRelease(t, Snapshot(t, s), r)
		})
	}
}

func testBuildMetadata(t *testing.T, s catalog.Store) {
	a := Release("php", "8.2.36+deb12u1", "linux/amd64")
	publish(t, s, a, catalog.PublishOptions{})
	g := Snapshot(t, s).Generation

	b := Release("php", "8.2.36+deb12u2", "linux/arm64")
	err := s.Publish(t.Context(), b, catalog.PublishOptions{})
	if !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("Publish of 8.2.36+deb12u2 over 8.2.36+deb12u1: error = %v, want ErrExists", err)
	}
	checkGeneration(t, s, g)

	publish(t, s, b, catalog.PublishOptions{Force: true})
	snap := Snapshot(t, s)
	if rs := snap.Releases("php"); len(rs) != 1 {
		t.Fatalf("php has %d releases after a forced rebuild, want 1", len(rs))
	}
	want := b
	want.Layers = append(slices.Clone(a.Layers), b.Layers...)
	checkRelease(t, snap, want)
	if got := snap.Releases("php")[0].Version.String(); got != "8.2.36+deb12u2" {
		t.Errorf("version = %s, want 8.2.36+deb12u2", got)
	}
}

func testForce(t *testing.T, s catalog.Store) {
	r := Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	publish(t, s, r, catalog.PublishOptions{})
	g := Snapshot(t, s).Generation

	other := Release("php", "8.2.36", "linux/amd64")
	other.Layers[0] = NewLayer("linux/amd64", "rebuilt")
	other.Labels = map[string]string{"rebuilt": "yes"}
	other.Published = r.Published.Add(time.Hour)
	publish(t, s, other, catalog.PublishOptions{Force: true})

	want := other
	want.Layers = []catalog.Layer{other.Layers[0], r.Layers[1]} // arm64 kept
	want.Published = r.Published                                // first publish kept
	want.Superseded = []catalog.Layer{r.Layers[0]}              // the replaced build's layer, for pinned images
	snap := Snapshot(t, s)
	checkRelease(t, snap, want)
	checkGeneration(t, s, g+1)
	if !snap.HasLayer(r.Layers[0].Digest) || !snap.HasLayer(other.Layers[0].Digest) {
		t.Errorf("HasLayer: superseded %v, current %v; want both", snap.HasLayer(r.Layers[0].Digest), snap.HasLayer(other.Layers[0].Digest))
	}

	// Reverting to the first build supersedes the second; the first is
	// current again, and listed once.
	back := r
	back.Layers = []catalog.Layer{r.Layers[0]}
	publish(t, s, back, catalog.PublishOptions{Force: true})
	want = r
	want.Superseded = []catalog.Layer{other.Layers[0]}
	checkRelease(t, Snapshot(t, s), want)
}

func testInvalidRelease(t *testing.T, s catalog.Store) {
	g := Snapshot(t, s).Generation
	valid := Release("php", "8.2.36", "linux/amd64")
	for _, tc := range []struct {
		name   string
		modify func(r *catalog.Release)
	}{
		{"no layers", func(r *catalog.Release) { r.Layers = nil }},
		{"bad name", func(r *catalog.Release) { r.Name = "PHP_8" }},
		{"path in name", func(r *catalog.Release) { r.Name = "../php" }},
		{"no version", func(r *catalog.Release) { r.Version = nil }},
		{"bad digest", func(r *catalog.Release) { r.Layers[0].Digest = "sha256:nothex" }},
		{"two layers one platform", func(r *catalog.Release) { r.Layers = append(r.Layers, r.Layers[0]) }},
		{"bad constraint", func(r *catalog.Release) { r.Requires = []catalog.Constraint{{Name: "base", Range: "~>>1"}} }},
		{"PATH var", func(r *catalog.Release) { r.Env.Vars = map[string]string{"PATH": "/bin"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid
			r.Layers = slices.Clone(valid.Layers)
			tc.modify(&r)
			if err := s.Publish(t.Context(), r, catalog.PublishOptions{}); err == nil {
				t.Fatal("Publish succeeded")
			}
			snap := Snapshot(t, s)
			if snap.Generation != g || len(snap.Names()) != 0 {
				t.Errorf("after a refused publish: generation %d (want %d), packages %q", snap.Generation, g, snap.Names())
			}
		})
	}
}

func testCancelledContext(t *testing.T, s catalog.Store) {
	g := Snapshot(t, s).Generation
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Publish(ctx, Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: error = %v, want context.Canceled", err)
	}
	if err := s.PutStack(ctx, catalog.Stack{Name: "web"}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutStack with a cancelled context: error = %v, want context.Canceled", err)
	}
	snap := Snapshot(t, s)
	if snap.Generation != g || len(snap.Names()) != 0 {
		t.Errorf("after cancelled changes: generation %d (want %d), packages %q", snap.Generation, g, snap.Names())
	}
	if _, ok := snap.Stack("web"); ok {
		t.Error("stack web stored by a cancelled PutStack")
	}
}

func testArgumentNotModified(t *testing.T, s catalog.Store) {
	r := Release("php", "8.2.36", "linux/arm64", "linux/amd64")
	r.Published = time.Date(2024, 5, 1, 14, 0, 0, 123, time.FixedZone("CEST", 2*3600))
	before := asJSON(t, r)
	publish(t, s, r, catalog.PublishOptions{})
	if after := asJSON(t, r); after != before {
		t.Errorf("Publish modified its argument:\nbefore %s\nafter  %s", before, after)
	}
}

func testStacks(t *testing.T, s catalog.Store) {
	web := catalog.Stack{
		Name:    "web",
		Base:    []catalog.Constraint{{Name: "base", Range: "^12"}, {Name: "ca-certificates", Range: "*"}},
		Latest:  []catalog.Constraint{{Name: "php", Range: "^8"}, {Name: "nodejs", Range: "*"}},
		Aliases: map[string]string{"node": "nodejs"},
		Image: catalog.ImageDefaults{
			Env:        map[string]string{"PATH": catalog.DefaultPath, "LANG": "C.UTF-8"},
			WorkingDir: "/app",
			User:       "1000:1000",
			Entrypoint: []string{"/usr/bin/tini", "--"},
			Cmd:        []string{"/bin/sh"},
			Labels:     map[string]string{"a": "b"},
		},
		MaxLayers: 50,
	}
	if err := s.PutStack(t.Context(), web); err != nil {
		t.Fatal(err)
	}
	snap := Snapshot(t, s)
	got, ok := snap.Stack("web")
	if !ok {
		t.Fatal("stack web missing after PutStack")
	}
	if g, w := asJSON(t, got), asJSON(t, web); g != w {
		t.Errorf("stack web:\n got %s\nwant %s", g, w)
	}
	if _, ok := snap.Stack(catalog.DefaultStackName); !ok {
		t.Error("default stack env missing once another stack exists")
	}
	if n := len(snap.Stacks()); n != 2 {
		t.Errorf("%d stacks, want 2 (env, web)", n)
	}

	// Replacing the default stack.
	env := catalog.DefaultStack()
	env.Aliases = map[string]string{"py": "python"}
	if err := s.PutStack(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	got, _ = Snapshot(t, s).Stack(catalog.DefaultStackName)
	if g, w := asJSON(t, got), asJSON(t, env); g != w {
		t.Errorf("replaced stack env:\n got %s\nwant %s", g, w)
	}

	g := Snapshot(t, s).Generation
	for _, bad := range []catalog.Stack{
		{Name: "Web"},
		{Name: "../x"},
		{Name: "web", Base: []catalog.Constraint{{Name: "base", Range: "~>>1"}}},
		{Name: "web", MaxLayers: -1},
	} {
		if err := s.PutStack(t.Context(), bad); err == nil {
			t.Errorf("PutStack(%+v) succeeded", bad)
		}
	}
	checkGeneration(t, s, g)
	got, _ = Snapshot(t, s).Stack("web")
	if g, w := asJSON(t, got), asJSON(t, web); g != w {
		t.Errorf("stack web changed by refused puts:\n got %s", g)
	}
}

func document(data string) catalog.Document {
	return catalog.Document{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString(data), Data: []byte(data)}
}

func testDocuments(t *testing.T, s catalog.Store) {
	d := document(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	if _, err := s.Document(t.Context(), d.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Document before PutDocument: error = %v, want ErrNotFound", err)
	}
	for range 2 { // idempotent
		if err := s.PutDocument(t.Context(), d); err != nil {
			t.Fatalf("PutDocument: %v", err)
		}
	}
	got, err := s.Document(t.Context(), d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.MediaType != d.MediaType || got.Digest != d.Digest || string(got.Data) != string(d.Data) {
		t.Errorf("Document = %+v, want %+v", got, d)
	}

	// Content that does not match the digest is refused and not stored.
	bad := document(`{"a":1}`)
	bad.Data = []byte(`{"a":2}`)
	if err := s.PutDocument(t.Context(), bad); err == nil {
		t.Error("PutDocument with mismatching content succeeded")
	}
	if _, err := s.Document(t.Context(), bad.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Document after refused put: error = %v, want ErrNotFound", err)
	}
	if _, err := s.Document(t.Context(), digest.FromString(`{"a":2}`)); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("refused content stored under its own digest: error = %v, want ErrNotFound", err)
	}

	// Invalid digests are errors, and not "not found".
	for _, dg := range []digest.Digest{"", "sha256:../../etc/passwd", "sha256:" + digest.Digest(strings.Repeat("A", 64)), "md5:d41d8cd98f00b204e9800998ecf8427e"} {
		if _, err := s.Document(t.Context(), dg); err == nil || errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Document(%q) error = %v, want an invalid-digest error", dg, err)
		}
		if err := s.PutDocument(t.Context(), catalog.Document{MediaType: ocispec.MediaTypeImageIndex, Digest: dg, Data: []byte("{}")}); err == nil {
			t.Errorf("PutDocument(%q) succeeded", dg)
		}
	}
}

func testConcurrentPublishes(t *testing.T, s catalog.Store) {
	g := Snapshot(t, s).Generation
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Half new versions, half new platforms of one version.
			r := Release("php", fmt.Sprintf("8.%d.0", i), "linux/amd64")
			if i%2 == 1 {
				r = Release("nodejs", "20.0.0", fmt.Sprintf("linux/arch%d", i))
			}
			errs[i] = s.Publish(t.Context(), r, catalog.PublishOptions{})
		})
		wg.Go(func() { // readers meanwhile
			if _, err := s.Snapshot(t.Context()); err != nil {
				t.Errorf("Snapshot during publishes: %v", err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Publish #%d: %v", i, err)
		}
	}
	snap := Snapshot(t, s)
	if snap.Generation != g+n {
		t.Errorf("generation = %d after %d publishes, want %d", snap.Generation, n, g+n)
	}
	if got := len(snap.Releases("php")); got != n/2 {
		t.Errorf("%d php releases, want %d", got, n/2)
	}
	if node, ok := find(snap, "nodejs", "20.0.0"); !ok || len(node.Layers) != n/2 {
		t.Errorf("nodejs 20.0.0 has %d layers, want %d", len(node.Layers), n/2)
	}
}

func testSnapshotImmutable(t *testing.T, s catalog.Store) {
	publish(t, s, Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{})
	old := Snapshot(t, s)
	oldGen := old.Generation
	oldJSON := asJSON(t, old.AllReleases())

	publish(t, s, Release("php", "8.2.36", "linux/arm64"), catalog.PublishOptions{})
	publish(t, s, Release("php", "8.3.0", "linux/amd64"), catalog.PublishOptions{})
	if err := s.PutStack(t.Context(), catalog.Stack{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	cur := Snapshot(t, s)
	if cur == old || cur.Generation == oldGen {
		t.Fatal("snapshot did not change after publishing")
	}
	if old.Generation != oldGen || asJSON(t, old.AllReleases()) != oldJSON {
		t.Errorf("an old snapshot changed after publishing: generation %d (was %d)\n%s", old.Generation, oldGen, asJSON(t, old.AllReleases()))
	}
	if _, ok := old.Stack("web"); ok {
		t.Error("an old snapshot gained a stack")
	}
}

// eventually polls s until cond holds for its snapshot or Visibility passes.
func eventually(t *testing.T, s catalog.Reader, what string, cond func(*catalog.Snapshot) bool) *catalog.Snapshot {
	t.Helper()
	deadline := time.Now().Add(Visibility)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		snap := Snapshot(t, s)
		if cond(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not visible through the other handle after %v (generation %d)", what, Visibility, snap.Generation)
		}
		<-tick.C
	}
}

func testSharedPublishVisible(t *testing.T, a, b catalog.Store) {
	Snapshot(t, b) // b has something cached
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, a, r, catalog.PublishOptions{})
	want := Snapshot(t, a).Generation
	snap := eventually(t, b, "a publish", func(s *catalog.Snapshot) bool { return s.Generation == want })
	checkRelease(t, snap, r)
}

func testSharedStackVisible(t *testing.T, a, b catalog.Store) {
	Snapshot(t, b)
	if err := a.PutStack(t.Context(), catalog.Stack{Name: "web", Aliases: map[string]string{"node": "nodejs"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, b, "a stack", func(s *catalog.Snapshot) bool { _, ok := s.Stack("web"); return ok })
}

func testSharedMerge(t *testing.T, a, b catalog.Store) {
	Snapshot(t, b) // b's cache is now stale on purpose
	publish(t, a, Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{})
	publish(t, b, Release("php", "8.2.36", "linux/arm64"), catalog.PublishOptions{})
	want := Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	for _, s := range []catalog.Store{a, b} {
		snap := eventually(t, s, "a merge", func(s *catalog.Snapshot) bool {
			r, ok := find(s, "php", "8.2.36")
			return ok && len(r.Layers) == 2
		})
		checkRelease(t, snap, want)
	}
}

func testSharedConflict(t *testing.T, a, b catalog.Store) {
	Snapshot(t, b)
	publish(t, a, Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{})
	other := Release("php", "8.2.36", "linux/amd64")
	other.Layers[0] = NewLayer("linux/amd64", "rebuilt")
	// b has not seen a's publish in its cache; the conflict is still found.
	if err := b.Publish(t.Context(), other, catalog.PublishOptions{}); !errors.Is(err, catalog.ErrExists) {
		t.Errorf("conflicting publish through the other handle: error = %v, want ErrExists", err)
	}
}

func testSharedNoOp(t *testing.T, a, b catalog.Store) {
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, a, r, catalog.PublishOptions{})
	g := Snapshot(t, a).Generation
	publish(t, b, r, catalog.PublishOptions{})
	eventually(t, b, "a publish", func(s *catalog.Snapshot) bool { return s.Generation == g })
	checkGeneration(t, a, g)
}

// testSharedExclusiveRace: handles that publish the same version at once,
// exclusively and with the same content (two sync jobs), find out which
// one published it: exactly one succeeds, the others get ErrExists, and a
// version published without a platform gets it added exclusively.
func testSharedExclusiveRace(t *testing.T, a, b catalog.Store) {
	excl := catalog.PublishOptions{Exclusive: true}
	const n = 8
	for v := range 3 {
		r := Release("php", fmt.Sprintf("8.4.%d", v), "linux/amd64", "linux/arm64")
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() { errs[i] = s.Publish(t.Context(), r, excl) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, catalog.ErrAlreadyPublished) || !errors.Is(err, catalog.ErrExists):
				t.Errorf("exclusive publish of %s: %v, want nil or ErrAlreadyPublished (an ErrExists)", r.ID(), err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d exclusive publishes of %s succeeded, want exactly 1", won, n, r.ID())
		}
	}
	publish(t, a, Release("php", "8.5.0", "linux/amd64"), excl)
	publish(t, b, Release("php", "8.5.0", "linux/arm64"), excl)
	if err := a.Publish(t.Context(), Release("php", "8.5.0", "linux/arm64"), excl); !errors.Is(err, catalog.ErrExists) {
		t.Errorf("exclusive publish of an existing platform: %v, want ErrExists", err)
	}
	snap := eventually(t, a, "both platforms", func(s *catalog.Snapshot) bool {
		r, ok := find(s, "php", "8.5.0")
		return ok && len(r.Layers) == 2
	})
	checkRelease(t, snap, Release("php", "8.5.0", "linux/amd64", "linux/arm64"))
}

func testSharedConcurrent(t *testing.T, a, b catalog.Store) {
	g := Snapshot(t, a).Generation
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() {
			errs[i] = a.Publish(t.Context(), Release("php", fmt.Sprintf("8.%d.0", i), "linux/amd64"), catalog.PublishOptions{})
		})
		wg.Go(func() {
			errs[n+i] = b.Publish(t.Context(), Release("php", fmt.Sprintf("8.%d.0", i), "linux/arm64"), catalog.PublishOptions{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Publish #%d: %v", i, err)
		}
	}
	for _, s := range []catalog.Store{a, b} {
		snap := eventually(t, s, "all publishes", func(s *catalog.Snapshot) bool { return s.Generation == g+2*n })
		rs := snap.Releases("php")
		if len(rs) != n {
			t.Fatalf("%d php releases, want %d", len(rs), n)
		}
		for _, r := range rs {
			if len(r.Layers) != 2 {
				t.Errorf("%s has %d layers, want 2 (amd64 through one handle, arm64 through the other)", r.ID(), len(r.Layers))
			}
		}
	}
}

func testSharedDocuments(t *testing.T, a, b catalog.Store) {
	d := document(`{"shared":true}`)
	if err := a.PutDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	got, err := b.Document(t.Context(), d.Digest) // documents are not cached: visible at once
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != string(d.Data) || got.MediaType != d.MediaType {
		t.Errorf("Document through the other handle = %+v, want %+v", got, d)
	}
	if err := b.PutDocument(t.Context(), d); err != nil {
		t.Errorf("PutDocument of an existing document through the other handle: %v", err)
	}
}

// testYank: SetYanked is a forced publish of the flag, bumps the
// generation, survives a plain re-publish, and is undone only by SetYanked
// (or a forced publish); the layers stay.
func testYank(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, s, r, catalog.PublishOptions{})
	publish(t, s, Release("php", "8.2.32", "linux/amd64"), catalog.PublishOptions{})
	g := Snapshot(t, s).Generation

	got, err := catalog.SetYanked(ctx, s, "php", r.Version, true)
	if err != nil || !got.Yanked {
		t.Fatalf("SetYanked: %+v, %v", got, err)
	}
	snap := Snapshot(t, s)
	if snap.Generation <= g {
		t.Errorf("generation %d after a yank, want > %d", snap.Generation, g)
	}
	stored, ok := find(snap, "php", "8.2.36")
	if !ok || !stored.Yanked || len(stored.Layers) != 1 || stored.Layers[0].Digest != r.Layers[0].Digest {
		t.Fatalf("yanked release as stored: %+v", stored)
	}
	if other, _ := find(snap, "php", "8.2.32"); other.Yanked {
		t.Fatal("yanking 8.2.36 yanked 8.2.32")
	}
	// A plain re-publish of the same content keeps the yank.
	publish(t, s, r, catalog.PublishOptions{})
	if again, _ := find(Snapshot(t, s), "php", "8.2.36"); !again.Yanked {
		t.Fatal("a re-publish un-yanked the version")
	}
	// Yanking again changes nothing.
	g = Snapshot(t, s).Generation
	if _, err := catalog.SetYanked(ctx, s, "php", r.Version, true); err != nil {
		t.Fatal(err)
	}
	if g2 := Snapshot(t, s).Generation; g2 != g {
		t.Errorf("yanking a yanked version moved the generation %d -> %d", g, g2)
	}
	if _, err := catalog.SetYanked(ctx, s, "php", r.Version, false); err != nil {
		t.Fatal(err)
	}
	if back, _ := find(Snapshot(t, s), "php", "8.2.36"); back.Yanked {
		t.Fatal("undo left the version yanked")
	}
	_, err = catalog.SetYanked(ctx, s, "php", semver.MustParse("9.0.0"), true)
	if !errors.Is(err, catalog.ErrNotFound) || !strings.Contains(err.Error(), "8.2.32, 8.2.36") {
		t.Errorf("yanking an unknown version: %v", err)
	}
}

func purger(t *testing.T, s catalog.Store) catalog.Purger {
	t.Helper()
	p, ok := s.(catalog.Purger)
	if !ok {
		t.Fatalf("%T does not implement catalog.Purger", s)
	}
	return p
}

// testPurge: RemoveRelease deletes one version (all platforms) and moves
// the generation; DeleteDocument deletes one document; both report
// ErrNotFound the second time.
func testPurge(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	p := purger(t, s)
	r := Release("php", "8.2.36", "linux/amd64", "linux/arm64")
	keep := Release("php", "8.2.32", "linux/amd64")
	publish(t, s, r, catalog.PublishOptions{})
	publish(t, s, keep, catalog.PublishOptions{})
	g := Snapshot(t, s).Generation
	if err := p.RemoveRelease(ctx, "php", r.Version); err != nil {
		t.Fatal(err)
	}
	snap := Snapshot(t, s)
	if snap.Generation <= g {
		t.Errorf("generation %d after a removal, want > %d", snap.Generation, g)
	}
	if _, ok := find(snap, "php", "8.2.36"); ok {
		t.Fatal("removed release still in the snapshot")
	}
	checkRelease(t, snap, keep)
	if err := p.RemoveRelease(ctx, "php", r.Version); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("second removal: %v, want ErrNotFound", err)
	}
	// Published again after a purge: a new release.
	publish(t, s, r, catalog.PublishOptions{})
	checkRelease(t, Snapshot(t, s), r)

	d := document(`{"schemaVersion":2,"purge":true}`)
	if err := s.PutDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteDocument(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Document(ctx, d.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("deleted document: %v, want ErrNotFound", err)
	}
	if err := p.DeleteDocument(ctx, d.Digest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if err := s.PutDocument(ctx, d); err != nil {
		t.Fatalf("storing a deleted document again: %v", err)
	}
}

// testSharedRemove: a removal through one handle is seen by another that
// had the release cached.
func testSharedRemove(t *testing.T, a, b catalog.Store) {
	r := Release("php", "8.2.36", "linux/amd64")
	publish(t, a, r, catalog.PublishOptions{})
	publish(t, a, Release("nodejs", "20.12.2", "linux/amd64"), catalog.PublishOptions{})
	want := Snapshot(t, a).Generation
	eventually(t, b, "the publishes", func(s *catalog.Snapshot) bool { return s.Generation == want })
	if err := purger(t, a).RemoveRelease(t.Context(), "php", r.Version); err != nil {
		t.Fatal(err)
	}
	snap := eventually(t, b, "a removal", func(s *catalog.Snapshot) bool { return len(s.Releases("php")) == 0 })
	if len(snap.Releases("nodejs")) != 1 {
		t.Fatalf("the other release went missing: %v", snap.Names())
	}
}
