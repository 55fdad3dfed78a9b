package maintenance_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
)

// TestGCKeepsSBOMs: gc keeps a stack's SBOM artifact while it keeps the
// artifact's subject (here pinned) however old the artifact's own marks,
// and collects it with its SPDX document when the subject goes; verify
// checks the artifacts and finds no damage.
func TestGCKeepsSBOMs(t *testing.T) {
	backends(t, testGCKeepsSBOMs)
}

func testGCKeepsSBOMs(t *testing.T, f *fixture) {
	f.publish("php", "8.2.36")
	f.publish("nodejs", "20.1.0")
	t0 := time.Now().Truncate(time.Second)
	c := f.composer(t0)
	pinned, old := f.compose(c, "php-8.2.36"), f.compose(c, "node-20")
	if err := c.Pin(t.Context(), "env", pinned); err != nil {
		t.Fatal(err)
	}
	keptArt, keptDoc := f.sbom(c, pinned)
	goneArt, goneDoc := f.sbom(c, old)
	if v, _ := f.verify(); len(v.Damage) != 0 || v.SBOMs != 2 {
		t.Fatalf("before gc: %d SBOM artifacts, damage %q", v.SBOMs, v.Damage)
	}

	f.gc(maintenance.GCOptions{Grace: time.Hour, Retention: 15 * 24 * time.Hour}, t0.Add(30*24*time.Hour))
	if !f.hasDocument(keptArt) || !f.hasBlob(keptDoc) {
		t.Errorf("gc collected the SBOM of a pinned manifest (artifact kept: %v, document kept: %v)", f.hasDocument(keptArt), f.hasBlob(keptDoc))
	}
	if f.hasDocument(goneArt) || f.hasBlob(goneDoc) {
		t.Errorf("gc kept the SBOM of a collected manifest (artifact: %v, document: %v)", f.hasDocument(goneArt), f.hasBlob(goneDoc))
	}
	if v, _ := f.verify(); len(v.Damage) != 0 || v.SBOMs != 1 {
		t.Errorf("after gc: %d SBOM artifacts, damage %q", v.SBOMs, v.Damage)
	}
}

// sbom asks c for the referrers of img's manifest (storing its SBOM
// artifact) and returns the artifact's digest and its SPDX document's.
func (f *fixture) sbom(c *manifestgen.Composer, img *manifestgen.Image) (art, doc digest.Digest) {
	f.t.Helper()
	refs, err := c.Referrers(f.t.Context(), f.snapshot(), "env", img.Manifests[0].Descriptor.Digest, f.blobs)
	if err != nil || len(refs) != 1 {
		f.t.Fatalf("referrers of %s: %v, %v", img.Manifests[0].Descriptor.Digest, refs, err)
	}
	d, err := f.cat.Document(f.t.Context(), refs[0].Digest)
	if err != nil {
		f.t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(d.Data, &m); err != nil || len(m.Layers) != 1 {
		f.t.Fatalf("artifact %s: %v", refs[0].Digest, err)
	}
	return refs[0].Digest, m.Layers[0].Digest
}

// TestPurgeRemovesSBOMs: purging a version deletes the SBOM artifacts of
// the manifests it deletes (before them), with the marks on the artifacts
// and their SPDX documents, keeps the others, and leaves a store that
// verifies.
func TestPurgeRemovesSBOMs(t *testing.T) {
	backends(t, testPurgeRemovesSBOMs)
}

func testPurgeRemovesSBOMs(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.publish("php", "8.2.32")
	f.publish("php", "8.2.36")
	c := f.composer(testNow)
	doomed, kept := f.compose(c, "php-8.2.36"), f.compose(c, "php-8.2.32")
	doomedArt, doomedDoc := f.sbom(c, doomed)
	keptArt, _ := f.sbom(c, kept)
	var deleted []digest.Digest
	r, err := maintenance.Purge(ctx, f.cat, "php", semver.MustParse("8.2.36"), maintenance.PurgeOptions{
		OnDelete: func(d digest.Digest) { deleted = append(deleted, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Referrers) != 1 || r.Referrers[0] != doomedArt || len(deleted) == 0 || deleted[0] != doomedArt {
		t.Errorf("purge: referrers %v, deleted %v; want %s first", r.Referrers, deleted, doomedArt)
	}
	for _, d := range []digest.Digest{doomedArt, doomedDoc} {
		if _, err := f.cat.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("purge kept the mark on %s: %v", d, err)
		}
	}
	if f.hasDocument(doomedArt) || !f.hasDocument(keptArt) {
		t.Errorf("after the purge: the purged manifest's SBOM stored %v, the kept one's %v", f.hasDocument(doomedArt), f.hasDocument(keptArt))
	}
	if v, _ := f.verify(); len(v.Damage) != 0 || v.SBOMs != 1 {
		t.Errorf("after the purge: %d SBOM artifacts, damage %q", v.SBOMs, v.Damage)
	}
}
