package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envreg/envreg/test/fixtures"
)

// recipeDir writes the fixture packages as recipes (a directory source per
// platform) under a new directory, the input of `serve --seed DIR` and
// `envreg sync DIR`.
func recipeDir(t *testing.T, pkgs ...fixtures.Package) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range pkgs {
		writeRecipe(t, dir, p)
	}
	return dir
}

// writeRecipe adds p's recipe and trees to dir.
func writeRecipe(t *testing.T, dir string, p fixtures.Package) {
	t.Helper()
	rd := filepath.Join(dir, p.Name+"-"+p.Version)
	var plats []string
	for _, plat := range fixtures.Platforms() {
		if err := fixtures.WriteTree(filepath.Join(rd, "rootfs", plat.Architecture), p, plat); err != nil {
			t.Fatal(err)
		}
		plats = append(plats, plat.String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nversion: %s\nplatforms: [%s]\nsource:\n  dir: rootfs/{arch}\n", p.Name, p.Version, strings.Join(plats, ", "))
	if len(p.Path) > 0 {
		fmt.Fprintf(&b, "path: [%s]\n", strings.Join(p.Path, ", "))
	}
	if len(p.Env) > 0 {
		b.WriteString("env:\n")
		for k, v := range p.Env {
			fmt.Fprintf(&b, "  %s: %q\n", k, v)
		}
	}
	if len(p.Requires) > 0 {
		fmt.Fprintf(&b, "requires: [%q]\n", strings.Join(p.Requires, `", "`))
	}
	if err := os.WriteFile(filepath.Join(rd, "recipe.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stallingArchive is a Debian archive on loopback that answers nothing
// until released, then 404 to everything: a seeding step that is under way
// for as long as the test wants.
type stallingArchive struct {
	srv      *httptest.Server
	hit      chan struct{}
	release  chan struct{}
	hitOnce  sync.Once
	released sync.Once
}

func newStallingArchive(t *testing.T) *stallingArchive {
	t.Helper()
	a := &stallingArchive{hit: make(chan struct{}), release: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hitOnce.Do(func() { close(a.hit) })
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(func() { a.unstall(); a.srv.Close() })
	return a
}

func (a *stallingArchive) unstall() { a.released.Do(func() { close(a.release) }) }

// recipe adds a Debian recipe on the archive to dir, named to sort before
// every fixture (a round takes each package's newest version, then by
// name), so that seeding starts with it.
func (a *stallingArchive) recipe(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		skipOrFail(t, "apt-get is not installed")
	}
	rd := filepath.Join(dir, "stall")
	if err := os.MkdirAll(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf("name: apt-stall\nversion: 99.0.0\nplatforms: [linux/amd64]\nsource:\n  debian:\n    packages: [stall]\n    sources: [\"deb %s/debian bookworm main\"]\n", a.srv.URL)
	if err := os.WriteFile(filepath.Join(rd, "recipe.yaml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitHit waits until envreg asks the archive for something.
func (a *stallingArchive) waitHit(t *testing.T, s *server) {
	t.Helper()
	select {
	case <-a.hit:
	case <-time.After(time.Minute):
		t.Fatalf("seeding did not reach the stalling archive within a minute\n%s", s.logs())
	}
}

// readyProgress returns /readyz's status and progress.
func readyProgress(t *testing.T, s *server) (int, string) {
	t.Helper()
	resp, body := s.get(t, "/readyz", "")
	var r struct {
		Progress string `json:"progress"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz: %d %s: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, r.Progress
}

// TestSeedInBackground: `serve --seed` listens at once and publishes in the
// background (issue 17, item 5): /v2/ answers 200 while the first version
// is still being published, /readyz is ready and says how far seeding is,
// a tag whose packages are not published yet is 404 with the usual
// explanation and a note that seeding goes on, and once seeding is done
// the tag resolves. A version that
// fails (the archive answers 404) does not stop the others.
func TestSeedInBackground(t *testing.T) {
	archive := newStallingArchive(t)
	all := fixtures.All()
	dir := recipeDir(t, all[0], all[len(all)-1]) // base 12.0.0, php 8.2.36
	archive.recipe(t, dir)
	data := filepath.Join(t.TempDir(), "data")

	start := time.Now()
	s := startServer(t, data, "--seed", dir, "--seed-wait=false", "--cache-dir", t.TempDir())
	if resp, body := s.get(t, "/v2/", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/v2/ while seeding: %d %s, want 200", resp.StatusCode, body)
	}
	t.Logf("first 200 on /v2/ %s after start, seeding under way", time.Since(start).Round(time.Millisecond))
	archive.waitHit(t, s)
	code, progress := readyProgress(t, s)
	if code != http.StatusOK || !strings.Contains(progress, "seeding: 0 of 5 steps done") || !strings.Contains(progress, "publishing apt-stall 99.0.0 for linux/amd64") {
		t.Errorf("/readyz while seeding: %d progress %q, want 200 and the step under way", code, progress)
	}
	resp, body := s.get(t, "/v2/env/manifests/php-8.2", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "MANIFEST_UNKNOWN") || !strings.Contains(string(body), "php") ||
		!strings.Contains(string(body), "(still publishing: seeding: 0 of 5 steps done") {
		t.Errorf("a tag not published yet: %d %s, want 404 MANIFEST_UNKNOWN explaining php and saying that seeding goes on", resp.StatusCode, body)
	}

	archive.unstall() // the stalled version fails; the others follow
	deadline := time.Now().Add(time.Minute)
	for {
		if _, progress = readyProgress(t, s); progress == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeding still under way a minute later: %q\n%s", progress, s.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("php-8.2 after seeding: %d %s, want 200", resp.StatusCode, body)
	}
	if !s.waitLog(t, "msg=seeded") || !s.waitLog(t, "msg=\"seeding: step failed\"") {
		t.Errorf("log lacks the seeding summary or the failed step\n%s", s.logs())
	}
}

// TestSeedShutdown: SIGTERM while seeding stops the server cleanly and
// promptly, records no part of the version under way, and a restart
// seeds the rest (issue 17, item 5).
func TestSeedShutdown(t *testing.T) {
	archive := newStallingArchive(t)
	all := fixtures.All()
	dir := recipeDir(t, all[0], all[len(all)-1])
	archive.recipe(t, dir)
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, data, "--seed", dir, "--seed-wait=false", "--cache-dir", t.TempDir())
	archive.waitHit(t, s)
	start := time.Now()
	s.stop(t) // fails the test unless the exit is clean within 30 s
	t.Logf("stopped %s after SIGTERM while seeding", time.Since(start).Round(time.Millisecond))
	if out := envreg(t, "verify", "--data", data); strings.Contains(out, "apt-stall") {
		t.Errorf("verify after a stop mid-seed mentions the version under way:\n%s", out)
	}
	if _, _, err := envregResult(t, "resolve", "--data", data, "apt-stall"); err == nil {
		t.Errorf("the version under way at SIGTERM resolves after the stop")
	}

	if err := os.RemoveAll(filepath.Join(dir, "stall")); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, data, "--seed", dir, "--seed-wait")
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("php-8.2 after seeding with --seed-wait: %d %s, want 200", resp.StatusCode, body)
	}
}
