package maintenance_test

import (
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

// TestAdopt: compositions stored the way envreg stored them before stacks
// kept marks (documents and configs, no marks) are adopted once, pinned,
// with their manifests and configs; a pushed index that claims a stack in
// its annotations is not.
func TestAdopt(t *testing.T) {
	for name, newStore := range map[string]func(*testing.T) *fixture{"embedded": newEmbedded, "redis": newRedis} {
		t.Run(name, func(t *testing.T) { testAdopt(t, newStore(t)) })
	}
}

func testAdopt(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.publish("php", "8.2.36")
	legacy := f.generate("php-8.2", manifestgen.FormatOCI, nil)
	f.storeLegacy(legacy)
	// The same shape, pushed to a repository: not the stack's.
	pushed := f.generate("php-8.2", manifestgen.FormatDocker, func(res *resolver.Resolution) {
		res.Stack.Image.Env = map[string]string{"PUSHED": "1"}
	})
	f.storeLegacy(pushed)
	rec := catalog.ManifestRecord{Digest: pushed.Index.Descriptor.Digest, MediaType: pushed.Index.Descriptor.MediaType, Size: pushed.Index.Descriptor.Size}
	if err := f.cat.PutManifest(ctx, "alice/app", rec, "v1"); err != nil {
		t.Fatal(err)
	}

	as := f.cat.(maintenance.AdoptionStore)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	n, err := maintenance.Adopt(ctx, as, now, false)
	if err != nil || n != 1 {
		t.Fatalf("Adopt = %d, %v; want 1 composition", n, err)
	}
	for _, d := range legacy.Digests() {
		m, err := f.cat.Composed(ctx, "env", d)
		if err != nil || !m.Pinned || !m.Served.Equal(now) {
			t.Errorf("legacy %s: %+v, %v; want pinned, served %s", d, m, err, now)
		}
	}
	for _, d := range []digest.Digest{pushed.Index.Descriptor.Digest, pushed.Configs[0].Descriptor.Digest} {
		if _, err := f.cat.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("pushed %s adopted: %v", d, err)
		}
	}
	// Once per store.
	if n, err := maintenance.Adopt(ctx, as, now, false); err != nil || n != 0 {
		t.Errorf("second Adopt = %d, %v; want 0", n, err)
	}
	// Forced (envreg migrate), it adopts what has no marks yet, and leaves
	// compositions with marks as they are: adopting them would pin them.
	f.publish("php", "8.2.32")
	composed := f.compose(f.composer(now), "php-8.2.32")
	again := f.generate("php-8.2.32", manifestgen.FormatDocker, nil)
	f.storeLegacy(again)
	if n, err := maintenance.Adopt(ctx, as, now, true); err != nil || n != 1 {
		t.Errorf("forced Adopt = %d, %v; want 1", n, err)
	}
	for _, d := range composed.Digests()[len(composed.Configs):] {
		if m, err := f.cat.Composed(ctx, "env", d); err != nil || m.Pinned {
			t.Errorf("composed %s after a forced Adopt: %+v, %v; want unpinned", d, m, err)
		}
	}
	if m, err := f.cat.Composed(ctx, "env", again.Index.Descriptor.Digest); err != nil || !m.Pinned {
		t.Errorf("legacy %s after a forced Adopt: %+v, %v; want pinned", again.Index.Descriptor.Digest, m, err)
	}
}
