// Package layerstoretest is the contract suite every layerstore backend runs,
// in the spirit of containerd's content testsuite and distribution's driver
// suites: one set of tests, many backends.
//
// A backend's test calls Run with a constructor that returns an empty store:
//
//	func TestContract(t *testing.T) {
//		layerstoretest.Run(t, func(t *testing.T) layerstore.Store {
//			s, err := fs.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The contract, beyond the interface docs in package layerstore:
//   - content is verified whole before it is visible: a digest or size
//     mismatch, a failing reader or a cancelled context leaves nothing that
//     Stat or Open can find;
//   - Put of an existing blob succeeds without reading its reader;
//   - concurrent Puts (same or different digests) all succeed;
//   - Open seeks, so ranges are served without reading what precedes them;
//   - a missing blob is an error wrapping layerstore.ErrNotFound, and an
//     invalid digest string is an error that does not (it is a bad request,
//     not a missing blob).
package layerstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Run runs the contract suite. newStore returns a new, empty store for each
// subtest; it registers its own cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) layerstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s layerstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"SeekAndRanges", testSeekAndRanges},
		{"UnknownSize", testUnknownSize},
		{"DigestMismatch", testDigestMismatch},
		{"SizeTooShort", testSizeTooShort},
		{"SizeTooLong", testSizeTooLong},
		{"ReaderError", testReaderError},
		{"CancelledContext", testCancelledContext},
		{"Idempotent", testIdempotent},
		{"ConcurrentSameBlob", testConcurrentSameBlob},
		{"ConcurrentDifferentBlobs", testConcurrentDifferentBlobs},
		{"InvalidDigest", testInvalidDigest},
		{"NotFound", testNotFound},
		{"LargeBlob", testLargeBlob},
		{"ModTime", testModTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Blob returns n deterministic pseudo-random bytes for seed and their digest.
func Blob(seed uint64, n int) ([]byte, digest.Digest) {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, digest.FromBytes(b)
}

func put(t *testing.T, s layerstore.Store, d digest.Digest, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%s): %v", d, err)
	}
}

// checkContent asserts that d is stored with exactly want.
func checkContent(t *testing.T, s layerstore.Store, d digest.Digest, want []byte) {
	t.Helper()
	size, err := s.Stat(t.Context(), d)
	if err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
	if size != int64(len(want)) {
		t.Errorf("Stat(%s) = %d, want %d", d, size, len(want))
	}
	rc, size, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer rc.Close()
	if size != int64(len(want)) {
		t.Errorf("Open(%s) size = %d, want %d", d, size, len(want))
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", d, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("content of %s: got %d bytes (digest %s), want %d bytes", d, len(got), digest.FromBytes(got), len(want))
	}
}

// checkAbsent asserts that Stat and Open report d as not found.
func checkAbsent(t *testing.T, s layerstore.Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("Stat(%s) error = %v, want ErrNotFound", d, err)
	}
	rc, _, err := s.Open(t.Context(), d)
	if !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("Open(%s) error = %v, want ErrNotFound", d, err)
	}
	if rc != nil {
		rc.Close()
	}
}

func checkMismatch(t *testing.T, err error) {
	t.Helper()
	var mismatch *layerstore.DigestMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("Put error = %v, want *layerstore.DigestMismatchError", err)
	}
}

func testRoundTrip(t *testing.T, s layerstore.Store) {
	for i, n := range []int{0, 1, 1000, 64 << 10} {
		data, d := Blob(uint64(i), n)
		put(t, s, d, data)
		checkContent(t, s, d, data)
	}
}

func testSeekAndRanges(t *testing.T, s layerstore.Store) {
	data, d := Blob(1, 10_000)
	put(t, s, d, data)
	rc, size, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	// What http.ServeContent does: learn the size, rewind, then read ranges.
	end, err := rc.Seek(0, io.SeekEnd)
	if err != nil || end != size || end != int64(len(data)) {
		t.Fatalf("Seek(0, SeekEnd) = %d, %v; want %d", end, err, len(data))
	}
	if pos, err := rc.Seek(0, io.SeekStart); err != nil || pos != 0 {
		t.Fatalf("Seek(0, SeekStart) = %d, %v", pos, err)
	}
	for _, r := range []struct{ off, n int64 }{{0, 10}, {4096, 100}, {9990, 10}, {5000, 1}, {1, 9999}} {
		if _, err := rc.Seek(r.off, io.SeekStart); err != nil {
			t.Fatalf("Seek(%d): %v", r.off, err)
		}
		got := make([]byte, r.n)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("range %d+%d: %v", r.off, r.n, err)
		}
		if want := data[r.off : r.off+r.n]; !bytes.Equal(got, want) {
			t.Errorf("range %d+%d: content differs", r.off, r.n)
		}
	}
	// Relative seeks.
	if _, err := rc.Seek(-10, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(tail, data[len(data)-10:]) {
		t.Errorf("last 10 bytes = %x, %v; want %x", tail, err, data[len(data)-10:])
	}
	if _, err := rc.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if pos, err := rc.Seek(50, io.SeekCurrent); err != nil || pos != 150 {
		t.Errorf("Seek(50, SeekCurrent) = %d, %v; want 150", pos, err)
	}
}

func testUnknownSize(t *testing.T, s layerstore.Store) {
	data, d := Blob(2, 12345)
	// A reader without Len or Seek, as an HTTP body would be.
	if err := s.Put(t.Context(), d, -1, io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	checkContent(t, s, d, data)
}

func testDigestMismatch(t *testing.T, s layerstore.Store) {
	_, d := Blob(3, 4096)
	other, _ := Blob(4, 4096) // same size, other content
	err := s.Put(t.Context(), d, int64(len(other)), bytes.NewReader(other))
	checkMismatch(t, err)
	checkAbsent(t, s, d)
	// Unknown size does not skip the digest check.
	err = s.Put(t.Context(), d, -1, bytes.NewReader(other))
	checkMismatch(t, err)
	checkAbsent(t, s, d)
}

func testSizeTooShort(t *testing.T, s layerstore.Store) {
	data, d := Blob(5, 1000)
	err := s.Put(t.Context(), d, int64(len(data))+1, bytes.NewReader(data))
	checkMismatch(t, err)
	checkAbsent(t, s, d)
}

func testSizeTooLong(t *testing.T, s layerstore.Store) {
	data, d := Blob(6, 1000)
	err := s.Put(t.Context(), d, int64(len(data))-1, bytes.NewReader(data))
	checkMismatch(t, err)
	checkAbsent(t, s, d)
	// The digest of the truncated content does not help either.
	d2 := digest.FromBytes(data[:len(data)-1])
	err = s.Put(t.Context(), d2, int64(len(data))-1, bytes.NewReader(data))
	checkMismatch(t, err)
	checkAbsent(t, s, d2)
}

// ErrReader is the error FailingReader returns.
var ErrReader = errors.New("layerstoretest: reader failed")

// FailingReader returns the first n bytes of data and then ErrReader.
func FailingReader(data []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), &errReader{err: ErrReader})
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func testReaderError(t *testing.T, s layerstore.Store) {
	data, d := Blob(7, 100_000)
	err := s.Put(t.Context(), d, int64(len(data)), FailingReader(data, 50_000))
	if !errors.Is(err, ErrReader) {
		t.Fatalf("Put error = %v, want it to wrap the reader's error", err)
	}
	checkAbsent(t, s, d)
}

func testCancelledContext(t *testing.T, s layerstore.Store) {
	data, d := Blob(8, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled context: error = %v, want context.Canceled", err)
	}
	checkAbsent(t, s, d)
}

// unreadable fails the test if it is read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("Put read the content of a blob that exists")
	return 0, ErrReader
}

func testIdempotent(t *testing.T, s layerstore.Store) {
	data, d := Blob(9, 5000)
	put(t, s, d, data)
	put(t, s, d, data)
	if err := s.Put(t.Context(), d, int64(len(data)), unreadable{t}); err != nil {
		t.Errorf("second Put with size: %v", err)
	}
	if err := s.Put(t.Context(), d, -1, unreadable{t}); err != nil {
		t.Errorf("second Put without size: %v", err)
	}
	checkContent(t, s, d, data)
}

func testConcurrentSameBlob(t *testing.T, s layerstore.Store) {
	data, d := Blob(10, 256<<10)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() {
			// Small reads interleave the writers.
			errs[i] = s.Put(t.Context(), d, int64(len(data)), io.LimitReader(bytes.NewReader(data), int64(len(data))))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put #%d: %v", i, err)
		}
	}
	checkContent(t, s, d, data)
}

func testConcurrentDifferentBlobs(t *testing.T, s layerstore.Store) {
	type blob struct {
		data []byte
		d    digest.Digest
	}
	blobs := make([]blob, 10)
	for i := range blobs {
		blobs[i].data, blobs[i].d = Blob(uint64(100+i), 10_000+i)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i, b := range blobs {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), b.d, int64(len(b.data)), bytes.NewReader(b.data))
		})
	}
	wg.Wait()
	for i, b := range blobs {
		if errs[i] != nil {
			t.Errorf("Put %s: %v", b.d, errs[i])
			continue
		}
		checkContent(t, s, b.d, b.data)
	}
}

func testInvalidDigest(t *testing.T, s layerstore.Store) {
	hex := fmt.Sprintf("%x", sha256.Sum256([]byte("x")))
	for _, d := range []digest.Digest{
		"",
		"sha256",
		"sha256:",
		"sha256:" + digest.Digest(hex[:63]),
		"sha256:" + digest.Digest(hex) + "0",
		"SHA256:" + digest.Digest(hex),
		"sha256:" + digest.Digest(fmt.Sprintf("%X", sha256.Sum256([]byte("x")))),
		"sha256:../../../../../../etc/passwd",
		"sha256:../sha256/" + digest.Digest(hex[:54]),
		"../" + digest.Digest(hex),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256:" + digest.Digest(hex) + "/..",
	} {
		t.Run(string(d), func(t *testing.T) {
			if err := s.Put(t.Context(), d, 1, bytes.NewReader([]byte("x"))); err == nil {
				t.Errorf("Put(%q) succeeded", d)
			}
			if _, err := s.Stat(t.Context(), d); err == nil || errors.Is(err, layerstore.ErrNotFound) {
				t.Errorf("Stat(%q) error = %v, want an invalid-digest error", d, err)
			}
			rc, _, err := s.Open(t.Context(), d)
			if err == nil || errors.Is(err, layerstore.ErrNotFound) {
				t.Errorf("Open(%q) error = %v, want an invalid-digest error", d, err)
			}
			if rc != nil {
				rc.Close()
			}
		})
	}
}

func testNotFound(t *testing.T, s layerstore.Store) {
	_, d := Blob(11, 10)
	checkAbsent(t, s, d)
	_, err := s.Stat(t.Context(), d)
	if err != nil && !strings.Contains(err.Error(), d.Encoded()) {
		t.Errorf("Stat error %q does not name the digest", err)
	}
}

func testLargeBlob(t *testing.T, s layerstore.Store) {
	const size = 8 << 20
	data, d := Blob(12, size)
	// Stream in odd-sized chunks so that no backend sees the whole buffer.
	if err := s.Put(t.Context(), d, size, &chunkReader{r: bytes.NewReader(data), n: 7919}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, n, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n != size {
		t.Errorf("size = %d, want %d", n, size)
	}
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), rc); err != nil {
		t.Fatal(err)
	}
	if got := dg.Digest(); got != d {
		t.Errorf("content digest = %s, want %s", got, d)
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// ager is the optional ModTime of a backend (envreg gc's grace period needs
// it from every blob store it collects).
type ager interface {
	ModTime(ctx context.Context, d digest.Digest) (time.Time, error)
}

// testModTime checks ModTime where the backend has it: a stored blob has a
// time, which a second Put of it never moves back (layerstore/fs renews it,
// so that a publish re-using an old unreferenced blob is not collected
// under it; S3 cannot without copying the object and leaves it), a
// missing or deleted blob is ErrNotFound, and an invalid digest is refused
// before it names a file or key. It compares with no clock: an S3 server's
// clock is not the local one.
func testModTime(t *testing.T, s layerstore.Store) {
	a, ok := s.(ager)
	if !ok {
		t.Skip("the backend has no ModTime")
	}
	data, d := Blob(13, 3000)
	put(t, s, d, data)
	first, err := a.ModTime(t.Context(), d)
	if err != nil || first.IsZero() {
		t.Fatalf("ModTime of a stored blob = %v, %v", first, err)
	}
	put(t, s, d, data)
	if again, err := a.ModTime(t.Context(), d); err != nil || again.Before(first) {
		t.Errorf("ModTime after a second Put = %v, %v; want %v or later", again, err, first)
	}
	_, missing := Blob(14, 10)
	if _, err := a.ModTime(t.Context(), missing); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("ModTime of a missing blob = %v, want ErrNotFound", err)
	}
	if del, ok := s.(interface {
		Delete(ctx context.Context, d digest.Digest) error
	}); ok {
		if err := del.Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if _, err := a.ModTime(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
			t.Errorf("ModTime of a deleted blob = %v, want ErrNotFound", err)
		}
	}
	if _, err := a.ModTime(t.Context(), "sha256:../../etc/passwd"); err == nil || errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("ModTime(invalid) = %v, want an invalid-digest error", err)
	}
}
