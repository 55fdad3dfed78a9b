package packages_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// TestPublishRefusesHostileTar publishes each hostile tar through the
// publishing job: the error names the entry, and nothing is stored, in the
// blob store, the catalog or the temporary directory.
func TestPublishRefusesHostileTar(t *testing.T) {
	for _, tc := range layertest.HostileTars {
		t.Run(tc.Name, func(t *testing.T) {
			pub, blobs, cat := newPublisher(t)
			pub.Policy = tc.Policy
			file := filepath.Join(t.TempDir(), "hostile.tar.gz")
			if err := os.WriteFile(file, tc.Input(t), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Tar: file})
			layertest.CheckRefused(t, err, tc.Rule, tc.Path)
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the input file", err)
			}
			checkNothingStored(t, pub, blobs, cat)
		})
	}
}

func checkNothingStored(t *testing.T, pub *packages.Publisher, blobs *memBlobs, cat *memCatalog) {
	t.Helper()
	if blobs.puts != 0 || len(blobs.blobs) != 0 {
		t.Errorf("%d blob puts, %d blobs stored; want none", blobs.puts, len(blobs.blobs))
	}
	if cat.calls != 0 || len(cat.releases) != 0 {
		t.Errorf("%d catalog calls; want none", cat.calls)
	}
	left, err := os.ReadDir(pub.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temporary directory holds %d entries", len(left))
	}
}

// TestPublishRefusesHostileDirs publishes each hostile directory tree
// through the publishing job: the error names the entry, and nothing is
// stored.
func TestPublishRefusesHostileDirs(t *testing.T) {
	for _, tc := range layertest.HostileDirs {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			tc.Make(t, dir)
			pub, blobs, cat := newPublisher(t)
			pub.Policy = tc.Policy
			_, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Dir: dir})
			layertest.CheckRefused(t, err, tc.Rule, tc.Path)
			checkNothingStored(t, pub, blobs, cat)
		})
	}
}
