package maintenance_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
	"github.com/envreg/envreg/manifestgen"
)

// TestPurge: purge deletes the composed documents that use a version,
// indexes first, then the version; compositions without it stay, and a
// dry run changes nothing. An unknown version is an error listing the
// versions there are.
func TestPurge(t *testing.T) {
	backends(t, testPurge)
}

func testPurge(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.publish("php", "8.2.32")
	f.publish("php", "8.2.36")
	c := f.composer(testNow)
	doomed := f.compose(c, "php-8.2")
	if err := c.Pin(ctx, "env", doomed); err != nil { // the provisioning API's pin goes too
		t.Fatal(err)
	}
	kept := f.compose(c, "php-8.2.32")
	// A copy of a composition that uses it, pushed to a repository: pushed
	// content stays.
	f.publish("nodejs", "20.1.0")
	pushed := f.compose(c, "php-8.2.36_node-20")
	for _, d := range documents(pushed) {
		doc, err := f.cat.Document(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		rec := catalog.ManifestRecord{Digest: d, MediaType: doc.MediaType, Size: int64(len(doc.Data))}
		if err := f.cat.PutManifest(ctx, "team/copy", rec); err != nil {
			t.Fatal(err)
		}
	}

	purge := func(dryRun bool) (*maintenance.PurgeReport, []string) {
		var deleted []string
		r, err := maintenance.Purge(ctx, f.cat, "php", semver.MustParse("8.2.36"), maintenance.PurgeOptions{
			DryRun: dryRun, OnDelete: func(d digest.Digest) { deleted = append(deleted, d.String()) }})
		if err != nil {
			t.Fatal(err)
		}
		return r, deleted
	}
	r, deleted := purge(true)
	want := []string{doomed.Index.Descriptor.Digest.String(), doomed.Manifests[0].Descriptor.Digest.String()}
	// The marks of both compositions that use it: 3 each.
	if strings.Join(deleted, " ") != strings.Join(want, " ") || len(r.Indexes) != 1 || len(r.Manifests) != 1 || r.Marks != 6 {
		t.Errorf("dry run: %v, %+v; want %v and 6 marks", deleted, r, want)
	}
	if _, err := f.cat.Composed(ctx, "env", doomed.Index.Descriptor.Digest); err != nil || !f.hasDocument(doomed.Index.Descriptor.Digest) || f.snapshot().Releases("php")[0].Yanked {
		t.Errorf("a dry run changed something: %v", err)
	}
	if r, deleted = purge(false); strings.Join(deleted, " ") != strings.Join(want, " ") || r.Marks != 6 {
		t.Errorf("purge deleted %v and %d marks, want %v and 6", deleted, r.Marks, want)
	}
	for _, d := range documents(doomed) {
		if f.hasDocument(d) {
			t.Errorf("purge kept %s", d)
		}
	}
	for _, img := range []*manifestgen.Image{doomed, pushed} {
		for _, d := range img.Digests() {
			if m, err := f.cat.Composed(ctx, "env", d); !errors.Is(err, catalog.ErrNotFound) {
				t.Errorf("purge kept the mark on %s: %+v, %v", d, m, err)
			}
		}
	}
	for _, d := range slices.Concat(documents(kept), documents(pushed)) {
		if !f.hasDocument(d) {
			t.Errorf("purge deleted %s, which does not use php 8.2.36 or a repository holds", d)
		}
	}
	for _, d := range kept.Digests() {
		if _, err := f.cat.Composed(ctx, "env", d); err != nil {
			t.Errorf("purge removed the mark on %s, which does not use php 8.2.36: %v", d, err)
		}
	}
	if rels := f.snapshot().Releases("php"); len(rels) != 1 || rels[0].Version.String() != "8.2.32" {
		t.Errorf("php after the purge: %v", rels)
	}
	_, err := maintenance.Purge(ctx, f.cat, "php", semver.MustParse("9.9.9"), maintenance.PurgeOptions{})
	if !errors.Is(err, catalog.ErrNotFound) || !strings.Contains(err.Error(), "8.2.32") {
		t.Errorf("purging an unknown version: %v", err)
	}
}
