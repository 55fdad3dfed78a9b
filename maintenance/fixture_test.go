package maintenance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	"github.com/envreg/envreg/catalog/redisstore"
	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

var amd64 = catalog.Platform{OS: "linux", Architecture: "amd64"}

// fixture is a store with packages published into it, real on both ends:
// the embedded catalog or Redis, and blobs under a temporary directory.
type fixture struct {
	t      *testing.T
	dir    string
	stores maintenance.Stores
	cat    catalog.Store
	blobs  *blobfs.Store
	// open opens the catalog again (a second process, a replica); the
	// caller closes it.
	open func() (catalog.Store, error)
}

// newEmbedded returns the embedded store (catalog and blobs under one data
// directory), as envreg serve --data uses it.
func newEmbedded(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return newFixture(t, dir, func() (catalog.Store, error) { return fsstore.Open(dir) })
}

// newRedis returns Redis (ENVREG_TEST_REDIS_ADDR, else a redis-server of
// the test's own) under a key prefix of the test's own, with blobs on
// disk.
func newRedis(t *testing.T) *fixture {
	t.Helper()
	url := testRedis(t)
	prefix := "envregtest-" + randomHex(6) + ":"
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opts)
	t.Cleanup(func() {
		ctx := context.Background() // t.Context() is cancelled by now
		for _, pattern := range []string{"{" + prefix + "}*", prefix + "*"} {
			iter := raw.Scan(ctx, 0, pattern, 100).Iterator()
			for iter.Next(ctx) {
				raw.Del(ctx, iter.Val())
			}
		}
		raw.Close()
	})
	return newFixture(t, t.TempDir(), func() (catalog.Store, error) {
		return redisstore.Open(context.Background(), url, redisstore.WithKeyPrefix(prefix))
	})
}

// testRedis returns the URL of ENVREG_TEST_REDIS_ADDR, or of a
// redis-server started for the test (skipped locally without one, failed
// with CI=true).
func testRedis(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("ENVREG_TEST_REDIS_ADDR"); addr != "" {
		return "redis://" + addr + "/0"
	}
	return testservers.Redis(t)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newFixture(t *testing.T, dir string, open func() (catalog.Store, error)) *fixture {
	t.Helper()
	cat, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, cat: cat, blobs: blobs, open: open}
	f.stores = maintenance.Stores{Catalog: f.cat, Blobs: blobs}
	f.publish("base", "12.0.0")
	return f
}

// layerContent is the content of name version's layer blob: not a real
// tar (nothing here unpacks it), but unique per package version.
func layerContent(name, version string) []byte { return []byte("layer of " + name + " " + version) }

// publish stores a layer for name version and publishes the release
// (requiring base, as every package but base does).
func (f *fixture) publish(name, version string) catalog.Release {
	f.t.Helper()
	data := layerContent(name, version)
	d := digest.FromBytes(data)
	f.putBlob(data)
	r := catalog.Release{Name: name, Version: semver.MustParse(version),
		Layers: []catalog.Layer{{Platform: amd64, Digest: d, DiffID: digest.FromString("tar " + string(data)),
			Size: int64(len(data)), MediaType: ocispec.MediaTypeImageLayerGzip}},
		Published: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if name != "base" {
		r.Requires = []catalog.Constraint{{Name: "base", Range: "*"}}
	}
	if err := f.cat.Publish(f.t.Context(), r, catalog.PublishOptions{}); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) putBlob(data []byte) digest.Digest {
	f.t.Helper()
	d := digest.FromBytes(data)
	if err := f.blobs.Put(f.t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// composer returns a Composer whose marks are dated now.
func (f *fixture) composer(now time.Time) *manifestgen.Composer {
	return manifestgen.NewComposer(f.cat, f.blobs, manifestgen.WithClock(func() time.Time { return now }))
}

// compose composes tag in the stack env as a pull of it does, and returns
// the stored image.
func (f *fixture) compose(c *manifestgen.Composer, tag string) *manifestgen.Image {
	f.t.Helper()
	snap, err := f.cat.Snapshot(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	st, _ := snap.Stack("env")
	req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
	if err != nil {
		f.t.Fatal(err)
	}
	img, err := c.Compose(f.t.Context(), snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		f.t.Fatalf("composing %s: %v", tag, err)
	}
	return img
}

// hasDocument reports whether d is stored.
func (f *fixture) hasDocument(d digest.Digest) bool {
	f.t.Helper()
	_, err := f.cat.Document(f.t.Context(), d)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

// hasBlob reports whether blob d is stored.
func (f *fixture) hasBlob(d digest.Digest) bool {
	f.t.Helper()
	_, err := f.blobs.Stat(f.t.Context(), d)
	if err != nil && !errors.Is(err, layerstore.ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

// storeLegacy stores img the way envreg stored compositions before stacks
// kept marks: configs and documents, no marks.
func (f *fixture) storeLegacy(img *manifestgen.Image) {
	f.t.Helper()
	for _, b := range img.Configs {
		f.putBlob(b.Data)
	}
	f.putDocuments(append(img.Manifests, img.Index)...)
}

func (f *fixture) putDocuments(bs ...manifestgen.Blob) {
	f.t.Helper()
	for _, b := range bs {
		d := catalog.Document{MediaType: b.Descriptor.MediaType, Digest: b.Descriptor.Digest, Data: b.Data}
		if err := f.cat.PutDocument(f.t.Context(), d); err != nil {
			f.t.Fatal(err)
		}
	}
}

// generate synthesizes tag without storing it.
func (f *fixture) generate(tag string, format manifestgen.Format, mutate func(*resolver.Resolution)) *manifestgen.Image {
	f.t.Helper()
	snap, err := f.cat.Snapshot(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	st, _ := snap.Stack("env")
	req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		f.t.Fatal(err)
	}
	if mutate != nil {
		mutate(res)
	}
	img, err := manifestgen.Generate(res, format)
	if err != nil {
		f.t.Fatal(err)
	}
	return img
}

// Stores without the optional capabilities.
type (
	bareBlobs   struct{ layerstore.Store }
	bareCatalog struct{ catalog.Store }
	// docsOnly lists its documents, not its marks.
	docsOnly struct {
		catalog.Store
		maintenance.DocumentWalker
	}
	// walkOnly lists its blobs, and can do nothing else maintenance asks.
	walkOnly struct {
		layerstore.Store
		maintenance.BlobWalker
	}
)

// testNow is the time compositions of the tests are stored at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func (f *fixture) snapshot() *catalog.Snapshot {
	f.t.Helper()
	snap, err := f.cat.Snapshot(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return snap
}

type timeT = time.Time

const (
	formatDocker      = manifestgen.FormatDocker
	mediaTypeManifest = ocispec.MediaTypeImageManifest
)

// documentSize returns the size of stored document d.
func (f *fixture) documentSize(d digest.Digest) int64 {
	f.t.Helper()
	doc, err := f.cat.Document(f.t.Context(), d)
	if err != nil {
		f.t.Fatal(err)
	}
	return int64(len(doc.Data))
}
