package packages_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
)

// snapReader is a catalog.Reader of one snapshot.
type snapReader struct{ snap *catalog.Snapshot }

func (r snapReader) Snapshot(context.Context) (*catalog.Snapshot, error) { return r.snap, nil }

// seed runs a Syncer round of recipes through pub against snap, the way
// `envreg serve --seed` does.
func seed(t *testing.T, pub *packages.Publisher, recipes []packages.Recipe, dir string, snap *catalog.Snapshot) ([]catalog.Release, error) {
	t.Helper()
	s := &packages.Syncer{Catalog: snapReader{snap}, BaseDir: dir, What: "seeding",
		NewPublisher: func() (*packages.Publisher, error) { return pub, nil }}
	rep, err := s.Round(t.Context(), recipes)
	if err == nil && len(rep.Failed) > 0 {
		err = rep.Failed[0].Err
	}
	return rep.Published, err
}

// TestSeed: seeding (a Syncer round) publishes what the catalog lacks, in
// one catalog call per version, reporting its steps as events.
func TestSeed(t *testing.T) {
	dir := recipeDir(t)
	recipes, err := packages.LoadRecipes(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	pub, blobs, cat := newPublisher(t)
	var mu sync.Mutex
	var events []packages.Event
	pub.Progress = func(e packages.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}

	// Nothing published yet: every platform is.
	got, err := seed(t, pub, recipes, dir, catalog.NewSnapshot(0, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Layers) != 2 || cat.calls != 1 {
		t.Fatalf("first seed published %v in %d catalog calls, want php with 2 layers in 1", got, cat.calls)
	}
	full := cat.get(t, "php", "8.2.36")
	arm64 := catalog.Platform{OS: "linux", Architecture: "arm64"}
	l, _ := full.Layer(arm64)
	if want := (packages.Event{Kind: packages.RecipeStarted, Subject: "php 8.2.36 for linux/amd64, linux/arm64", Index: 1, Count: 1}); len(events) == 0 || events[0] != want {
		t.Errorf("first event %+v, want %+v", events[0], want)
	}
	if want := (packages.Event{Kind: packages.LayerBuilt, Subject: "php 8.2.36 for linux/arm64", Bytes: l.Size}); !slices.Contains(events, want) {
		t.Errorf("events %+v, want %+v among them", events, want)
	}

	// A second start with the same catalog publishes nothing.
	puts, calls := blobs.puts, cat.calls
	got, err = seed(t, pub, recipes, dir, catalog.NewSnapshot(1, []catalog.Release{full}, nil))
	if err != nil || len(got) != 0 || blobs.puts != puts || cat.calls != calls {
		t.Fatalf("second seed: %d releases, %d new blobs, %d new catalog calls, err %v; want nothing",
			len(got), blobs.puts-puts, cat.calls-calls, err)
	}

	// A release that lacks a platform gets only that one.
	partial := full
	partial.Layers = full.Layers[:1]
	got, err = seed(t, pub, recipes, dir, catalog.NewSnapshot(2, []catalog.Release{partial}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Layers) != 1 || got[0].Layers[0].Platform.String() != "linux/arm64" {
		t.Errorf("seeding a release without arm64 published %+v, want only linux/arm64", got)
	}
}
