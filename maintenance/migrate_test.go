package maintenance_test

import (
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/resolver"
)

// TestMigrate copies an embedded store into Redis (with blobs in another
// directory): everything arrives, the stacks' marks included, a legacy
// composition is adopted in the target, the copy verifies, and a second
// run copies no blob again.
func TestMigrate(t *testing.T) {
	src := newEmbedded(t)
	src.publish("php", "8.2.36")
	img := src.compose(src.composer(testNow), "php-8.2")
	legacy := src.generate("php-8.2.36", formatDocker, func(res *resolver.Resolution) {
		res.Stack.Image.Env = map[string]string{"LEGACY": "1"}
	})
	src.storeLegacy(legacy)
	manifest, _ := src.pushManifest("team/app", "a pushed config")
	if err := src.cat.PutManifest(t.Context(), "team/app", catalog.ManifestRecord{Digest: manifest, MediaType: mediaTypeManifest, Size: src.documentSize(manifest)}, "v1"); err != nil {
		t.Fatal(err)
	}
	dst := newRedis(t)

	migrate := func() *maintenance.MigrateReport {
		var steps []string
		r, err := maintenance.Migrate(t.Context(), maintenance.Source{Catalog: src.cat.(maintenance.SourceCatalog), Blobs: src.blobs}, dst.stores,
			maintenance.MigrateOptions{Clock: func() timeT { return testNow }, OnStep: func(step string, _ *maintenance.MigrateReport) { steps = append(steps, step) }})
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != 5 || steps[0] != maintenance.StepBlobs || steps[4] != maintenance.StepCatalog {
			t.Errorf("steps %v", steps)
		}
		return r
	}
	r := migrate()
	if len(r.Problems) != 0 {
		t.Fatalf("problems: %q", r.Problems)
	}
	// php's layer, the two configs, the pushed config (the target has base
	// already); two indexes and three manifests.
	if r.Blobs != 4 || r.Documents != 5 || r.Marks != len(img.Digests()) || r.Adopted != 1 || r.Repositories != 1 || r.Tags != 1 || r.Releases != 2 {
		t.Errorf("report %+v", r)
	}
	for _, d := range img.Digests() {
		if m, err := dst.cat.Composed(t.Context(), "env", d); err != nil || !m.Served.Equal(testNow) || m.Pinned {
			t.Errorf("mark of %s in the target: %+v, %v; want served %s, unpinned", d, m, err, testNow)
		}
	}
	if m, err := dst.cat.Composed(t.Context(), "env", legacy.Index.Descriptor.Digest); err != nil || !m.Pinned {
		t.Errorf("the legacy composition in the target: %+v, %v; want adopted, pinned", m, err)
	}
	if again := migrate(); again.Blobs != 0 || len(again.Problems) != 0 {
		t.Errorf("second run: %+v", again)
	}
	if v, _ := dst.verify(); len(v.Damage) != 0 {
		t.Errorf("the target does not verify: %q", v.Damage)
	}
}
