package manifestgen_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/manifestgen"
)

// TestAdopt: compositions stored the way envreg stored them before stacks
// kept marks (documents and configs, no marks) are adopted once, pinned,
// with their manifests and configs; a pushed index that claims a stack in
// its annotations is not.
func TestAdopt(t *testing.T) {
	dir := t.TempDir()
	cat, err := fsstore.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	blobs, err := blobfs.New(filepath.Join(dir, "data", "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	store := func(img *manifestgen.Image) {
		for _, b := range img.Configs {
			if err := blobs.Put(ctx, b.Descriptor.Digest, b.Descriptor.Size, bytes.NewReader(b.Data)); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range append(img.Manifests, img.Index) {
			if err := cat.PutDocument(ctx, catalog.Document{MediaType: b.Descriptor.MediaType, Digest: b.Descriptor.Digest, Data: b.Data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	res := manyReleases(2)
	legacy, err := manifestgen.Generate(res, manifestgen.FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	store(legacy)
	// The same shape, pushed to a repository: not the stack's.
	res.Stack.Image.Env = map[string]string{"PUSHED": "1"}
	pushed, err := manifestgen.Generate(res, manifestgen.FormatDocker)
	if err != nil {
		t.Fatal(err)
	}
	store(pushed)
	rec := catalog.ManifestRecord{Digest: pushed.Index.Descriptor.Digest, MediaType: pushed.Index.Descriptor.MediaType, Size: pushed.Index.Descriptor.Size}
	if err := cat.PutManifest(ctx, "alice/app", rec, "v1"); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	n, err := manifestgen.Adopt(ctx, cat, now, false)
	if err != nil || n != 1 {
		t.Fatalf("Adopt = %d, %v; want 1 composition", n, err)
	}
	for _, d := range legacy.Digests() {
		m, err := cat.Composed(ctx, "env", d)
		if err != nil || !m.Pinned || !m.Served.Equal(now) {
			t.Errorf("legacy %s: %+v, %v; want pinned, served %s", d, m, err, now)
		}
	}
	for _, d := range []digest.Digest{pushed.Index.Descriptor.Digest, pushed.Configs[0].Descriptor.Digest} {
		if _, err := cat.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("pushed %s adopted: %v", d, err)
		}
	}
	// Once per store.
	if n, err := manifestgen.Adopt(ctx, cat, now, false); err != nil || n != 0 {
		t.Errorf("second Adopt = %d, %v; want 0", n, err)
	}
	if n, err := manifestgen.Adopt(ctx, cat, now, true); err != nil || n != 1 {
		t.Errorf("forced Adopt = %d, %v; want 1", n, err)
	}
}
