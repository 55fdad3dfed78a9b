package packages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/packages"
)

// The real backends (layerstore/fs, catalog/fsstore) run their own contract
// suites; these in-memory fakes implement the same contracts closely enough
// to test the publishing job, and can fail on demand.

// memBlobs is an in-memory layerstore.Writer that verifies like a backend.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[digest.Digest][]byte
	puts  int
	fail  error // returned by every Put when set
}

func (b *memBlobs) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.puts++
	if b.fail != nil {
		return b.fail
	}
	var buf bytes.Buffer
	if _, err := layerstore.Verify(&buf, r, d, size); err != nil {
		return err
	}
	if b.blobs == nil {
		b.blobs = map[digest.Digest][]byte{}
	}
	b.blobs[d] = buf.Bytes()
	return nil
}

// memCatalog is an in-memory catalog.Publisher with the merge semantics of
// the catalog contract.
type memCatalog struct {
	mu       sync.Mutex
	releases map[string]catalog.Release // by Release.ID()
	calls    int
}

func (c *memCatalog) Publish(ctx context.Context, r catalog.Release, opts catalog.PublishOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err := r.Validate(); err != nil {
		return err
	}
	if c.releases == nil {
		c.releases = map[string]catalog.Release{}
	}
	old, ok := c.releases[r.ID()]
	if !ok {
		r.Layers = slices.Clone(r.Layers)
		c.releases[r.ID()] = r
		return nil
	}
	if !catalog.SameContent(old, r) && !opts.Force {
		return fmt.Errorf("release %s: metadata differs: %w", r.ID(), catalog.ErrExists)
	}
	merged := r
	merged.Published = old.Published
	merged.Layers = slices.Clone(old.Layers)
	for _, l := range r.Layers {
		i := slices.IndexFunc(merged.Layers, func(m catalog.Layer) bool { return m.Platform == l.Platform })
		switch {
		case i < 0:
			merged.Layers = append(merged.Layers, l)
		case !merged.Layers[i].Equal(l) && !opts.Force:
			return fmt.Errorf("release %s %s: layer differs: %w", r.ID(), l.Platform, catalog.ErrExists)
		default:
			merged.Layers[i] = l
		}
	}
	merged.Canonicalize()
	c.releases[r.ID()] = merged
	return nil
}

func (c *memCatalog) PutStack(ctx context.Context, s catalog.Stack) error {
	return errors.New("memCatalog: PutStack not implemented")
}

func (c *memCatalog) get(t *testing.T, name, version string) catalog.Release {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.releases[name+" "+version]
	if !ok {
		t.Fatalf("catalog has no release %s %s", name, version)
	}
	return r
}

// pick returns the newest (or, with oldest, the oldest) release of name
// whose version is minor or starts with minor+".".
func (c *memCatalog) pick(t *testing.T, name, minor string, oldest bool) catalog.Release {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out *catalog.Release
	for _, r := range c.releases {
		if r.Name != name || !strings.HasPrefix(r.Version.String()+".", minor+".") {
			continue
		}
		if out == nil || r.Version.GreaterThan(out.Version) != oldest {
			out = &r
		}
	}
	if out == nil {
		t.Fatalf("catalog has no release %s %s", name, minor)
	}
	return *out
}

// fixedNow is a publish time in a non-UTC zone with sub-second precision,
// so that tests see the normalization.
var fixedNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))

func newPublisher(t *testing.T) (*packages.Publisher, *memBlobs, *memCatalog) {
	t.Helper()
	blobs, cat := &memBlobs{}, &memCatalog{}
	return &packages.Publisher{
		Blobs:   blobs,
		Catalog: cat,
		Now:     func() time.Time { return fixedNow },
		TempDir: t.TempDir(),
	}, blobs, cat
}
