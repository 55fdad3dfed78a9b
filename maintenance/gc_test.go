package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
)

// backends runs fn on the embedded store and on Redis (with blobs on
// disk).
func backends(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, b := range []struct {
		name string
		new  func(*testing.T) *fixture
	}{{"embedded", newEmbedded}, {"redis", newRedis}} {
		t.Run(b.name, func(t *testing.T) { fn(t, b.new(t)) })
	}
}

// pushManifest stores a pushed image manifest whose config is a new blob
// in repo, as the registry's manifest PUT does, and returns the
// manifest's and the config's digests.
func (f *fixture) pushManifest(repo, content string) (manifest, config digest.Digest) {
	f.t.Helper()
	config = f.putBlob([]byte(content))
	data := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, config, len(content)))
	manifest = digest.FromBytes(data)
	ctx := f.t.Context()
	if err := f.cat.PutDocument(ctx, catalog.Document{MediaType: ocispec.MediaTypeImageManifest, Digest: manifest, Data: data}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.cat.LinkBlob(ctx, repo, config); err != nil {
		f.t.Fatal(err)
	}
	rec := catalog.ManifestRecord{Digest: manifest, MediaType: ocispec.MediaTypeImageManifest, Size: int64(len(data))}
	if err := f.cat.PutManifest(ctx, repo, rec); err != nil {
		f.t.Fatal(err)
	}
	return manifest, config
}

// gc runs GC with the clock at now and returns its report and the
// digests it deleted.
func (f *fixture) gc(o maintenance.GCOptions, now time.Time) (*maintenance.GCReport, []digest.Digest) {
	f.t.Helper()
	var deleted []digest.Digest
	o.Clock = func() time.Time { return now }
	o.OnDelete = func(d maintenance.Deletion) { deleted = append(deleted, d.Digest) }
	o.Reopen = func(context.Context) (catalog.Store, error) { return f.open() }
	r, err := maintenance.GC(f.t.Context(), f.stores, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return r, deleted
}

// TestGCPushedContent: as in distribution's gc, a pushed blob stays while a
// manifest some repository holds names it; a blob only linked (its
// manifest never came, or was deleted) goes after the grace period and is
// unlinked; a deleted manifest's document goes after the grace period, and
// with it its claim on its config. Composed images and the catalog's
// layers stay.
func TestGCPushedContent(t *testing.T) {
	backends(t, testGCPushedContent)
}

func testGCPushedContent(t *testing.T, f *fixture) {
	ctx := t.Context()
	php := f.publish("php", "8.2.36")
	start := time.Now()
	img := f.compose(f.composer(start), "php-8.2")
	orphan := f.putBlob([]byte("an orphan from a failed publish"))
	heldManifest, heldConfig := f.pushManifest("team/app", "config of a manifest team/app holds")
	gone, goneConfig := f.pushManifest("team/app", "config of a manifest deleted from team/app")
	if err := f.cat.DeleteManifest(ctx, "team/app", gone); err != nil {
		t.Fatal(err)
	}
	linkedOnly := f.putBlob([]byte("uploaded, no manifest came"))
	if err := f.cat.LinkBlob(ctx, "team/app", linkedOnly); err != nil {
		t.Fatal(err)
	}

	// Within the grace period everything stays; the kept document keeps
	// its config.
	r, deleted := f.gc(maintenance.GCOptions{Grace: time.Hour}, start)
	if len(deleted) != 0 || r.BlobsYoung != 2 || r.DocumentsKept != 1 || r.BlobsReferenced != 5 {
		t.Errorf("within the grace period: deleted %v, report %+v; want nothing deleted, 2 young blobs, 5 referenced, 1 document kept", deleted, r)
	}
	// A dry run past it deletes nothing and says what would go.
	later := start.Add(2 * time.Hour)
	wantBlobs := []digest.Digest{orphan, goneConfig, linkedOnly}
	r, deleted = f.gc(maintenance.GCOptions{Grace: time.Hour, DryRun: true}, later)
	want := wantBlobs
	if _, ok := f.cat.(maintenance.DocumentAger); ok {
		want = append([]digest.Digest{gone}, wantBlobs...)
	} else {
		// Redis documents have no age: the orphaned manifest is kept, and
		// its config with it.
		want = []digest.Digest{orphan, linkedOnly}
	}
	if !sameDigests(deleted, want) || !f.hasDocument(gone) || !f.hasBlob(orphan) {
		t.Errorf("dry run: would delete %v, want %v", deleted, want)
	}
	// With no grace period every backend collects it all.
	r, deleted = f.gc(maintenance.GCOptions{}, later)
	if want := append([]digest.Digest{gone}, wantBlobs...); !sameDigests(deleted, want) {
		t.Errorf("gc: deleted %v, want %v (report %+v)", deleted, want, r)
	}
	for _, d := range slices.Concat(img.Digests()[:len(img.Configs)], []digest.Digest{php.Layers[0].Digest, heldConfig}) {
		if !f.hasBlob(d) {
			t.Errorf("gc deleted blob %s, which something references", d)
		}
	}
	for _, d := range append(img.Digests()[len(img.Configs):], heldManifest) {
		if !f.hasDocument(d) {
			t.Errorf("gc deleted document %s", d)
		}
	}
	if f.hasDocument(gone) || f.hasBlob(orphan) || f.hasBlob(linkedOnly) || f.hasBlob(goneConfig) {
		t.Error("gc kept what nothing references")
	}
	if linked, err := f.cat.BlobLinked(ctx, "team/app", linkedOnly); err != nil || linked {
		t.Errorf("a deleted blob is still linked to team/app: %v, %v", linked, err)
	}
	if r, deleted := f.gc(maintenance.GCOptions{}, later); len(deleted) != 0 || r.BlobsDeleted != 0 {
		t.Errorf("second gc deleted %v", deleted)
	}
}

func sameDigests(got, want []digest.Digest) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

// TestGCRefusesWhatItCannotRead: a store that lacks a capability gc needs
// is refused before anything is deleted, naming what it lacks.
func TestGCRefusesWhatItCannotRead(t *testing.T) {
	f := newEmbedded(t)
	for _, tc := range []struct {
		name   string
		stores maintenance.Stores
		o      maintenance.GCOptions
		want   string
	}{
		{"no blob walk", maintenance.Stores{Catalog: f.cat, Blobs: bareBlobs{f.blobs}}, maintenance.GCOptions{}, "Walk"},
		{"no document walk", maintenance.Stores{Catalog: bareCatalog{f.cat}, Blobs: f.blobs}, maintenance.GCOptions{}, "WalkDocuments"},
		{"no mark walk", maintenance.Stores{Catalog: docsOnly{f.cat, f.cat.(maintenance.DocumentWalker)}, Blobs: f.blobs}, maintenance.GCOptions{}, "WalkComposed"},
		{"no ages", maintenance.Stores{Catalog: f.cat, Blobs: walkOnly{f.blobs, f.blobs}}, maintenance.GCOptions{Grace: time.Hour, DryRun: true}, "ModTime"},
		{"no delete", maintenance.Stores{Catalog: f.cat, Blobs: walkOnly{f.blobs, f.blobs}}, maintenance.GCOptions{}, "Delete"},
	} {
		_, err := maintenance.GC(t.Context(), tc.stores, tc.o)
		var missing *maintenance.MissingCapabilityError
		if !errors.As(err, &missing) || missing.Method != tc.want {
			t.Errorf("%s: %v, want a MissingCapabilityError for %s", tc.name, err, tc.want)
		}
	}
}

// TestGCKeepsSupersededLayers: the layer a rebuild replaced (a forced
// publish of the same version) stays, however old, while its release
// lists it as superseded: images pinned before the rebuild still pull it.
func TestGCKeepsSupersededLayers(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		f.publish("base", "12.0.0")
		old := f.publish("php", "8.2.36")
		data := layerContent("php", "8.2.36 rebuilt")
		rebuilt := old
		v := semver.MustParse("8.2.36+r2")
		rebuilt.Version = v
		rebuilt.Layers = []catalog.Layer{{Platform: amd64, Digest: f.putBlob(data), DiffID: digest.FromString("tar " + string(data)),
			Size: int64(len(data)), MediaType: ocispec.MediaTypeImageLayerGzip}}
		if err := f.cat.Publish(t.Context(), rebuilt, catalog.PublishOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		_, deleted := f.gc(maintenance.GCOptions{Grace: 0}, time.Now().Add(24*time.Hour))
		for _, d := range []digest.Digest{old.Layers[0].Digest, rebuilt.Layers[0].Digest} {
			if slices.Contains(deleted, d) || !f.hasBlob(d) {
				t.Errorf("gc deleted layer %s (deleted %v)", d, deleted)
			}
		}
	})
}
