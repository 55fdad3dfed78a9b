package main

import (
	"fmt"
	"path/filepath"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
)

// backends are the stores a command works on. This is the only place that
// names concrete backends; everything else receives interfaces.
type backends struct {
	catalog catalog.Store
	blobs   layerstore.Store
}

// openBackends opens the embedded store under dir: the catalog and
// documents under dir (catalog/, documents/), blobs under dir/blobs.
func openBackends(dir string) (*backends, error) {
	cat, err := fsstore.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening catalog in %s: %w", dir, err)
	}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		cat.Close()
		return nil, fmt.Errorf("opening blob store in %s: %w", dir, err)
	}
	return &backends{catalog: cat, blobs: blobs}, nil
}

func (b *backends) Close() error { return b.catalog.Close() }
