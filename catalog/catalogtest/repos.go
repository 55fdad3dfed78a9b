package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
)

// The contract of catalog.Repositories, beyond its interface docs:
//   - Manifests and Blobs of a repository that does not exist, and
//     Referrers when there are none, are empty non-nil slices, not
//     ErrNotFound; BlobLinked there is false; Tags is ErrNotFound until
//     the repository holds a manifest or a blob, and again once it holds
//     neither (an empty non-nil slice while it holds only untagged
//     manifests or blobs);
//   - every delete of something missing (tag, manifest, blob, in an
//     existing repository or not) is ErrNotFound;
//   - invalid names, tags and digests are errors that are not ErrNotFound,
//     and a refused call changes nothing;
//   - PutManifest of a digest the repository holds keeps the stored record
//     and only points the tags; it never lists a referrer twice;
//   - deleting a manifest keeps the manifests that refer to it (and so
//     Referrers of its digest), and its document;
//   - "a" and "a/b" are two independent repositories;
//   - repository changes are not catalog changes: the generation stays;
//   - a change is visible through another handle on the same storage as
//     soon as the call returns (no polling).

// RunRepositories runs the catalog.Repositories contract on fresh, empty
// stores from newStore (which registers their cleanup with t). Run runs it
// as the subtest "Repositories".
func RunRepositories(t *testing.T, newStore func(t *testing.T) catalog.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"Empty", testReposEmpty},
		{"InvalidNames", testReposInvalidNames},
		{"InvalidTags", testReposInvalidTags},
		{"InvalidDigests", testReposInvalidDigests},
		{"InvalidRecords", testReposInvalidRecords},
		{"RoundTrip", testReposRoundTrip},
		{"PutAgain", testReposPutAgain},
		{"Retag", testReposRetag},
		{"TagsSorted", testReposTagsSorted},
		{"TagsExistence", testReposTagsExistence},
		{"ManifestsSorted", testReposManifestsSorted},
		{"DeleteTag", testReposDeleteTag},
		{"DeleteManifest", testReposDeleteManifest},
		{"Referrers", testReposReferrers},
		{"Blobs", testReposBlobs},
		{"RepositoryNames", testReposNames},
		{"Isolation", testReposIsolation},
		{"Generation", testReposGeneration},
		{"CancelledContext", testReposCancelledContext},
		{"Concurrent", testReposConcurrent},
		{"ConcurrentDeletes", testReposConcurrentDeletes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// RunSharedRepositories runs the repository tests of two handles on the
// same storage; see RunShared, which runs it as the subtest "Repositories".
func RunSharedRepositories(t *testing.T, newPair func(t *testing.T) (a, b catalog.Store)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b catalog.Store)
	}{
		{"PutManifestVisible", testSharedReposPut},
		{"DeleteTagVisible", testSharedReposDeleteTag},
		{"DeleteManifestVisible", testSharedReposDeleteManifest},
		{"BlobsVisible", testSharedReposBlobs},
		{"ConcurrentPuts", testSharedReposConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			tc.fn(t, a, b)
		})
	}
}

// Manifest returns a manifest document of seed (an image manifest, or with
// a subject, an artifact manifest that refers to subject) whose digest uses
// alg, and its record.
func Manifest(alg digest.Algorithm, seed string, subject digest.Digest) (catalog.Document, catalog.ManifestRecord) {
	m := catalog.ManifestRecord{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ocispec.MediaTypeImageConfig,
		Annotations:  map[string]string{"org.example.seed": seed},
		Subject:      subject,
	}
	config := ocispec.MediaTypeImageConfig
	subj := ""
	if subject != "" {
		m.ArtifactType = "application/vnd.example." + strings.ReplaceAll(seed, " ", "-")
		config = ocispec.MediaTypeEmptyJSON
		subj = fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":1}`, ocispec.MediaTypeImageManifest, subject)
	}
	data := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":{"mediaType":%q,"digest":%q,"size":2},"layers":[],"annotations":{"org.example.seed":%q}%s}`,
		m.MediaType, m.ArtifactType, config, digest.FromString("{}"), seed, subj)
	m.Digest = alg.FromString(data)
	m.Size = int64(len(data))
	return catalog.Document{MediaType: m.MediaType, Digest: m.Digest, Data: []byte(data)}, m
}

// newManifest stores the document of Manifest(digest.SHA256, seed, subject)
// in s and returns its record.
func newManifest(t *testing.T, s catalog.Documents, seed string, subject digest.Digest) catalog.ManifestRecord {
	t.Helper()
	return newManifestAlg(t, s, digest.SHA256, seed, subject)
}

func newManifestAlg(t *testing.T, s catalog.Documents, alg digest.Algorithm, seed string, subject digest.Digest) catalog.ManifestRecord {
	t.Helper()
	doc, m := Manifest(alg, seed, subject)
	if err := s.PutDocument(t.Context(), doc); err != nil {
		t.Fatalf("PutDocument(%s): %v", m.Digest, err)
	}
	return m
}

// blobDigest returns a blob digest derived from seed.
func blobDigest(seed string) digest.Digest { return digest.FromString("blob " + seed) }

func putManifest(t *testing.T, s catalog.Repositories, repo string, m catalog.ManifestRecord, tags ...string) {
	t.Helper()
	if err := s.PutManifest(t.Context(), repo, m, tags...); err != nil {
		t.Fatalf("PutManifest(%s, %s, %q): %v", repo, m.Digest, tags, err)
	}
}

func linkBlob(t *testing.T, s catalog.Repositories, repo string, d digest.Digest) {
	t.Helper()
	if err := s.LinkBlob(t.Context(), repo, d); err != nil {
		t.Fatalf("LinkBlob(%s, %s): %v", repo, d, err)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantNotFound asserts that err wraps catalog.ErrNotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("%s: error = %v, want ErrNotFound", what, err)
	}
}

// wantInvalid asserts that err is an error but not ErrNotFound.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("%s: error = %v, want an invalid-argument error", what, err)
	}
}

func checkManifest(t *testing.T, s catalog.Repositories, repo string, want catalog.ManifestRecord) {
	t.Helper()
	got, err := s.Manifest(t.Context(), repo, want.Digest)
	if err != nil {
		t.Errorf("Manifest(%s, %s): %v", repo, want.Digest, err)
		return
	}
	if g, w := asJSON(t, got), asJSON(t, want); g != w {
		t.Errorf("Manifest(%s, %s):\n got %s\nwant %s", repo, want.Digest, g, w)
	}
}

func checkNoManifest(t *testing.T, s catalog.Repositories, repo string, d digest.Digest) {
	t.Helper()
	_, err := s.Manifest(t.Context(), repo, d)
	wantNotFound(t, fmt.Sprintf("Manifest(%s, %s)", repo, d), err)
}

func checkTag(t *testing.T, s catalog.Repositories, repo, tag string, want digest.Digest) {
	t.Helper()
	got, err := s.Tag(t.Context(), repo, tag)
	if err != nil {
		t.Errorf("Tag(%s, %s): %v, want %s", repo, tag, err, want)
	} else if got != want {
		t.Errorf("Tag(%s, %s) = %s, want %s", repo, tag, got, want)
	}
}

func checkNoTag(t *testing.T, s catalog.Repositories, repo, tag string) {
	t.Helper()
	d, err := s.Tag(t.Context(), repo, tag)
	wantNotFound(t, fmt.Sprintf("Tag(%s, %s) (= %q)", repo, tag, d), err)
}

// checkTags asserts that repo exists and has exactly want, in that order.
func checkTags(t *testing.T, s catalog.Repositories, repo string, want ...string) {
	t.Helper()
	got, err := s.Tags(t.Context(), repo)
	if err != nil {
		t.Errorf("Tags(%s): %v, want %q", repo, err, want)
		return
	}
	if got == nil {
		t.Errorf("Tags(%s) = nil, want a non-nil slice", repo)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Tags(%s) = %q, want %q", repo, got, want)
	}
}

// checkNoRepo asserts that repo does not exist: Tags is ErrNotFound, it
// is not listed, and it holds nothing.
func checkNoRepo(t *testing.T, s catalog.Repositories, repo string) {
	t.Helper()
	tags, err := s.Tags(t.Context(), repo)
	wantNotFound(t, fmt.Sprintf("Tags(%s) (= %q)", repo, tags), err)
	names, err := s.RepositoryNames(t.Context())
	ok(t, "RepositoryNames", err)
	if slices.Contains(names, repo) {
		t.Errorf("RepositoryNames() = %q lists %s, which holds nothing", names, repo)
	}
	checkManifests(t, s, repo)
	checkBlobs(t, s, repo)
}

func recordsJSON(t *testing.T, rs []catalog.ManifestRecord) string {
	t.Helper()
	if rs == nil {
		return "null"
	}
	return asJSON(t, rs)
}

// checkManifests asserts that Manifests(repo) is exactly want, in order
// (an empty non-nil slice for none).
func checkManifests(t *testing.T, s catalog.Repositories, repo string, want ...catalog.ManifestRecord) {
	t.Helper()
	got, err := s.Manifests(t.Context(), repo)
	if err != nil {
		t.Errorf("Manifests(%s): %v", repo, err)
		return
	}
	if want == nil {
		want = []catalog.ManifestRecord{}
	}
	if g, w := recordsJSON(t, got), recordsJSON(t, want); g != w {
		t.Errorf("Manifests(%s):\n got %s\nwant %s", repo, g, w)
	}
}

// checkReferrers asserts that Referrers(repo, subject) is exactly want, in
// order (an empty non-nil slice for none).
func checkReferrers(t *testing.T, s catalog.Repositories, repo string, subject digest.Digest, want ...catalog.ManifestRecord) {
	t.Helper()
	got, err := s.Referrers(t.Context(), repo, subject)
	if err != nil {
		t.Errorf("Referrers(%s, %s): %v", repo, subject, err)
		return
	}
	if want == nil {
		want = []catalog.ManifestRecord{}
	}
	if g, w := recordsJSON(t, got), recordsJSON(t, want); g != w {
		t.Errorf("Referrers(%s, %s):\n got %s\nwant %s", repo, subject, g, w)
	}
}

// checkBlobs asserts that Blobs(repo) is exactly want, in order.
func checkBlobs(t *testing.T, s catalog.Repositories, repo string, want ...digest.Digest) {
	t.Helper()
	got, err := s.Blobs(t.Context(), repo)
	if err != nil {
		t.Errorf("Blobs(%s): %v", repo, err)
		return
	}
	if got == nil {
		t.Errorf("Blobs(%s) = nil, want a non-nil slice", repo)
	}
	if want == nil {
		want = []digest.Digest{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Blobs(%s) = %q, want %q", repo, got, want)
	}
}

func checkLinked(t *testing.T, s catalog.Repositories, repo string, d digest.Digest, want bool) {
	t.Helper()
	got, err := s.BlobLinked(t.Context(), repo, d)
	if err != nil {
		t.Errorf("BlobLinked(%s, %s): %v", repo, d, err)
	} else if got != want {
		t.Errorf("BlobLinked(%s, %s) = %v, want %v", repo, d, got, want)
	}
}

// checkNames asserts that RepositoryNames is exactly want.
func checkNames(t *testing.T, s catalog.Repositories, want ...string) {
	t.Helper()
	got, err := s.RepositoryNames(t.Context())
	if err != nil {
		t.Errorf("RepositoryNames: %v", err)
		return
	}
	if got == nil {
		t.Error("RepositoryNames() = nil, want a non-nil slice")
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("RepositoryNames() = %q, want %q", got, want)
	}
}

// sortedByDigest returns rs sorted by digest (string order).
func sortedByDigest(rs ...catalog.ManifestRecord) []catalog.ManifestRecord {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b catalog.ManifestRecord) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return rs
}

func testReposEmpty(t *testing.T, s catalog.Store) {
	checkNames(t, s)
	checkNoRepo(t, s, "library/php")
	checkNoTag(t, s, "library/php", "latest")
	checkNoManifest(t, s, "library/php", digest.FromString("x"))
	checkLinked(t, s, "library/php", blobDigest("x"), false)
	checkReferrers(t, s, "library/php", digest.FromString("x"))
}

var (
	invalidRepositories = []string{
		"", "../x", "A", "Library/php", "a//b", "/a", "a/", "a:b", "a b", "-a", "a-", "a/../b", ".", "a/./b",
		"a\x00b", strings.Repeat("a", catalog.MaxRepositoryNameLength+1),
	}
	invalidTags = []string{
		"", ".x", "-x", "a/b", "a:b", "a b", "../x", "ä", strings.Repeat("t", 129),
	}
	invalidDigests = []digest.Digest{
		"", "sha256:zz", "sha256", "sha256:" + digest.Digest(strings.Repeat("A", 64)), "sha256:../../etc/passwd",
		"md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + digest.Digest(strings.Repeat("a", 63)),
		digest.Digest(strings.Repeat("a", 64)),
	}
)

// testReposInvalidNames: every method refuses an invalid repository name,
// with an error that is not ErrNotFound, and stores nothing.
func testReposInvalidNames(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	m := newManifest(t, s, "valid", "")
	b := blobDigest("valid")
	for _, repo := range invalidRepositories {
		t.Run(fmt.Sprintf("%q", repo), func(t *testing.T) {
			wantInvalid(t, "PutManifest", s.PutManifest(ctx, repo, m, "latest"))
			_, err := s.Manifest(ctx, repo, m.Digest)
			wantInvalid(t, "Manifest", err)
			_, err = s.Tag(ctx, repo, "latest")
			wantInvalid(t, "Tag", err)
			_, err = s.Tags(ctx, repo)
			wantInvalid(t, "Tags", err)
			_, err = s.Manifests(ctx, repo)
			wantInvalid(t, "Manifests", err)
			wantInvalid(t, "DeleteTag", s.DeleteTag(ctx, repo, "latest"))
			wantInvalid(t, "DeleteManifest", s.DeleteManifest(ctx, repo, m.Digest))
			_, err = s.Referrers(ctx, repo, m.Digest)
			wantInvalid(t, "Referrers", err)
			wantInvalid(t, "LinkBlob", s.LinkBlob(ctx, repo, b))
			_, err = s.BlobLinked(ctx, repo, b)
			wantInvalid(t, "BlobLinked", err)
			wantInvalid(t, "UnlinkBlob", s.UnlinkBlob(ctx, repo, b))
			_, err = s.Blobs(ctx, repo)
			wantInvalid(t, "Blobs", err)
		})
	}
	checkNames(t, s)

	// The longest valid name is fine, and so are the separators.
	long := strings.Repeat("a", 100) + "/" + strings.Repeat("b", 100) + "/" + strings.Repeat("c", catalog.MaxRepositoryNameLength-202)
	for _, repo := range []string{long, "a.b_c__d--e/f-g"} {
		linkBlob(t, s, repo, b)
		checkLinked(t, s, repo, b, true)
	}
	want := []string{long, "a.b_c__d--e/f-g"}
	slices.Sort(want)
	checkNames(t, s, want...)
}

// testReposInvalidTags: invalid tags are refused; a PutManifest with one
// invalid tag among valid ones stores nothing at all.
func testReposInvalidTags(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	m := newManifest(t, s, "valid", "")
	for _, tag := range invalidTags {
		t.Run(fmt.Sprintf("%q", tag), func(t *testing.T) {
			wantInvalid(t, "PutManifest", s.PutManifest(ctx, "library/php", m, "latest", tag))
			_, err := s.Tag(ctx, "library/php", tag)
			wantInvalid(t, "Tag", err)
			wantInvalid(t, "DeleteTag", s.DeleteTag(ctx, "library/php", tag))
		})
	}
	checkNoManifest(t, s, "library/php", m.Digest)
	checkNoTag(t, s, "library/php", "latest")
	checkNoRepo(t, s, "library/php")
	checkNames(t, s)

	// Valid extremes.
	long := "_" + strings.Repeat("x", 127)
	putManifest(t, s, "library/php", m, long, "A.b-c_d")
	checkTags(t, s, "library/php", "A.b-c_d", long)
}

// testReposInvalidDigests: invalid digests are refused everywhere.
func testReposInvalidDigests(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	const repo = "library/php"
	linkBlob(t, s, repo, blobDigest("a")) // the repository exists
	valid := newManifest(t, s, "valid", "")
	for _, d := range invalidDigests {
		t.Run(fmt.Sprintf("%q", d), func(t *testing.T) {
			m := valid
			m.Digest = d
			wantInvalid(t, "PutManifest with that digest", s.PutManifest(ctx, repo, m, "latest"))
			m = valid
			m.Subject = d
			if d != "" { // "" is no subject
				wantInvalid(t, "PutManifest with that subject", s.PutManifest(ctx, repo, m, "latest"))
			}
			_, err := s.Manifest(ctx, repo, d)
			wantInvalid(t, "Manifest", err)
			wantInvalid(t, "DeleteManifest", s.DeleteManifest(ctx, repo, d))
			_, err = s.Referrers(ctx, repo, d)
			wantInvalid(t, "Referrers", err)
			wantInvalid(t, "LinkBlob", s.LinkBlob(ctx, repo, d))
			_, err = s.BlobLinked(ctx, repo, d)
			wantInvalid(t, "BlobLinked", err)
			wantInvalid(t, "UnlinkBlob", s.UnlinkBlob(ctx, repo, d))
		})
	}
	checkManifests(t, s, repo)
	checkTags(t, s, repo)
	checkBlobs(t, s, repo, blobDigest("a"))
	checkNames(t, s, repo)
}

// testReposInvalidRecords: records that do not validate are refused.
func testReposInvalidRecords(t *testing.T, s catalog.Store) {
	valid := newManifest(t, s, "valid", "")
	for _, tc := range []struct {
		name   string
		modify func(m *catalog.ManifestRecord)
	}{
		{"no media type", func(m *catalog.ManifestRecord) { m.MediaType = "" }},
		{"negative size", func(m *catalog.ManifestRecord) { m.Size = -1 }},
		{"no digest", func(m *catalog.ManifestRecord) { m.Digest = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid
			tc.modify(&m)
			wantInvalid(t, "PutManifest", s.PutManifest(t.Context(), "library/php", m, "latest"))
		})
	}
	checkNoManifest(t, s, "library/php", valid.Digest)
	checkNoRepo(t, s, "library/php")
}

func testReposRoundTrip(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	m := newManifest(t, s, "php 8.2", "")
	putManifest(t, s, repo, m, "8.2", "latest")

	checkManifest(t, s, repo, m)
	checkTag(t, s, repo, "8.2", m.Digest)
	checkTag(t, s, repo, "latest", m.Digest)
	checkTags(t, s, repo, "8.2", "latest")
	checkManifests(t, s, repo, m)
	checkNames(t, s, repo)
	checkNoTag(t, s, repo, "8.3")
	checkNoManifest(t, s, repo, digest.FromString("another"))
	checkNoManifest(t, s, "library/node", m.Digest)
	checkNoTag(t, s, "library/node", "latest")
	checkBlobs(t, s, repo) // a manifest is not a blob
	checkLinked(t, s, repo, m.Digest, false)

	// A record without the optional fields.
	bare := catalog.ManifestRecord{Digest: digest.FromString("bare index"), MediaType: ocispec.MediaTypeImageIndex, Size: 0}
	putManifest(t, s, repo, bare) // no tags
	checkManifest(t, s, repo, bare)
	checkTags(t, s, repo, "8.2", "latest")
	checkManifests(t, s, repo, sortedByDigest(m, bare)...)
}

// testReposPutAgain: PutManifest of a digest held already updates nothing
// but the tags.
func testReposPutAgain(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	m := newManifest(t, s, "php", "")
	putManifest(t, s, repo, m, "a")
	again := m
	again.Annotations = map[string]string{"other": "annotations"}
	again.ArtifactType = "application/vnd.example.other"
	putManifest(t, s, repo, again, "b", "a")
	checkManifest(t, s, repo, m)
	checkManifests(t, s, repo, m)
	checkTags(t, s, repo, "a", "b")
	checkTag(t, s, repo, "b", m.Digest)
	putManifest(t, s, repo, m) // no tags: nothing changes
	checkTags(t, s, repo, "a", "b")
	checkManifests(t, s, repo, m)
}

// testReposRetag: pointing a tag at another manifest moves it; the
// manifest it pointed at stays.
func testReposRetag(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	m1 := newManifest(t, s, "php 1", "")
	m2 := newManifest(t, s, "php 2", "")
	putManifest(t, s, repo, m1, "latest", "1")
	putManifest(t, s, repo, m2, "latest", "2")
	checkTag(t, s, repo, "latest", m2.Digest)
	checkTag(t, s, repo, "1", m1.Digest)
	checkTag(t, s, repo, "2", m2.Digest)
	checkTags(t, s, repo, "1", "2", "latest")
	checkManifests(t, s, repo, sortedByDigest(m1, m2)...)

	putManifest(t, s, repo, m1, "latest", "2") // back, and another tag moves too
	checkTag(t, s, repo, "latest", m1.Digest)
	checkTag(t, s, repo, "2", m1.Digest)
	checkTags(t, s, repo, "1", "2", "latest")
	checkManifests(t, s, repo, sortedByDigest(m1, m2)...)

	// m2 now has no tag; deleting it removes no tag.
	ok(t, "DeleteManifest", s.DeleteManifest(t.Context(), repo, m2.Digest))
	checkTags(t, s, repo, "1", "2", "latest")
	checkManifests(t, s, repo, m1)
}

func testReposTagsSorted(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	m1 := newManifest(t, s, "php 1", "")
	m2 := newManifest(t, s, "php 2", "")
	putManifest(t, s, repo, m1, "b", "a.b", "Z", "1.0")
	putManifest(t, s, repo, m2, "_x", "a-b", "a", "A", "10", "9")
	// Byte order: digits < upper case < '_' < lower case; '-' < '.'; a
	// prefix first. Not natural or case-insensitive order.
	checkTags(t, s, repo, "1.0", "10", "9", "A", "Z", "_x", "a", "a-b", "a.b", "b")
}

// testReposTagsExistence: Tags is ErrNotFound for a repository that holds
// nothing, an empty slice for one that holds only blobs or untagged
// manifests.
func testReposTagsExistence(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	checkNoRepo(t, s, repo)
	b := blobDigest("config")
	linkBlob(t, s, repo, b)
	checkTags(t, s, repo)
	ok(t, "UnlinkBlob", s.UnlinkBlob(t.Context(), repo, b))
	checkNoRepo(t, s, repo)

	m := newManifest(t, s, "untagged", "")
	putManifest(t, s, repo, m)
	checkTags(t, s, repo)
	ok(t, "DeleteManifest", s.DeleteManifest(t.Context(), repo, m.Digest))
	checkNoRepo(t, s, repo)

	putManifest(t, s, repo, m, "latest")
	ok(t, "DeleteTag", s.DeleteTag(t.Context(), repo, "latest"))
	checkTags(t, s, repo) // the manifest is still there
	checkNames(t, s, repo)
}

func testReposManifestsSorted(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	var all []catalog.ManifestRecord
	for i := range 6 {
		alg := digest.SHA256
		if i%3 == 2 {
			alg = digest.SHA512
		}
		all = append(all, newManifestAlg(t, s, alg, fmt.Sprintf("php %d", i), ""))
	}
	want := sortedByDigest(all...)
	if want[len(want)-1].Digest.Algorithm() != digest.SHA512 {
		t.Fatal("test data: sha512 digests should sort last")
	}
	for i := len(want) - 1; i >= 0; i-- { // reverse order
		putManifest(t, s, repo, want[i], fmt.Sprintf("t%d", i))
	}
	checkManifests(t, s, repo, want...)
	for i, m := range want {
		checkManifest(t, s, repo, m)
		checkTag(t, s, repo, fmt.Sprintf("t%d", i), m.Digest)
	}
	checkManifests(t, s, "library/unknown")
}

func testReposDeleteTag(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	const repo = "library/php"
	m := newManifest(t, s, "php", "")
	putManifest(t, s, repo, m, "a", "b")
	ok(t, "DeleteTag(a)", s.DeleteTag(ctx, repo, "a"))
	checkNoTag(t, s, repo, "a")
	checkTag(t, s, repo, "b", m.Digest)
	checkTags(t, s, repo, "b")
	checkManifest(t, s, repo, m)
	wantNotFound(t, "DeleteTag of a deleted tag", s.DeleteTag(ctx, repo, "a"))
	wantNotFound(t, "DeleteTag of an unknown tag", s.DeleteTag(ctx, repo, "c"))
	wantNotFound(t, "DeleteTag in an unknown repository", s.DeleteTag(ctx, "library/node", "b"))
	ok(t, "DeleteTag(b)", s.DeleteTag(ctx, repo, "b"))
	checkTags(t, s, repo)
	checkManifests(t, s, repo, m)
	checkNames(t, s, repo)

	// The tag can be set again.
	putManifest(t, s, repo, m, "a")
	checkTag(t, s, repo, "a", m.Digest)
}

func testReposDeleteManifest(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	const repo = "library/php"
	m1 := newManifest(t, s, "php 1", "")
	m2 := newManifest(t, s, "php 2", "")
	sig := newManifest(t, s, "signature of 1", m1.Digest)
	sbom := newManifest(t, s, "sbom of 2", m2.Digest)
	putManifest(t, s, repo, m1, "latest", "1")
	putManifest(t, s, repo, m2, "2")
	putManifest(t, s, repo, sig, "sha256-sig")
	putManifest(t, s, repo, sbom)
	linkBlob(t, s, repo, blobDigest("layer"))

	ok(t, "DeleteManifest(m1)", s.DeleteManifest(ctx, repo, m1.Digest))
	checkNoManifest(t, s, repo, m1.Digest)
	checkNoTag(t, s, repo, "latest")
	checkNoTag(t, s, repo, "1")
	checkTags(t, s, repo, "2", "sha256-sig")
	checkManifests(t, s, repo, sortedByDigest(m2, sig, sbom)...)
	// The manifests that refer to m1 stay, and so Referrers lists them.
	checkReferrers(t, s, repo, m1.Digest, sig)
	// The document stays.
	if doc, err := s.Document(ctx, m1.Digest); err != nil || doc.Digest != m1.Digest {
		t.Errorf("Document(%s) after DeleteManifest: %v, %v", m1.Digest, doc.Digest, err)
	}
	wantNotFound(t, "DeleteManifest of a deleted manifest", s.DeleteManifest(ctx, repo, m1.Digest))
	wantNotFound(t, "DeleteManifest of an unknown manifest", s.DeleteManifest(ctx, repo, digest.FromString("unknown")))
	wantNotFound(t, "DeleteManifest in an unknown repository", s.DeleteManifest(ctx, "library/node", m2.Digest))
	wantNotFound(t, "DeleteManifest of a blob", s.DeleteManifest(ctx, repo, blobDigest("layer")))

	// A referrer's deletion removes its referrers entry.
	ok(t, "DeleteManifest(sbom)", s.DeleteManifest(ctx, repo, sbom.Digest))
	checkReferrers(t, s, repo, m2.Digest)
	checkManifest(t, s, repo, m2)
	checkTag(t, s, repo, "2", m2.Digest)
	ok(t, "DeleteManifest(sig)", s.DeleteManifest(ctx, repo, sig.Digest))
	checkReferrers(t, s, repo, m1.Digest)
	checkTags(t, s, repo, "2")

	// Put back: all is as new, including the referrers entry.
	putManifest(t, s, repo, sbom, "sbom")
	checkReferrers(t, s, repo, m2.Digest, sbom)
	checkTag(t, s, repo, "sbom", sbom.Digest)

	ok(t, "DeleteManifest(m2)", s.DeleteManifest(ctx, repo, m2.Digest))
	ok(t, "DeleteManifest(sbom)", s.DeleteManifest(ctx, repo, sbom.Digest))
	checkManifests(t, s, repo)
	checkTags(t, s, repo) // the blob keeps the repository
	checkNames(t, s, repo)
	ok(t, "UnlinkBlob", s.UnlinkBlob(ctx, repo, blobDigest("layer")))
	checkNoRepo(t, s, repo)
	checkNames(t, s)
}

func testReposReferrers(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	subject := newManifest(t, s, "php", "")
	other := newManifest(t, s, "other", "")
	absent := digest.FromString("a subject that was never pushed")
	putManifest(t, s, repo, subject, "latest")
	putManifest(t, s, repo, other)
	r1 := newManifest(t, s, "signature", subject.Digest)
	r2 := newManifest(t, s, "sbom", subject.Digest)
	r3 := newManifestAlg(t, s, digest.SHA512, "provenance", subject.Digest)
	r4 := newManifest(t, s, "dangling", absent)
	for _, r := range []catalog.ManifestRecord{r3, r1, r2, r4} {
		putManifest(t, s, repo, r)
	}
	putManifest(t, s, repo, r1, "sig") // again: still listed once

	checkReferrers(t, s, repo, subject.Digest, sortedByDigest(r1, r2, r3)...)
	checkReferrers(t, s, repo, absent, r4) // the subject need not exist
	checkReferrers(t, s, repo, other.Digest)
	checkReferrers(t, s, repo, r1.Digest)
	checkReferrers(t, s, "library/unknown", subject.Digest)
	checkReferrers(t, s, "library/node", subject.Digest)
	checkManifests(t, s, repo, sortedByDigest(subject, other, r1, r2, r3, r4)...)

	ok(t, "DeleteManifest(r2)", s.DeleteManifest(t.Context(), repo, r2.Digest))
	checkReferrers(t, s, repo, subject.Digest, sortedByDigest(r1, r3)...)
	ok(t, "DeleteManifest(r4)", s.DeleteManifest(t.Context(), repo, r4.Digest))
	checkReferrers(t, s, repo, absent)
}

func testReposBlobs(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	const repo = "library/php"
	b1, b2, b3 := blobDigest("1"), digest.SHA512.FromString("blob 2"), blobDigest("3")
	checkBlobs(t, s, repo)
	checkLinked(t, s, repo, b1, false)
	for _, b := range []digest.Digest{b2, b3, b1, b3} { // b3 twice: a no-op
		linkBlob(t, s, repo, b)
	}
	want := []digest.Digest{b1, b3}
	slices.Sort(want)
	want = append(want, b2) // sha512 after sha256
	checkBlobs(t, s, repo, want...)
	for _, b := range want {
		checkLinked(t, s, repo, b, true)
	}
	checkLinked(t, s, repo, blobDigest("4"), false)
	checkLinked(t, s, "library/node", b1, false)
	checkManifests(t, s, repo) // blobs are not manifests
	checkNames(t, s, repo)

	ok(t, "UnlinkBlob(b3)", s.UnlinkBlob(ctx, repo, b3))
	checkLinked(t, s, repo, b3, false)
	wantNotFound(t, "UnlinkBlob of an unlinked blob", s.UnlinkBlob(ctx, repo, b3))
	wantNotFound(t, "UnlinkBlob of an unknown blob", s.UnlinkBlob(ctx, repo, blobDigest("4")))
	wantNotFound(t, "UnlinkBlob in an unknown repository", s.UnlinkBlob(ctx, "library/node", b1))
	checkBlobs(t, s, repo, b1, b2)

	linkBlob(t, s, repo, b3) // again after unlinking
	checkLinked(t, s, repo, b3, true)
	for _, b := range []digest.Digest{b1, b2, b3} {
		ok(t, "UnlinkBlob", s.UnlinkBlob(ctx, repo, b))
	}
	checkBlobs(t, s, repo)
	checkNoRepo(t, s, repo)
}

func testReposNames(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	m := newManifest(t, s, "m", "")
	b := blobDigest("b")
	putManifest(t, s, "a", m, "latest")
	linkBlob(t, s, "a/b", b)
	linkBlob(t, s, "a/b/c", b)
	putManifest(t, s, "a-b", m)
	linkBlob(t, s, "b", b)
	putManifest(t, s, "b", m)
	// Byte order: '-' < '/', a prefix first.
	checkNames(t, s, "a", "a-b", "a/b", "a/b/c", "b")
	checkTags(t, s, "a", "latest") // a/b's content is not a's
	checkBlobs(t, s, "a")
	checkManifests(t, s, "a/b")
	checkTags(t, s, "a/b")

	// A parent goes, its nested repositories stay.
	ok(t, "DeleteManifest(a)", s.DeleteManifest(ctx, "a", m.Digest))
	checkNoRepo(t, s, "a")
	checkNames(t, s, "a-b", "a/b", "a/b/c", "b")
	checkLinked(t, s, "a/b", b, true)
	checkLinked(t, s, "a/b/c", b, true)

	// A middle one goes, the one below it stays.
	ok(t, "UnlinkBlob(a/b)", s.UnlinkBlob(ctx, "a/b", b))
	checkNoRepo(t, s, "a/b")
	checkNames(t, s, "a-b", "a/b/c", "b")
	checkLinked(t, s, "a/b/c", b, true)

	// And the parent comes back beside its nested repository.
	linkBlob(t, s, "a", b)
	checkNames(t, s, "a", "a-b", "a/b/c", "b")

	// A repository with a manifest and a blob goes when both are gone.
	ok(t, "DeleteManifest(b)", s.DeleteManifest(ctx, "b", m.Digest))
	checkNames(t, s, "a", "a-b", "a/b/c", "b")
	ok(t, "UnlinkBlob(b)", s.UnlinkBlob(ctx, "b", b))
	checkNames(t, s, "a", "a-b", "a/b/c")

	for _, repo := range []string{"a", "a/b/c"} {
		ok(t, "UnlinkBlob("+repo+")", s.UnlinkBlob(ctx, repo, b))
	}
	ok(t, "DeleteManifest(a-b)", s.DeleteManifest(ctx, "a-b", m.Digest))
	checkNames(t, s)
	for _, repo := range []string{"a", "a-b", "a/b", "a/b/c", "b"} {
		checkNoRepo(t, s, repo)
	}
}

func testReposIsolation(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	m := newManifest(t, s, "shared", "")
	ref := newManifest(t, s, "signature", m.Digest)
	b := blobDigest("layer")
	putManifest(t, s, "x", m, "latest")
	putManifest(t, s, "x", ref)
	linkBlob(t, s, "x", b)
	putManifest(t, s, "y", m, "stable")
	putManifest(t, s, "y", ref, "sig")

	checkTags(t, s, "x", "latest")
	checkTags(t, s, "y", "sig", "stable")
	checkNoTag(t, s, "x", "stable")
	checkNoTag(t, s, "y", "latest")
	checkLinked(t, s, "y", b, false)
	checkBlobs(t, s, "y")
	wantNotFound(t, "UnlinkBlob of x's blob in y", s.UnlinkBlob(ctx, "y", b))
	wantNotFound(t, "DeleteTag of x's tag in y", s.DeleteTag(ctx, "y", "latest"))
	checkTag(t, s, "x", "latest", m.Digest)

	// Deleting the manifest from x leaves y whole.
	ok(t, "DeleteManifest(x, m)", s.DeleteManifest(ctx, "x", m.Digest))
	ok(t, "DeleteManifest(x, ref)", s.DeleteManifest(ctx, "x", ref.Digest))
	checkManifests(t, s, "x")
	checkReferrers(t, s, "x", m.Digest)
	checkManifest(t, s, "y", m)
	checkTag(t, s, "y", "stable", m.Digest)
	checkTag(t, s, "y", "sig", ref.Digest)
	checkReferrers(t, s, "y", m.Digest, ref)
	checkLinked(t, s, "x", b, true)
	checkNames(t, s, "x", "y")

	// Nested names are separate repositories too.
	putManifest(t, s, "y/z", m, "nested")
	checkTags(t, s, "y", "sig", "stable")
	checkTags(t, s, "y/z", "nested")
	checkReferrers(t, s, "y/z", m.Digest)
	ok(t, "DeleteManifest(y, m)", s.DeleteManifest(ctx, "y", m.Digest))
	checkTag(t, s, "y/z", "nested", m.Digest)
	checkNames(t, s, "x", "y", "y/z")
}

// testReposGeneration: repository changes are not catalog changes.
func testReposGeneration(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	publish(t, s, Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{})
	before := Snapshot(t, s)
	g := before.Generation

	m := newManifest(t, s, "m", "")
	ref := newManifest(t, s, "ref", m.Digest)
	putManifest(t, s, "library/php", m, "latest", "8")
	putManifest(t, s, "library/php", ref)
	putManifest(t, s, "library/php", m, "8.2")
	linkBlob(t, s, "library/php", blobDigest("b"))
	ok(t, "DeleteTag", s.DeleteTag(ctx, "library/php", "8"))
	ok(t, "DeleteManifest", s.DeleteManifest(ctx, "library/php", ref.Digest))
	ok(t, "UnlinkBlob", s.UnlinkBlob(ctx, "library/php", blobDigest("b")))
	ok(t, "DeleteManifest", s.DeleteManifest(ctx, "library/php", m.Digest))

	after := Snapshot(t, s)
	if after.Generation != g {
		t.Errorf("generation moved from %d to %d by repository changes", g, after.Generation)
	}
	if names := after.Names(); !slices.Equal(names, []string{"php"}) {
		t.Errorf("packages = %q after repository changes, want [php]", names)
	}
	// And the generation keeps counting catalog changes from there.
	publish(t, s, Release("php", "8.3.0", "linux/amd64"), catalog.PublishOptions{})
	checkGeneration(t, s, g+1)
}

func testReposCancelledContext(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	m := newManifest(t, s, "m", "")
	m2 := newManifest(t, s, "m2", "")
	b := blobDigest("b")
	putManifest(t, s, repo, m, "latest")
	linkBlob(t, s, repo, b)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for what, err := range map[string]error{
		"PutManifest":    s.PutManifest(ctx, repo, m2, "latest", "new"),
		"PutManifest2":   s.PutManifest(ctx, "library/node", m2, "latest"),
		"DeleteTag":      s.DeleteTag(ctx, repo, "latest"),
		"DeleteManifest": s.DeleteManifest(ctx, repo, m.Digest),
		"LinkBlob":       s.LinkBlob(ctx, repo, blobDigest("c")),
		"UnlinkBlob":     s.UnlinkBlob(ctx, repo, b),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", what, err)
		}
	}
	// Reads fail too rather than answer.
	_, errManifest := s.Manifest(ctx, repo, m.Digest)
	_, errTag := s.Tag(ctx, repo, "latest")
	_, errTags := s.Tags(ctx, repo)
	_, errManifests := s.Manifests(ctx, repo)
	_, errReferrers := s.Referrers(ctx, repo, m.Digest)
	_, errLinked := s.BlobLinked(ctx, repo, b)
	_, errBlobs := s.Blobs(ctx, repo)
	_, errNames := s.RepositoryNames(ctx)
	for what, err := range map[string]error{
		"Manifest": errManifest, "Tag": errTag, "Tags": errTags, "Manifests": errManifests,
		"Referrers": errReferrers, "BlobLinked": errLinked, "Blobs": errBlobs, "RepositoryNames": errNames,
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", what, err)
		}
	}

	// Nothing changed.
	checkManifests(t, s, repo, m)
	checkTags(t, s, repo, "latest")
	checkTag(t, s, repo, "latest", m.Digest)
	checkBlobs(t, s, repo, b)
	checkNames(t, s, repo)
}

// testReposConcurrent: concurrent changes through one handle all land.
func testReposConcurrent(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	const n = 20
	records := make([]catalog.ManifestRecord, n)
	for i := range n {
		records[i] = newManifest(t, s, fmt.Sprintf("m%d", i), "")
	}
	subject := records[0].Digest
	refs := make([]catalog.ManifestRecord, n)
	for i := range n {
		refs[i] = newManifest(t, s, fmt.Sprintf("ref%d", i), subject)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4*n)
	for i := range n {
		wg.Go(func() { errs[i] = s.PutManifest(t.Context(), repo, records[i], fmt.Sprintf("t%02d", i), "latest") })
		wg.Go(func() { errs[n+i] = s.PutManifest(t.Context(), repo, refs[i]) })
		wg.Go(func() { errs[2*n+i] = s.LinkBlob(t.Context(), repo, blobDigest(strconv.Itoa(i))) })
		wg.Go(func() { errs[3*n+i] = s.LinkBlob(t.Context(), fmt.Sprintf("r%02d", i), blobDigest("x")) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("change #%d: %v", i, err)
		}
	}
	checkManifests(t, s, repo, sortedByDigest(append(slices.Clone(records), refs...)...)...)
	checkReferrers(t, s, repo, subject, sortedByDigest(refs...)...)
	var tags []string
	for i := range n {
		tags = append(tags, fmt.Sprintf("t%02d", i))
	}
	checkTags(t, s, repo, append([]string{"latest"}, tags...)...)
	latest, err := s.Tag(t.Context(), repo, "latest")
	ok(t, "Tag(latest)", err)
	if !slices.ContainsFunc(records, func(m catalog.ManifestRecord) bool { return m.Digest == latest }) {
		t.Errorf("latest = %s, none of the tagged manifests", latest)
	}
	var blobs []digest.Digest
	for i := range n {
		blobs = append(blobs, blobDigest(strconv.Itoa(i)))
	}
	slices.Sort(blobs)
	checkBlobs(t, s, repo, blobs...)
	names := []string{repo}
	for i := range n {
		names = append(names, fmt.Sprintf("r%02d", i))
	}
	slices.Sort(names)
	checkNames(t, s, names...)

	// Concurrent deletes of everything leave nothing.
	for i := range n {
		wg.Go(func() { errs[i] = s.DeleteManifest(t.Context(), repo, records[i].Digest) })
		wg.Go(func() { errs[n+i] = s.DeleteManifest(t.Context(), repo, refs[i].Digest) })
		wg.Go(func() { errs[2*n+i] = s.UnlinkBlob(t.Context(), repo, blobDigest(strconv.Itoa(i))) })
		wg.Go(func() { errs[3*n+i] = s.UnlinkBlob(t.Context(), fmt.Sprintf("r%02d", i), blobDigest("x")) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("delete #%d: %v", i, err)
		}
	}
	checkNoRepo(t, s, repo)
	checkReferrers(t, s, repo, subject)
	checkNames(t, s)
}

// testReposConcurrentDeletes: of concurrent deletes of one thing, exactly
// one succeeds and the others are ErrNotFound.
func testReposConcurrentDeletes(t *testing.T, s catalog.Store) {
	const repo = "library/php"
	const n = 10
	m := newManifest(t, s, "m", "")
	putManifest(t, s, repo, m, "latest")
	linkBlob(t, s, repo, blobDigest("b"))
	for _, tc := range []struct {
		what string
		fn   func() error
	}{
		{"DeleteTag", func() error { return s.DeleteTag(t.Context(), repo, "latest") }},
		{"DeleteManifest", func() error { return s.DeleteManifest(t.Context(), repo, m.Digest) }},
		{"UnlinkBlob", func() error { return s.UnlinkBlob(t.Context(), repo, blobDigest("b")) }},
	} {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = tc.fn() })
		}
		wg.Wait()
		succeeded := 0
		for _, err := range errs {
			switch {
			case err == nil:
				succeeded++
			case !errors.Is(err, catalog.ErrNotFound):
				t.Errorf("concurrent %s: %v", tc.what, err)
			}
		}
		if succeeded != 1 {
			t.Errorf("%d of %d concurrent %s calls succeeded, want 1", succeeded, n, tc.what)
		}
	}
	checkNoRepo(t, s, repo)
}

func testSharedReposPut(t *testing.T, a, b catalog.Store) {
	const repo = "library/php"
	checkNoRepo(t, b, repo) // b has looked
	m := newManifest(t, a, "m", "")
	ref := newManifest(t, a, "ref", m.Digest)
	putManifest(t, a, repo, m, "latest")
	putManifest(t, a, repo, ref)
	// Visible at once, without polling.
	checkManifest(t, b, repo, m)
	checkTag(t, b, repo, "latest", m.Digest)
	checkTags(t, b, repo, "latest")
	checkManifests(t, b, repo, sortedByDigest(m, ref)...)
	checkReferrers(t, b, repo, m.Digest, ref)
	checkNames(t, b, repo)

	// And a retag through b, back through a.
	m2 := newManifest(t, b, "m2", "")
	putManifest(t, b, repo, m2, "latest")
	checkTag(t, a, repo, "latest", m2.Digest)
}

func testSharedReposDeleteTag(t *testing.T, a, b catalog.Store) {
	const repo = "library/php"
	m := newManifest(t, a, "m", "")
	putManifest(t, a, repo, m, "latest", "1")
	checkTag(t, b, repo, "latest", m.Digest) // b has looked
	ok(t, "DeleteTag through a", a.DeleteTag(t.Context(), repo, "latest"))
	checkNoTag(t, b, repo, "latest")
	checkTags(t, b, repo, "1")
	checkManifest(t, b, repo, m)
	wantNotFound(t, "DeleteTag through b of the tag deleted through a", b.DeleteTag(t.Context(), repo, "latest"))
}

func testSharedReposDeleteManifest(t *testing.T, a, b catalog.Store) {
	const repo = "library/php"
	m := newManifest(t, a, "m", "")
	ref := newManifest(t, a, "ref", m.Digest)
	putManifest(t, a, repo, m, "latest")
	putManifest(t, a, repo, ref, "sig")
	checkReferrers(t, b, repo, m.Digest, ref)
	ok(t, "DeleteManifest through b", b.DeleteManifest(t.Context(), repo, ref.Digest))
	checkReferrers(t, a, repo, m.Digest)
	checkNoTag(t, a, repo, "sig")
	ok(t, "DeleteManifest through a", a.DeleteManifest(t.Context(), repo, m.Digest))
	wantNotFound(t, "DeleteManifest through b of the manifest deleted through a", b.DeleteManifest(t.Context(), repo, m.Digest))
	checkNoRepo(t, b, repo)
	checkNames(t, b)
}

func testSharedReposBlobs(t *testing.T, a, b catalog.Store) {
	const repo = "library/php"
	d := blobDigest("b")
	checkLinked(t, b, repo, d, false)
	linkBlob(t, a, repo, d)
	checkLinked(t, b, repo, d, true)
	checkBlobs(t, b, repo, d)
	checkNames(t, b, repo)
	ok(t, "UnlinkBlob through b", b.UnlinkBlob(t.Context(), repo, d))
	checkLinked(t, a, repo, d, false)
	checkNoRepo(t, a, repo)
}

func testSharedReposConcurrent(t *testing.T, a, b catalog.Store) {
	const repo = "library/php"
	const n = 10
	var records []catalog.ManifestRecord
	for i := range 2 * n {
		records = append(records, newManifest(t, a, fmt.Sprintf("m%d", i), ""))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() { errs[i] = a.PutManifest(t.Context(), repo, records[i], fmt.Sprintf("t%02d", i)) })
		wg.Go(func() { errs[n+i] = b.PutManifest(t.Context(), repo, records[n+i], fmt.Sprintf("t%02d", n+i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutManifest #%d: %v", i, err)
		}
	}
	var tags []string
	for i := range 2 * n {
		tags = append(tags, fmt.Sprintf("t%02d", i))
	}
	for _, s := range []catalog.Store{a, b} {
		checkManifests(t, s, repo, sortedByDigest(records...)...)
		checkTags(t, s, repo, tags...)
	}
}
