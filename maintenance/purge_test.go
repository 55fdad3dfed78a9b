package maintenance_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
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
	kept := f.compose(c, "php-8.2.32")

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
	if strings.Join(deleted, " ") != strings.Join(want, " ") || len(r.Indexes) != 1 || len(r.Manifests) != 1 {
		t.Errorf("dry run: %v, %+v; want %v", deleted, r, want)
	}
	if !f.hasDocument(doomed.Index.Descriptor.Digest) || f.snapshot().Releases("php")[0].Yanked {
		t.Error("a dry run changed something")
	}
	if _, deleted = purge(false); strings.Join(deleted, " ") != strings.Join(want, " ") {
		t.Errorf("purge deleted %v, want %v", deleted, want)
	}
	for _, d := range doomed.Digests()[len(doomed.Configs):] {
		if f.hasDocument(d) {
			t.Errorf("purge kept %s", d)
		}
	}
	for _, d := range kept.Digests()[len(kept.Configs):] {
		if !f.hasDocument(d) {
			t.Errorf("purge deleted %s, which does not use php 8.2.36", d)
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
