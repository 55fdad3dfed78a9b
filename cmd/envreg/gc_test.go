package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
)

// putBlob stores content as a blob with the given age and returns its
// digest.
func putBlob(t *testing.T, s stored, content string, age time.Duration) digest.Digest {
	t.Helper()
	bs, err := blobfs.New(filepath.Join(s.data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString(content)
	if err := bs.Put(t.Context(), d, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	setAge(t, s.blobFile(d), age)
	return d
}

// setAge sets a file's modification time age ago.
func setAge(t *testing.T, file string, age time.Duration) {
	t.Helper()
	when := time.Now().Add(-age)
	if err := os.Chtimes(file, when, when); err != nil {
		t.Fatal(err)
	}
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

// gcSetup is a data directory whose referenced blobs (two layers, one
// config) are two hours old, with an orphan of two hours and one of a
// minute.
func gcSetup(t *testing.T) (s stored, oldOrphan, youngOrphan digest.Digest) {
	t.Helper()
	s = newStored(t)
	for _, d := range []digest.Digest{s.baseLayer, s.phpLayer, s.config} {
		setAge(t, s.blobFile(d), 2*time.Hour)
	}
	oldOrphan = putBlob(t, s, "an orphan from a failed publish two hours ago", 2*time.Hour) // 45 bytes
	youngOrphan = putBlob(t, s, "a layer whose publish is still running", time.Minute)
	return s, oldOrphan, youngOrphan
}

func TestGCDryRunDeletesNothing(t *testing.T) {
	s, old, young := gcSetup(t)
	code, out, errOut := runSub(t, runGC, "--data", s.data, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"would delete " + string(old),
		"gc: would delete 1 unreferenced blobs, 45 bytes would be freed; kept 3 referenced blobs",
		"and 1 unreferenced blobs younger than 1h0m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, string(young)) {
		t.Errorf("dry run would delete the young blob:\n%s", out)
	}
	for _, d := range []digest.Digest{old, young, s.baseLayer, s.phpLayer, s.config} {
		if !exists(s.blobFile(d)) {
			t.Errorf("dry run deleted %s", d)
		}
	}
}

func TestGCDeletesOldOrphansOnly(t *testing.T) {
	s, old, young := gcSetup(t)
	code, out, errOut := runSub(t, runGC, "--data", s.data)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if want := "deleted " + string(old) + " (45 bytes)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, "gc: deleted 1 unreferenced blobs, 45 bytes freed") {
		t.Errorf("output lacks the summary:\n%s", out)
	}
	if exists(s.blobFile(old)) {
		t.Errorf("orphan %s older than the grace period was kept", old)
	}
	for _, d := range []digest.Digest{young, s.baseLayer, s.phpLayer, s.config} {
		if !exists(s.blobFile(d)) {
			t.Errorf("gc deleted %s", d)
		}
	}
	// What is left is intact and complete: the composed image (pinned by
	// digest) is still pullable.
	if code, out, _ := runSub(t, runVerify, "--data", s.data); code != 0 {
		t.Errorf("verify after gc: exit %d\n%s", code, out)
	}
	// A second run finds nothing more.
	if _, out, _ := runSub(t, runGC, "--data", s.data); !strings.Contains(out, "gc: deleted 0 unreferenced blobs") {
		t.Errorf("second gc:\n%s", out)
	}
}

func TestGCGrace(t *testing.T) {
	s, old, young := gcSetup(t)
	code, out, errOut := runSub(t, runGC, "--data", s.data, "--grace", "30s")
	if code != 0 || !strings.Contains(out, "gc: deleted 2 unreferenced blobs") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if exists(s.blobFile(old)) || exists(s.blobFile(young)) {
		t.Error("orphans older than 30s were kept")
	}
	if code, _, errOut := runSub(t, runGC, "--data", s.data, "--grace", "-1s"); code != 2 {
		t.Errorf("negative grace: exit %d, %s", code, errOut)
	}
}

// TestGCKeepsWhatDocumentsReference: a config referenced only by a stored
// manifest (no release names it) is kept; so is a layer that only a
// stored manifest references after its release was replaced.
func TestGCKeepsWhatDocumentsReference(t *testing.T) {
	s, _, _ := gcSetup(t)
	// Replace php's layer by another (--force): the old layer is now
	// referenced only by the stored manifest of env@<index>.
	root := filepath.Join(t.TempDir(), "php")
	if err := os.MkdirAll(filepath.Join(root, "usr/local/php/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/php/bin/php"), []byte("rebuilt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "publish", "--data", s.data, "--name", "php", "--version", "8.2.36",
		"--platform", "linux/amd64", "--from-dir", root, "--force"); code != 0 {
		t.Fatalf("publish --force: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runSub(t, runGC, "--data", s.data, "--grace", "0"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, d := range []digest.Digest{s.phpLayer, s.config, s.baseLayer} {
		if !exists(s.blobFile(d)) {
			t.Errorf("gc deleted %s, which a stored manifest references", d)
		}
	}
	if code, out, _ := runSub(t, runVerify, "--data", s.data); code != 0 {
		t.Errorf("verify after gc: exit %d\n%s", code, out)
	}
}

// TestGCRefusesCorruptDocuments: gc cannot know what an unreadable
// document references, so it deletes nothing.
func TestGCRefusesCorruptDocuments(t *testing.T) {
	s, old, _ := gcSetup(t)
	corrupt(t, filepath.Join(s.data, "documents", "sha256", s.manifest.Encoded()))
	code, _, errOut := runSub(t, runGC, "--data", s.data)
	if code != 1 || !strings.Contains(errOut, "nothing deleted") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if !exists(s.blobFile(old)) {
		t.Error("gc deleted a blob although it could not read every document")
	}
}

// bareBlobs and bareCatalog are backends without the optional
// enumeration capabilities.
type bareBlobs struct{ layerstore.Store }

type bareCatalog struct{ catalog.Store }

func TestGCUnsupportedBackends(t *testing.T) {
	st := &storage{data: t.TempDir(), blobs: "s3://bucket/prefix?endpoint=http://127.0.0.1:1"}
	fsBlobs, err := blobfs.New(filepath.Join(st.data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	b := &backends{blobs: bareBlobs{fsBlobs}}
	if _, _, err := walkers(st, b); err == nil || !strings.Contains(err.Error(), "cannot list its blobs") || !strings.Contains(err.Error(), "s3://bucket/prefix") {
		t.Errorf("blob store without Walk: %v", err)
	}
	b.blobs = fsBlobs
	b.catalog = bareCatalog{}
	if _, _, err := walkers(st, b); err == nil || !strings.Contains(err.Error(), "cannot list its stored manifests") {
		t.Errorf("catalog without WalkDocuments: %v", err)
	}
	// A blob store that cannot tell ages needs --grace 0 (layerstore/fs
	// and s3 both can: one without ModTime is hidden behind bareBlobs).
	b.blobs = bareBlobs{fsBlobs}
	if _, err := blobAges(st, b, time.Hour); err == nil || !strings.Contains(err.Error(), "--grace 0") {
		t.Errorf("blob ages: %v", err)
	}
	if a, err := blobAges(st, b, 0); a != nil || err != nil {
		t.Errorf("blob ages with no grace period: %v, %v", a, err)
	}
}

// pushedManifest stores a pushed image manifest whose config is blob
// config (of size n) in repo, as the registry's manifest PUT does, and
// returns its digest.
func pushedManifest(t *testing.T, cat *fsstore.Store, repo string, config digest.Digest, n int, tag string) digest.Digest {
	t.Helper()
	data := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, config, n))
	d := digest.FromBytes(data)
	if err := cat.PutDocument(t.Context(), catalog.Document{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: d, Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := cat.LinkBlob(t.Context(), repo, config); err != nil {
		t.Fatal(err)
	}
	var tags []string
	if tag != "" {
		tags = append(tags, tag)
	}
	if err := cat.PutManifest(t.Context(), repo, catalog.ManifestRecord{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(data))}, tags...); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGCPushedContent: as in distribution's gc, a pushed blob stays while
// a manifest some repository holds names it; a blob only linked (its
// manifest never came, or was deleted) goes after the grace period and is
// unlinked; a deleted manifest's document goes after the grace period, and
// with it its claim on blobs.
func TestGCPushedContent(t *testing.T) {
	s, _, _ := gcSetup(t)
	held := putBlob(t, s, "config of a manifest team/app holds", 2*time.Hour)
	linkedOnly := putBlob(t, s, "uploaded two hours ago, no manifest came", 2*time.Hour)
	uploading := putBlob(t, s, "uploaded a minute ago, its manifest is coming", time.Minute)
	deletedCfg := putBlob(t, s, "config of a manifest deleted from team/app", 2*time.Hour)
	youngCfg := putBlob(t, s, "config of a manifest deleted a minute after its push", 2*time.Hour)

	cat, err := fsstore.Open(s.data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pushedManifest(t, cat, "team/app", held, len("config of a manifest team/app holds"), "v1")
	for _, d := range []digest.Digest{linkedOnly, uploading} {
		if err := cat.LinkBlob(ctx, "team/app", d); err != nil {
			t.Fatal(err)
		}
	}
	gone := pushedManifest(t, cat, "team/app", deletedCfg, len("config of a manifest deleted from team/app"), "")
	young := pushedManifest(t, cat, "team/app", youngCfg, len("config of a manifest deleted a minute after its push"), "")
	for _, d := range []digest.Digest{gone, young} {
		if err := cat.DeleteManifest(ctx, "team/app", d); err != nil {
			t.Fatal(err)
		}
	}
	setAge(t, filepath.Join(s.data, "documents", "sha256", gone.Encoded()), 2*time.Hour)

	code, out, errOut := runSub(t, runGC, "--data", s.data)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"deleted manifest " + gone.String() + " (no repository holds it)",
		"gc: deleted 1 manifests no repository holds any more; kept 1",
		"deleted " + string(linkedOnly),
		"deleted " + string(deletedCfg),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, d := range []digest.Digest{held, uploading, youngCfg, s.baseLayer, s.phpLayer, s.config} {
		if !exists(s.blobFile(d)) {
			t.Errorf("gc deleted %s", d)
		}
	}
	for _, d := range []digest.Digest{linkedOnly, deletedCfg} {
		if exists(s.blobFile(d)) {
			t.Errorf("gc kept %s", d)
		}
	}
	if linked, _ := cat.BlobLinked(ctx, "team/app", linkedOnly); linked {
		t.Error("a deleted blob is still linked to team/app")
	}
	if _, err := cat.Document(ctx, gone); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the deleted manifest's document: %v", err)
	}
	if _, err := cat.Document(ctx, young); err != nil {
		t.Errorf("a young orphaned document was deleted: %v", err)
	}
	cat.Close()
	if code, out, _ := runSub(t, runVerify, "--data", s.data); code != 0 {
		t.Errorf("verify after gc: exit %d\n%s", code, out)
	}
}
