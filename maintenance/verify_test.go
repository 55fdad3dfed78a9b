package maintenance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
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

// TestVerifyMarks: a mark on nothing stored and a composed index its stack
// no longer marks (legacy before adoption, collected after) are notes; a
// stack that marks an index but not a manifest it names is damage.
func TestVerifyMarks(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		f.publish("php", "8.2.32")
		f.publish("php", "8.2.36")
		img := f.compose(f.composer(testNow), "php-8.2")
		legacy := f.generate("php-8.2.32", manifestgen.FormatOCI, nil)
		f.storeLegacy(legacy)
		nothing := digest.FromString("never stored")
		if err := f.cat.MarkComposed(ctx, "env", testNow, false, nothing); err != nil {
			t.Fatal(err)
		}
		r, _ := f.verify()
		index := img.Index.Descriptor.Digest
		if len(r.Damage) != 0 || r.Marks != 4 || r.MarkedStacks != 1 ||
			!containsPrefix(r.Notes, "stack env marks "+nothing.String()+", which is not stored") ||
			!containsPrefix(r.Notes, "index "+legacy.Index.Descriptor.Digest.String()+" of stack env was stored before marks existed") {
			t.Errorf("report %+v", r)
		}

		// After adoption, a composed index its stack does not mark is one gc
		// unmarked: a note.
		if err := f.cat.(catalog.LegacyAdoption).SetLegacyAdopted(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.verify(); len(r.Damage) != 0 || !containsPrefix(r.Notes, "index "+legacy.Index.Descriptor.Digest.String()+": stack env no longer marks it") {
			t.Errorf("after adoption: %+v", r)
		}

		manifest := img.Manifests[0].Descriptor.Digest
		if err := f.cat.(catalog.ComposedWalker).RemoveMarks(ctx, "env", manifest); err != nil {
			t.Fatal(err)
		}
		r, _ = f.verify()
		if want := "stack env serves " + index.String() + " but not " + manifest.String(); len(r.Damage) != 1 || !containsPrefix(r.Damage, want) {
			t.Errorf("a stack serving an index but not its manifest: %q, want %q", r.Damage, want)
		}
	})
}

// TestVerifyDanglingIndex: deleting a manifest that an index of the same
// repository names is accepted (the conformance suite deletes children
// before their index) and leaves an index whose pull fails: verify reports
// it as damage.
func TestVerifyDanglingIndex(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		a, _ := f.pushManifest("team/multi", "config of amd64")
		b, _ := f.pushManifest("team/multi", "config of arm64")
		var descs []string
		for _, d := range []digest.Digest{a, b} {
			descs = append(descs, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, ocispec.MediaTypeImageManifest, d, f.documentSize(d)))
		}
		data := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, ocispec.MediaTypeImageIndex, strings.Join(descs, ",")))
		index := digest.FromBytes(data)
		if err := f.cat.PutDocument(ctx, catalog.Document{MediaType: ocispec.MediaTypeImageIndex, Digest: index, Data: data}); err != nil {
			t.Fatal(err)
		}
		if err := f.cat.PutManifest(ctx, "team/multi", catalog.ManifestRecord{Digest: index, MediaType: ocispec.MediaTypeImageIndex, Size: int64(len(data))}, "v1"); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.verify(); len(r.Damage) != 0 || r.Repositories != 1 || r.RepositoryIndexes != 1 {
			t.Fatalf("before the delete: %+v", r)
		}
		if err := f.cat.DeleteManifest(ctx, "team/multi", b); err != nil {
			t.Fatal(err)
		}
		r, _ := f.verify()
		want := "repository team/multi: index " + index.String() + " names manifest " + b.String() + ", which the repository no longer holds"
		if len(r.Damage) != 1 || !containsPrefix(r.Damage, want) {
			t.Errorf("after deleting a child: %q, want %q", r.Damage, want)
		}
	})
}
