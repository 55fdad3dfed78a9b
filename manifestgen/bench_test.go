package manifestgen_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/manifestgen"
)

// BenchmarkGenerate: 5 releases on 2 platforms, the size of a typical
// php+node image with base packages.
func BenchmarkGenerate(b *testing.B) {
	for _, f := range formats {
		b.Run(f.String(), func(b *testing.B) {
			res := manyReleases(5)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := manifestgen.Generate(res, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerateMaxLayers: the default layer limit, the worst case.
func BenchmarkGenerateMaxLayers(b *testing.B) {
	res := manyReleases(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := manifestgen.Generate(res, manifestgen.FormatOCI); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreNew: persisting a composition never stored before (2
// configs, 2 manifests, the index) durably in the embedded stores, the
// part of a first GET of a new combination that waits on fsync.
func BenchmarkStoreNew(b *testing.B) {
	dir := b.TempDir()
	cat, err := fsstore.Open(filepath.Join(dir, "data"))
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Close()
	blobs, err := blobfs.New(filepath.Join(dir, "data", "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	c := manifestgen.NewComposer(cat, blobs)
	res := manyReleases(5)
	i := 0
	for b.Loop() {
		i++
		res.Stack.Image.Env = map[string]string{"N": strconv.Itoa(i)} // a new image each time
		img, err := manifestgen.Generate(res, manifestgen.FormatOCI)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Store(b.Context(), "env", img, false); err != nil {
			b.Fatal(err)
		}
	}
}
