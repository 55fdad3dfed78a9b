package packages_test

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/internal/debian/debtest"
	"github.com/envreg/envreg/resolver"
)

// signedArchive is a Debian archive of the test's own on loopback, signed
// with a key generated in the test (apt verifies it through the recipe's
// keyring; nothing is trusted without a signature).
type signedArchive struct {
	root, gnupg, keyring string
	srv                  *httptest.Server
	generation           int // of publish, for the files' times
}

func newSignedArchive(t *testing.T) *signedArchive {
	t.Helper()
	debtest.Require(t)
	for _, tool := range []string{"gpg", "dpkg-scanpackages", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not available: %v", tool, err)
		}
	}
	a := &signedArchive{root: t.TempDir(), gnupg: t.TempDir()}
	a.keyring = filepath.Join(t.TempDir(), "archive.gpg")
	a.gpg(t, "--quick-gen-key", "envreg test archive <archive@example.invalid>", "ed25519", "sign", "never")
	key := a.gpg(t, "--export")
	if err := os.WriteFile(a.keyring, key, 0o644); err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewServer(http.FileServer(http.Dir(a.root)))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *signedArchive) gpg(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+a.gnupg)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// publish makes the archive's bookworm main (amd64 and arm64) hold
// exactly pkgs, with a fresh signed InRelease.
func (a *signedArchive) publish(t *testing.T, pkgs ...debtest.Package) {
	t.Helper()
	pool := filepath.Join(a.root, "pool")
	if err := os.RemoveAll(pool); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		debtest.Build(t, pool, p)
	}
	dist := filepath.Join(a.root, "dists", "bookworm")
	var sums strings.Builder
	var indexes []string
	for _, arch := range []string{"amd64", "arm64"} {
		scan := exec.Command("dpkg-scanpackages", "--multiversion", "--arch", arch, "pool")
		scan.Dir = a.root
		index, err := scan.Output()
		if err != nil {
			t.Fatalf("dpkg-scanpackages: %v", err)
		}
		rel := "main/binary-" + arch + "/Packages"
		file := filepath.Join(dist, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, index, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, " %x %d %s\n", sha256.Sum256(index), len(index), rel)
		indexes = append(indexes, file)
	}
	release := fmt.Sprintf("Origin: envreg-test\nLabel: envreg-test\nSuite: bookworm\nCodename: bookworm\nDate: %s\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n%s",
		time.Now().UTC().Format(time.RFC1123), sums.String())
	if err := os.WriteFile(filepath.Join(dist, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dist, "InRelease"))
	a.gpg(t, "--clearsign", "--output", filepath.Join(dist, "InRelease"), filepath.Join(dist, "Release"))
	// HTTP times have one-second resolution: without a later time, apt's
	// If-Modified-Since would get 304 for an index rewritten within the
	// second, and keep the old one.
	a.generation++
	mtime := time.Now().Add(time.Duration(a.generation) * time.Minute)
	for _, f := range append(indexes, filepath.Join(dist, "Release"), filepath.Join(dist, "InRelease")) {
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// recipe writes a recipe for the pinned package into a new directory and
// loads it.
func (a *signedArchive) recipe(t *testing.T, pin string, platforms ...string) []packages.Recipe {
	t.Helper()
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64"}
	}
	dir := t.TempDir()
	recipe := fmt.Sprintf("name: hello\nplatforms: [%s]\nsource:\n  debian:\n    packages: [%s]\n    sources: [\"deb %s bookworm main\"]\n    keyring: %s\n",
		strings.Join(platforms, ", "), pin, a.srv.URL, a.keyring)
	if err := os.MkdirAll(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello", "recipe.yaml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	recipes, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return recipes
}

// rangedRecipe writes a recipe for the hello versions in rng (keep: keep)
// into a new directory and loads it.
func (a *signedArchive) rangedRecipe(t *testing.T, rng string, keep int, platforms ...string) []packages.Recipe {
	t.Helper()
	dir := t.TempDir()
	recipe := fmt.Sprintf("name: hello\nplatforms: [%s]\nsource:\n  debian:\n    packages: [hello]\n    versions: %q\n    keep: %d\n    sources: [\"deb %s bookworm main\"]\n    keyring: %s\n",
		strings.Join(platforms, ", "), rng, keep, a.srv.URL, a.keyring)
	if err := os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	recipes, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return recipes
}

// withCache gives the rounds of s one download cache of the test's own
// (each round has a new Publisher), as envreg sync --cache-dir does.
func withCache(t *testing.T, s *packages.Syncer) {
	t.Helper()
	cache := t.TempDir()
	newPub := s.NewPublisher
	s.NewPublisher = func() (*packages.Publisher, error) {
		p, err := newPub()
		if p != nil {
			p.CacheDir = cache
		}
		return p, err
	}
}

func hello(version string) debtest.Package {
	return debtest.Package{Name: "hello", Version: version, Arch: "amd64",
		Files: []debtest.File{{Path: "usr/bin/hello", Mode: 0o755, Content: "#!/bin/sh\necho hello " + version + "\n"}}}
}

// TestSyncGoneUpstream: a version the archive drops after it was
// published stays in the catalog; the next round (which refreshes the
// archive's signed indexes) logs it as gone upstream and does not fail
// (issue 18, item 4). Everything runs on loopback, signed with a key made
// in the test.
func TestSyncGoneUpstream(t *testing.T) {
	a := newSignedArchive(t)
	a.publish(t, hello("1.0-1"))
	recipes := a.recipe(t, "hello=1.0-1")
	data := t.TempDir()
	s := newSyncer(t, data)
	withCache(t, s)
	s.CheckUpstream = true

	rep, err := s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 1 || len(rep.Failed) != 0 || len(rep.GoneUpstream) != 0 {
		t.Fatalf("first round: %+v, %v; want hello published", rep, err)
	}
	a.publish(t, hello("1.1-1")) // the archive moves on; 1.0-1 is gone
	rep, err = s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 0 || len(rep.Failed) != 0 || rep.Present != 1 {
		t.Fatalf("round after the archive dropped the version: %+v, %v; want nothing published, nothing failed", rep, err)
	}
	if len(rep.GoneUpstream) != 1 || rep.GoneUpstream[0] != "hello 1.0.0+1" {
		t.Errorf("gone upstream %q, want [hello 1.0.0+1]", rep.GoneUpstream)
	}
	snap, err := s.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rels := snap.Releases("hello"); len(rels) != 1 {
		t.Errorf("catalog has %d hello versions, want the one published before", len(rels))
	}
}

// TestSyncSplitLabels: seeding publishes linux/amd64 of a version before
// its other platforms, in separate steps, yet both steps record the same
// metadata: the Debian labels describe every platform of the recipe, here
// a dependency whose version differs between architectures (a binNMU), so
// the second step adds its layer instead of conflicting.
func TestSyncSplitLabels(t *testing.T) {
	a := newSignedArchive(t)
	app := func(arch string) debtest.Package {
		p := hello("1.0-1")
		p.Arch, p.Depends = arch, "libgreet"
		return p
	}
	lib := func(arch, version string) debtest.Package {
		return debtest.Package{Name: "libgreet", Version: version, Arch: arch,
			Files: []debtest.File{{Path: "usr/lib/libgreet-" + arch, Content: version}}}
	}
	a.publish(t, app("amd64"), app("arm64"), lib("amd64", "2.0-1"), lib("arm64", "2.0-1+b1"))
	recipes := a.recipe(t, "hello=1.0-1", "linux/amd64", "linux/arm64")
	s := newSyncer(t, t.TempDir())
	withCache(t, s)
	s.FirstPlatform = "linux/amd64"
	rep, err := s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 2 || len(rep.Failed) != 0 || len(rep.Raced) != 0 {
		t.Fatalf("round: %+v, %v; want two steps published", rep, err)
	}
	if got := steps(rep.Published); got[0] != "hello 1.0.0+1 linux/amd64" || got[1] != "hello 1.0.0+1 linux/arm64" {
		t.Errorf("steps %v, want amd64, then arm64", got)
	}
	snap, err := s.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rels := snap.Releases("hello")
	if len(rels) != 1 || len(rels[0].Layers) != 2 {
		t.Fatalf("catalog: %+v, want hello with two layers", rels)
	}
	want := "hello=1.0-1 libgreet:amd64=2.0-1 libgreet:arm64=2.0-1+b1"
	if got := rels[0].Labels[packages.LabelDebianPackages]; got != want {
		t.Errorf("packages label %q, want %q", got, want)
	}
}

// helloFor is hello(version) for arch.
func helloFor(version, arch string) debtest.Package {
	p := hello(version)
	p.Arch = arch
	return p
}

// TestSyncRange: a recipe with a range of versions and keep publishes the
// newest versions in range that the archive has for every platform,
// newest first; a round with nothing new publishes and stores nothing; a
// new patch is published alone, moves hello-1.0 to it
// and leaves the earlier versions' layers as they were; a patch that one
// platform lacks waits for it; of two Debian revisions of one upstream
// version the newer is taken (issue 18, items 1 and 5).
func TestSyncRange(t *testing.T) {
	a := newSignedArchive(t)
	both := func(versions ...string) []debtest.Package {
		var out []debtest.Package
		for _, v := range versions {
			out = append(out, helloFor(v, "amd64"), helloFor(v, "arm64"))
		}
		return out
	}
	a.publish(t, both("1.0.1-1", "1.0.2-1", "1.0.3-1", "1.0.3-2", "2.0-1")...)
	recipes := a.rangedRecipe(t, ">=1.0 <2", 2, "linux/amd64", "linux/arm64")
	if len(recipes) != 1 || !recipes[0].Ranged() || recipes[0].Version != "" {
		t.Fatalf("loaded %+v, want one ranged recipe without a version", recipes)
	}
	data := t.TempDir()
	s := newSyncer(t, data)
	withCache(t, s)
	s.CheckUpstream = true

	rep, err := s.Round(t.Context(), recipes)
	if err != nil || len(rep.Failed) != 0 {
		t.Fatalf("first round: %+v, %v", rep, err)
	}
	if got, want := strings.Join(steps(rep.Published), "; "), "hello 1.0.3+2 linux/amd64,linux/arm64; hello 1.0.2+1 linux/amd64,linux/arm64"; got != want {
		t.Errorf("first round published %q, want %q (the two newest in range, newest first; 1.0.3-2 over 1.0.3-1)", got, want)
	}
	cat := func() map[string]string { // version → layer digests
		t.Helper()
		snap, err := s.Catalog.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range snap.Releases("hello") {
			var ds []string
			for _, l := range r.Layers {
				ds = append(ds, l.Digest.String())
			}
			out[r.Version.String()] = strings.Join(ds, ",")
		}
		return out
	}
	before := cat()

	files := countFiles(t, data)
	rep, err = s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 0 || len(rep.Failed) != 0 || rep.Present != 2 || countFiles(t, data) != files {
		t.Errorf("round with nothing new: %+v, %v; files %d → %d; want nothing published or stored", rep, err, files, countFiles(t, data))
	}

	// A new patch for amd64 only waits; once arm64 has it, it is
	// published alone.
	a.publish(t, append(both("1.0.1-1", "1.0.2-1", "1.0.3-1", "1.0.3-2", "2.0-1"), helloFor("1.0.4-1", "amd64"))...)
	if rep, err = s.Round(t.Context(), recipes); err != nil || len(rep.Published) != 0 || len(rep.Failed) != 0 {
		t.Errorf("round with 1.0.4-1 for amd64 only: %+v, %v; want nothing published", rep, err)
	}
	a.publish(t, both("1.0.3-2", "1.0.4-1", "2.0-1")...) // 1.0.2-1 (in the catalog) is gone upstream
	rep, err = s.Round(t.Context(), recipes)
	if err != nil || len(rep.Failed) != 0 {
		t.Fatalf("round with 1.0.4-1: %+v, %v", rep, err)
	}
	if got := steps(rep.Published); len(got) != 1 || got[0] != "hello 1.0.4+1 linux/amd64,linux/arm64" {
		t.Errorf("round with 1.0.4-1 published %q, want hello 1.0.4+1 alone", got)
	}
	if len(rep.GoneUpstream) != 1 || rep.GoneUpstream[0] != "hello 1.0.2+1" {
		t.Errorf("gone upstream %q, want [hello 1.0.2+1] (kept in the catalog)", rep.GoneUpstream)
	}
	after := cat()
	for v, layers := range before {
		if after[v] != layers {
			t.Errorf("hello %s: layers %s, were %s", v, after[v], layers)
		}
	}
	if len(after) != 3 {
		t.Errorf("catalog has %v, want 1.0.2, 1.0.3 and 1.0.4", after)
	}
	snap, err := s.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	st := catalog.Stack{Name: "env"}
	req, err := resolver.ParseTag("hello-1.0", st, resolver.StackNames(snap, st))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Releases[0].Version.String(); got != "1.0.4+1" {
		t.Errorf("hello-1.0 resolves to %s, want the new patch 1.0.4+1", got)
	}

	// Nothing in range: the round fails that recipe, naming what exists.
	none := a.rangedRecipe(t, "~1.9", 1, "linux/amd64")
	rep, err = s.Round(t.Context(), none)
	if err != nil || len(rep.Failed) != 1 || rep.Failed[0].Reason != "upstream" {
		t.Fatalf("round for ~1.9: %+v, %v; want one upstream failure", rep, err)
	}
	for _, w := range []string{"hello", `"~1.9"`, "linux/amd64: 2.0-1, 1.0.4-1, 1.0.3-2"} {
		if !strings.Contains(rep.Failed[0].Err.Error(), w) {
			t.Errorf("error %q does not name %s", rep.Failed[0].Err, w)
		}
	}
}

// TestSyncRebuild: when a library in a package's closure is replaced in
// the archive while the package's own version stays, the next round
// publishes a rebuild named VERSION.r2 that tags select, records why, and
// keeps the replaced layers (pinned digests keep pulling); a round after
// it, or before the change, rebuilds nothing (issue 18, items 3 and 5).
func TestSyncRebuild(t *testing.T) {
	a := newSignedArchive(t)
	app := func(arch string) debtest.Package {
		p := helloFor("1.0-1", arch)
		p.Depends = "libgreet"
		return p
	}
	lib := func(arch, version string) debtest.Package {
		return debtest.Package{Name: "libgreet", Version: version, Arch: arch,
			Files: []debtest.File{{Path: "usr/lib/libgreet.so.2", Content: "libgreet " + version}}}
	}
	a.publish(t, app("amd64"), app("arm64"), lib("amd64", "2.0-1"), lib("arm64", "2.0-1"))
	recipes := a.recipe(t, "hello=1.0-1", "linux/amd64", "linux/arm64")
	data := t.TempDir()
	s := newSyncer(t, data)
	withCache(t, s)
	s.CheckUpstream, s.Rebuild = true, true
	release := func() catalog.Release {
		t.Helper()
		snap, err := s.Catalog.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rels := snap.Releases("hello")
		if len(rels) != 1 {
			t.Fatalf("catalog has %d hello releases, want 1", len(rels))
		}
		return rels[0]
	}

	if rep, err := s.Round(t.Context(), recipes); err != nil || len(rep.Published) != 1 || len(rep.Rebuilt) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("first round: %+v, %v", rep, err)
	}
	first := release()
	files := countFiles(t, data)
	if rep, err := s.Round(t.Context(), recipes); err != nil || len(rep.Published) != 0 || len(rep.Rebuilt) != 0 || countFiles(t, data) != files {
		t.Fatalf("round with nothing new: %+v, %v; files %d → %d", rep, err, files, countFiles(t, data))
	}

	// A security update of the library; hello stays 1.0-1.
	a.publish(t, app("amd64"), app("arm64"), lib("amd64", "2.0-2"), lib("arm64", "2.0-2"))
	rep, err := s.Round(t.Context(), recipes)
	if err != nil || len(rep.Failed) != 0 {
		t.Fatalf("round after the library update: %+v, %v", rep, err)
	}
	const reason = "libgreet 2.0-1 → 2.0-2"
	if len(rep.Rebuilt) != 1 || rep.Rebuilt[0] != "hello 1.0.0+1.r2: "+reason {
		t.Errorf("rebuilt %q, want [hello 1.0.0+1.r2: %s]", rep.Rebuilt, reason)
	}
	rebuilt := release()
	if rebuilt.Version.String() != "1.0.0+1.r2" || rebuilt.Labels[catalog.LabelRebuild] != reason ||
		rebuilt.Labels[packages.LabelDebianPackages] != "hello=1.0-1 libgreet=2.0-2" {
		t.Errorf("rebuild %s, labels %v", rebuilt.Version, rebuilt.Labels)
	}
	snap, err := s.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range first.Layers {
		if nl, _ := rebuilt.Layer(l.Platform); nl.Digest == l.Digest {
			t.Errorf("%s: the rebuild has the old layer %s", l.Platform, l.Digest)
		}
		if !slices.ContainsFunc(rebuilt.Superseded, l.Equal) || !snap.HasLayer(l.Digest) {
			t.Errorf("%s: old layer %s not kept as superseded (%v)", l.Platform, l.Digest, rebuilt.Superseded)
		}
	}
	// Tags select the rebuild; the from answer says why.
	st := catalog.Stack{Name: "env"}
	for _, tag := range []string{"hello-1", "hello-1.0.0"} {
		req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
		if err != nil {
			t.Fatal(err)
		}
		res, err := resolver.Resolve(snap, st, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Releases[0].Version.String(); got != "1.0.0+1.r2" {
			t.Errorf("%s selects %s, want the rebuild", tag, got)
		}
	}
	changes := resolver.Changes(map[string]*semver.Version{"hello": first.Version}, []catalog.Release{rebuilt})
	if len(changes) != 1 || changes[0].Kind != "rebuilt" || changes[0].Reason != reason {
		t.Errorf("changes %+v, want hello rebuilt because %s", changes, reason)
	}

	files = countFiles(t, data)
	if rep, err := s.Round(t.Context(), recipes); err != nil || len(rep.Published) != 0 || len(rep.Rebuilt) != 0 || countFiles(t, data) != files {
		t.Errorf("round after the rebuild: %+v, %v; files %d → %d; want nothing", rep, err, files, countFiles(t, data))
	}
	// Neither the archive nor the catalog changed since that check: the
	// next round does not resolve the versions again.
	var logs strings.Builder
	s.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if rep, err := s.Round(t.Context(), recipes); err != nil || len(rep.Published) != 0 || len(rep.Rebuilt) != 0 {
		t.Errorf("round with nothing changed: %+v, %v", rep, err)
	}
	if !strings.Contains(logs.String(), "not checked again") {
		t.Errorf("a round with nothing changed checked the versions again:\n%s", logs.String())
	}
}

// TestSyncRangesOfOneName: two ranged recipes of one package from two
// archives (graphicsmagick from bookworm and from trixie) publish a version
// each, and neither counts the other's version as gone upstream.
func TestSyncRangesOfOneName(t *testing.T) {
	old, cur := newSignedArchive(t), newSignedArchive(t)
	old.publish(t, helloFor("1.3-1", "amd64"))
	cur.publish(t, helloFor("2.1-1", "amd64"))
	dir := t.TempDir()
	for name, a := range map[string]*signedArchive{"old": old, "cur": cur} {
		recipe := fmt.Sprintf("name: hello\nplatforms: [linux/amd64]\nsource:\n  debian:\n    packages: [hello]\n    versions: \"*\"\n    sources: [\"deb %s bookworm main\"]\n    keyring: %s\n",
			a.srv.URL, a.keyring)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(recipe), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recipes, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, t.TempDir())
	withCache(t, s)
	s.CheckUpstream = true
	rep, err := s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 2 || len(rep.Failed) != 0 {
		t.Fatalf("first round: %+v, %v; want hello 1.3 and 2.1", rep, err)
	}
	rep, err = s.Round(t.Context(), recipes)
	if err != nil || len(rep.Published) != 0 || len(rep.GoneUpstream) != 0 {
		t.Errorf("second round: published %d, gone upstream %q, %v; want nothing", len(rep.Published), rep.GoneUpstream, err)
	}
}
