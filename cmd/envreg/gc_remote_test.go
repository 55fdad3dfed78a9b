package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog/redisstore"
	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/layerstore/s3"
)

// Redis + S3 have every capability gc and verify need.
var (
	_ documentWalker = (*redisstore.Store)(nil)
	_ blobWalker     = (*s3.Store)(nil)
	_ blobDeleter    = (*s3.Store)(nil)
	_ blobAger       = (*s3.Store)(nil)
)

// remoteStored is newStored on Redis (catalog, documents) and S3 (blobs):
// base and php published and php-8.2 composed, through the CLI.
type remoteStored struct {
	flags    []string // --data (never used), --catalog, --blobs
	unused   string   // the --data directory, which must never appear
	s3       *testservers.S3
	prefix   string // the blob store's prefix in the bucket, with a trailing /
	bucket   *minio.Client
	redis    *redis.Client
	index    digest.Digest
	manifest digest.Digest
}

func newRemoteStored(t *testing.T) *remoteStored {
	t.Helper()
	redisURL := testservers.Redis(t)
	srv := testservers.StartS3(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	s := &remoteStored{s3: srv, prefix: "gc/", unused: filepath.Join(t.TempDir(), "unused")}
	s.flags = []string{"--data", s.unused, "--catalog", redisURL, "--blobs", srv.URL("gc")}

	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	s.bucket, err = minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.Secret, ""), Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	s.redis = redis.NewClient(opts)
	t.Cleanup(func() { s.redis.Close() })

	for _, p := range []struct{ name, version, file, content string }{
		{"base", "12.0.0", "etc/os-release", "ID=demo\n"},
		{"php", "8.2.36", "usr/local/php/bin/php", "#!/bin/sh\necho php 8.2.36\n"},
	} {
		root := filepath.Join(t.TempDir(), p.name)
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p.file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p.file), []byte(p.content), 0o755); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"publish"}, s.flags...)
		args = append(args, "--name", p.name, "--version", p.version, "--platform", "linux/amd64", "--from-dir", root)
		if code, out, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("publish %s: exit %d\n%s\n%s", p.name, code, out, errOut)
		}
	}
	args := append([]string{"resolve"}, s.flags...)
	code, out, errOut := runCLI(t, append(args, "--json", "php=8.2")...)
	if code != 0 {
		t.Fatalf("resolve: exit %d\n%s\n%s", code, out, errOut)
	}
	var res resolveOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("resolve --json: %v\n%s", err, out)
	}
	s.index = digest.Digest(res.Digest)
	s.manifest = digest.Digest(res.Manifests[0].Digest)
	return s
}

// blobs lists the blobs in the bucket, by listing the objects behind the
// store's back.
func (s *remoteStored) blobs(t *testing.T) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	base := s.prefix + "blobs/"
	for obj := range s.bucket.ListObjectsIter(t.Context(), s.s3.Bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		alg, hex, _ := strings.Cut(strings.TrimPrefix(obj.Key, base), "/")
		out = append(out, digest.NewDigestFromEncoded(digest.Algorithm(alg), hex))
	}
	slices.Sort(out)
	return out
}

// putOrphan stores content as a blob straight into the bucket, as a
// publish that failed before recording its release leaves it.
func (s *remoteStored) putOrphan(t *testing.T, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	key := s.prefix + "blobs/sha256/" + d.Encoded()
	if _, err := s.bucket.PutObject(t.Context(), s.s3.Bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	return d
}

func (s *remoteStored) run(t *testing.T, fn func(t *testing.T) (int, string, string)) (int, string, string) {
	t.Helper()
	code, out, errOut := fn(t)
	if _, err := os.Stat(s.unused); err == nil {
		t.Fatalf("the embedded store %s was created", s.unused)
	}
	return code, out, errOut
}

func (s *remoteStored) gc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return s.run(t, func(t *testing.T) (int, string, string) {
		return runSub(t, runGC, append(slices.Clone(s.flags), args...)...)
	})
}

func (s *remoteStored) verify(t *testing.T) (int, string, string) {
	t.Helper()
	return s.run(t, func(t *testing.T) (int, string, string) { return runSub(t, runVerify, s.flags...) })
}

func wantOutput(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestGCVerifyRemote runs gc and verify on Redis + S3: an orphan put
// straight into the bucket is kept while younger than the grace period
// (its age from S3) and deleted with --grace 0, the referenced layers and
// config survive, verify passes before and after, and a document corrupted
// in Redis makes verify fail and gc refuse to delete anything.
func TestGCVerifyRemote(t *testing.T) {
	s := newRemoteStored(t)
	referenced := s.blobs(t) // two layers and the config of the composed manifest
	if len(referenced) != 3 {
		t.Fatalf("after publishing and composing the bucket holds %d blobs, want 3: %v", len(referenced), referenced)
	}

	code, out, errOut := s.verify(t)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "verify", out, "blobs: 3 checked", "package versions: 2 checked (2 layers)",
		"documents: 2 checked (indexes: 1, manifests: 1)", "no damage found")

	const orphanContent = "an orphan put straight into the bucket"
	orphan := s.putOrphan(t, orphanContent)
	size := len(orphanContent)

	// With the default grace period the orphan, stored a moment ago, is
	// young.
	code, out, errOut = s.gc(t, "--dry-run")
	if code != 0 {
		t.Fatalf("gc --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "gc --dry-run", out, "gc: would delete 0 unreferenced blobs, 0 bytes would be freed; kept 3 referenced blobs",
		"and 1 unreferenced blobs younger than 1h0m0s")
	code, out, errOut = s.gc(t, "--dry-run", "--grace", "0")
	if code != 0 {
		t.Fatalf("gc --dry-run --grace 0: exit %d\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "gc --dry-run --grace 0", out, fmt.Sprintf("would delete %s (%d bytes)", orphan, size),
		fmt.Sprintf("gc: would delete 1 unreferenced blobs, %d bytes would be freed; kept 3 referenced blobs", size))
	code, out, errOut = s.gc(t)
	if code != 0 {
		t.Fatalf("gc: exit %d\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "gc", out, "gc: deleted 0 unreferenced blobs", "and 1 unreferenced blobs younger than 1h0m0s")
	if got, want := s.blobs(t), slices.Sorted(slices.Values(append(slices.Clone(referenced), orphan))); !slices.Equal(got, want) {
		t.Fatalf("before gc --grace 0 the bucket holds %v, want %v", got, want)
	}

	code, out, errOut = s.gc(t, "--grace", "0")
	if code != 0 {
		t.Fatalf("gc --grace 0: exit %d\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "gc --grace 0", out, fmt.Sprintf("deleted %s (%d bytes)", orphan, size),
		fmt.Sprintf("gc: deleted 1 unreferenced blobs, %d bytes freed; kept 3 referenced blobs", size))
	if got := s.blobs(t); !slices.Equal(got, referenced) {
		t.Fatalf("after gc the bucket holds %v, want the referenced blobs %v", got, referenced)
	}
	if code, out, errOut := s.verify(t); code != 0 || !strings.Contains(out, "no damage found") {
		t.Fatalf("verify after gc: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, out, _ := s.gc(t, "--grace", "0"); !strings.Contains(out, "gc: deleted 0 unreferenced blobs") {
		t.Errorf("second gc:\n%s", out)
	}

	// Corrupt the stored manifest in Redis (the envreg CLI uses the
	// default key prefix).
	key := redisstore.DefaultKeyPrefix + "doc:" + s.manifest.String()
	data, err := s.redis.HGet(t.Context(), key, "data").Bytes()
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	data[len(data)/2] ^= 0xff
	if err := s.redis.HSet(t.Context(), key, "data", data).Err(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = s.verify(t)
	if code != 1 {
		t.Fatalf("verify of a corrupt document: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	wantOutput(t, "verify of a corrupt document", out, "DAMAGED documents: document "+s.manifest.String()+" is corrupt", key)

	// gc cannot know what the corrupt document references: it deletes
	// nothing.
	orphan = s.putOrphan(t, "another orphan")
	code, _, errOut = s.gc(t, "--grace", "0")
	if code != 1 || !strings.Contains(errOut, "nothing deleted") {
		t.Errorf("gc with a corrupt document: exit %d, want 1 and nothing deleted: %s", code, errOut)
	}
	if got := s.blobs(t); !slices.Contains(got, orphan) || len(got) != 4 {
		t.Errorf("gc with a corrupt document deleted blobs: the bucket holds %v", got)
	}
}
