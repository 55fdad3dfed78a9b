package maintenance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/maintenance"
)

// verify runs Verify and returns its report and the sections in the order
// they were reported.
func (f *fixture) verify() (*maintenance.VerifyReport, []string) {
	f.t.Helper()
	var sections []string
	r, err := maintenance.Verify(f.t.Context(), f.stores, maintenance.VerifyOptions{
		OnSection: func(s maintenance.Section, _ *maintenance.VerifyReport) { sections = append(sections, s.Name) },
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return r, sections
}

// TestVerify: a sound store verifies clean, section by section; a corrupt
// layer is reported wherever it is used, and a missing config in the
// manifest that names it.
func TestVerify(t *testing.T) {
	backends(t, testVerify)
}

func testVerify(t *testing.T, f *fixture) {
	php := f.publish("php", "8.2.36")
	img := f.compose(f.composer(testNow), "php-8.2")
	f.pushManifest("team/app", "a pushed config")
	r, sections := f.verify()
	if len(r.Damage) != 0 {
		t.Fatalf("a sound store: %q", r.Damage)
	}
	if r.Blobs != 4 || r.Releases != 2 || r.Layers != 2 || r.Documents != 3 || r.Indexes != 1 || r.Manifests != 2 || r.Pushed != 1 {
		t.Errorf("counts: %+v; want 4 blobs, 2 releases with 2 layers, 3 documents (1 index, 2 manifests, 1 pushed)", r)
	}
	if want := []string{maintenance.SectionBlobs, maintenance.SectionReleases, maintenance.SectionDocuments}; !strings.HasPrefix(strings.Join(sections, ","), strings.Join(want, ",")) {
		t.Errorf("sections %v, want %v first", sections, want)
	}

	layer := php.Layers[0].Digest
	corrupt(t, filepath.Join(f.dir, "blobs", "sha256", layer.Encoded()))
	config := img.Configs[0].Descriptor.Digest
	if err := f.blobs.Delete(t.Context(), config); err != nil {
		t.Fatal(err)
	}
	r, _ = f.verify()
	manifest := img.Manifests[0].Descriptor.Digest
	for _, want := range []string{
		"blob " + layer.String() + ": content has digest",
		"php 8.2.36 linux/amd64: layer blob " + layer.String() + " is corrupt",
		"manifest " + manifest.String() + ": layer " + layer.String() + " is corrupt",
		"manifest " + manifest.String() + ": config " + config.String() + " is missing",
	} {
		if !containsPrefix(r.Damage, want) {
			t.Errorf("damage lacks %q: %q", want, r.Damage)
		}
	}
}

// containsPrefix reports whether some line starts with prefix.
func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// corrupt flips one byte of a file, keeping its size.
func corrupt(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
