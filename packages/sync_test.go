package packages_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	layerfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// syncRecipes writes php recipes for versions into a new directory, each
// with its own content per platform, and loads them.
func syncRecipes(t *testing.T, versions ...string) []packages.Recipe {
	t.Helper()
	dir := t.TempDir()
	for _, v := range versions {
		rd := filepath.Join(dir, "php-"+v)
		for _, arch := range []string{"amd64", "arm64"} {
			root := filepath.Join(rd, "rootfs", arch)
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			layertest.WriteDir(t, root, []layertest.File{{Name: "php", Mode: 0o755, Data: "php " + v + " " + arch + "\n"}})
		}
		recipe := strings.Replace(phpRecipe, "8.2.36", v, 1)
		if err := os.WriteFile(filepath.Join(rd, "recipe.yaml"), []byte(recipe), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recipes, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return recipes
}

// syncStore is an embedded catalog and blob store under dir, opened anew
// (a second job on the same directory opens its own).
func syncStore(t *testing.T, dir string) (*fsstore.Store, *layerfs.Store) {
	t.Helper()
	cat, err := fsstore.Open(filepath.Join(dir, "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	blobs, err := layerfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return cat, blobs
}

func newSyncer(t *testing.T, dir string) *packages.Syncer {
	cat, blobs := syncStore(t, dir)
	tmp := t.TempDir()
	return &packages.Syncer{Catalog: cat, NewPublisher: func() (*packages.Publisher, error) {
		return &packages.Publisher{Blobs: blobs, Catalog: cat, TempDir: tmp}, nil
	}}
}

func steps(rels []catalog.Release) []string {
	var out []string
	for _, r := range rels {
		out = append(out, fmt.Sprintf("%s %s", r.ID(), platformsOf(r)))
	}
	return out
}

func platformsOf(r catalog.Release) string {
	var ps []string
	for _, p := range r.Platforms() {
		ps = append(ps, p.String())
	}
	return strings.Join(ps, ",")
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSyncRound: a round publishes what the catalog lacks, newest first and
// the first platform of every version before the others; a second round
// publishes and stores nothing; a broken recipe fails alone.
func TestSyncRound(t *testing.T) {
	recipes := syncRecipes(t, "8.2.36", "8.3.1", "8.2.37")
	broken := recipes[0]
	broken.Name, broken.Source.Dir = "nodejs", "missing/{arch}"
	recipes = append(recipes, broken)
	data := t.TempDir()
	s := newSyncer(t, data)
	s.FirstPlatform = "linux/amd64"

	rep, err := s.Round(t.Context(), recipes)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"php 8.3.1 linux/amd64", "php 8.2.37 linux/amd64", "php 8.2.36 linux/amd64",
		"php 8.3.1 linux/arm64", "php 8.2.37 linux/arm64", "php 8.2.36 linux/arm64",
	}
	if got := steps(rep.Published); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("published in order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rep.Failed) != 2 || !strings.HasPrefix(rep.Failed[0].Step, "nodejs 8.2.36") || rep.Failed[0].Reason == "" {
		t.Errorf("failures %+v, want nodejs for each platform", rep.Failed)
	}
	if s.Status() != "" {
		t.Errorf("status after the round %q, want empty", s.Status())
	}
	snap, err := s.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range snap.Releases("php") {
		if len(r.Layers) != 2 {
			t.Errorf("%s has %d layers, want 2", r.ID(), len(r.Layers))
		}
	}

	// Nothing new: nothing published, nothing stored, only the broken
	// recipe tried again.
	files := countFiles(t, data)
	rep, err = s.Round(t.Context(), recipes)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Published) != 0 || rep.Present != 3 || len(rep.Failed) != 2 || countFiles(t, data) != files {
		t.Errorf("second round: published %v, present %d, failed %d, files %d → %d; want nothing new, 3 present, 2 failed",
			steps(rep.Published), rep.Present, len(rep.Failed), files, countFiles(t, data))
	}
}

// TestSyncConcurrent: two jobs on one catalog at once publish each version
// once, whole: the catalog's exclusive publish decides which.
func TestSyncConcurrent(t *testing.T) {
	var versions []string
	for i := range 6 {
		versions = append(versions, fmt.Sprintf("8.4.%d", i))
	}
	recipes := syncRecipes(t, versions...)
	data := t.TempDir()
	jobs := []*packages.Syncer{newSyncer(t, data), newSyncer(t, data)}
	reps := make([]packages.SyncReport, len(jobs))
	var wg sync.WaitGroup
	for i, s := range jobs {
		wg.Go(func() {
			var err error
			if reps[i], err = s.Round(t.Context(), recipes); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i, rep := range reps {
		if len(rep.Failed) > 0 {
			t.Errorf("job %d failed: %+v", i, rep.Failed)
		}
		for _, r := range rep.Published {
			seen[r.ID()]++
			if len(r.Layers) != 2 {
				t.Errorf("job %d published %s with %d layers, want 2", i, r.ID(), len(r.Layers))
			}
		}
		t.Logf("job %d: published %d, raced %d", i, len(rep.Published), len(rep.Raced))
	}
	for _, v := range versions {
		if seen["php "+v] != 1 {
			t.Errorf("php %s published %d times, want once", v, seen["php "+v])
		}
	}
	cat, _ := syncStore(t, data) // a fresh look, not a job's cache
	snap, err := cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Releases("php")); n != len(versions) {
		t.Errorf("catalog has %d php versions, want %d", n, len(versions))
	}
}
