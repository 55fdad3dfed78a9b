// Package uploadstest is the contract suite every uploads.Sessions
// implementation runs (disk, and Shared on Redis + S3), in the style of
// layerstoretest: one set of tests, many implementations.
//
// An implementation's test calls Run with a constructor of fresh sessions
// over empty stores:
//
//	func TestContract(t *testing.T) {
//		uploadstest.Run(t, func(t *testing.T, maxSize int64) uploadstest.Fixture {
//			blobs, _ := fs.New(t.TempDir())
//			s, _ := disk.New(t.TempDir(), blobs, time.Hour, maxSize)
//			return uploadstest.Fixture{Sessions: s, Sweeper: s, Blobs: blobs, MaxAge: time.Hour}
//		})
//	}
//
// The contract, beyond the interface docs in package uploads:
//   - a session belongs to one repository; any other, an unknown id or a
//     malformed one is ErrUnknown;
//   - chunks go in order (*RangeError with the current size otherwise);
//     a chunk without a start goes at the end;
//   - nothing is a blob before Finish, and Finish commits only content
//     that matches the digest (sha256 or sha512); a mismatch stores
//     nothing and removes the session;
//   - one request at a time writes to a session (ErrInUse for the others:
//     Append, Finish and Cancel alike), and the session continues after it;
//   - an upload over the size limit is a *TooLargeError and leaves the
//     session as it was;
//   - a chunk that breaks off leaves a session the client can resume: from
//     the size Get reports, the rest of the upload completes it;
//   - Sweep removes sessions idle for the maximum age, and only those.
package uploadstest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
)

// Fixture is one implementation under test.
type Fixture struct {
	Sessions uploads.Sessions
	Sweeper  uploads.Sweeper
	// Blobs reads the store Finish commits to.
	Blobs layerstore.Reader
	// MaxAge is the idle time the sessions were configured with.
	MaxAge time.Duration
}

// Run runs the contract suite. newFixture returns fresh sessions over empty
// stores for each subtest, with the given size limit (0: none); it
// registers its own cleanup with t.
func Run(t *testing.T, newFixture func(t *testing.T, maxSize int64) Fixture) {
	t.Helper()
	tests := []struct {
		name    string
		maxSize int64
		fn      func(t *testing.T, f Fixture)
	}{
		{"ChunksAndFinish", 0, testChunksAndFinish},
		{"Status", 0, testStatus},
		{"DigestMismatch", 0, testDigestMismatch},
		{"SHA512", 0, testSHA512},
		{"EmptyBlob", 0, testEmptyBlob},
		{"Monolithic", 0, testMonolithic},
		{"ManyChunks", 0, testManyChunks},
		{"LargeChunks", 0, testLargeChunks},
		{"SizeLimit", 10, testSizeLimit},
		{"OneWriterAtATime", 0, testOneWriterAtATime},
		{"BrokenChunk", 0, testBrokenChunk},
		{"ShortChunk", 0, testShortChunk},
		{"Cancel", 0, testCancel},
		{"Sweep", 0, testSweep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newFixture(t, tc.maxSize)) })
	}
}

func chunk(start int64, s string) uploads.Chunk {
	return uploads.Chunk{Start: start, Size: int64(len(s)), Body: strings.NewReader(s)}
}

func start(t *testing.T, f Fixture, repo string) uploads.Session {
	t.Helper()
	s, err := f.Sessions.Start(t.Context(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if !uploads.ValidID(s.ID) || s.Repo != repo || s.Size != 0 {
		t.Fatalf("Start: %+v", s)
	}
	return s
}

func appendOK(t *testing.T, f Fixture, repo, id string, c uploads.Chunk, wantSize int64) {
	t.Helper()
	s, err := f.Sessions.Append(t.Context(), repo, id, c)
	if err != nil || s.Size != wantSize {
		t.Fatalf("Append: %+v, %v; want size %d", s, err, wantSize)
	}
}

// wantBlob checks that blob d holds want.
func wantBlob(t *testing.T, f Fixture, d digest.Digest, want []byte) {
	t.Helper()
	rc, size, err := f.Blobs.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("blob %s after Finish: %v", d, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("blob %s: %d bytes (size %d, %v), want %d", d, len(got), size, err, len(want))
	}
}

func wantNoBlob(t *testing.T, f Fixture, d digest.Digest) {
	t.Helper()
	if _, err := f.Blobs.Stat(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
		t.Fatalf("blob %s visible before a verified Finish: %v", d, err)
	}
}

func wantUnknown(t *testing.T, f Fixture, repo, id string) {
	t.Helper()
	if _, err := f.Sessions.Get(t.Context(), repo, id); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("Get(%s, %s): %v, want ErrUnknown", repo, id, err)
	}
}

func testChunksAndFinish(t *testing.T, f Fixture) {
	ctx := t.Context()
	s := start(t, f, "team/app")
	wantUnknown(t, f, "team/other", s.ID)
	appendOK(t, f, "team/app", s.ID, chunk(0, "hello "), 6)
	var re *uploads.RangeError
	for _, bad := range []int64{3, 0, 7} {
		if _, err := f.Sessions.Append(ctx, "team/app", s.ID, chunk(bad, "x")); !errors.As(err, &re) || re.Size != 6 || re.Start != bad {
			t.Fatalf("chunk at %d: %v, want a RangeError at 6", bad, err)
		}
	}
	appendOK(t, f, "team/app", s.ID, uploads.Chunk{Start: -1, Size: -1, Body: strings.NewReader("wor")}, 9)
	d := digest.FromString("hello world")
	wantNoBlob(t, f, d)
	if _, err := f.Sessions.Finish(ctx, "team/app", s.ID, chunk(3, "ld"), d); !errors.As(err, &re) || re.Size != 9 {
		t.Fatalf("Finish with a final chunk out of order: %v", err)
	}
	n, err := f.Sessions.Finish(ctx, "team/app", s.ID, chunk(9, "ld"), d)
	if err != nil || n != 11 {
		t.Fatalf("Finish: %d, %v", n, err)
	}
	wantBlob(t, f, d, []byte("hello world"))
	wantUnknown(t, f, "team/app", s.ID)
	if err := f.Sessions.Cancel(ctx, "team/app", s.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("Cancel after Finish: %v", err)
	}
	if _, err := f.Sessions.Append(ctx, "team/app", s.ID, chunk(11, "x")); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("Append after Finish: %v", err)
	}
}

func testStatus(t *testing.T, f Fixture) {
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "12345"), 5)
	got, err := f.Sessions.Get(t.Context(), "a", s.ID)
	if err != nil || got.Size != 5 || got.ID != s.ID || got.Repo != "a" {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	for _, id := range []string{"", "x", "../../etc", strings.Repeat("0", 32), strings.ToUpper(s.ID)} {
		wantUnknown(t, f, "a", id)
	}
}

func testDigestMismatch(t *testing.T, f Fixture) {
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "hello "), 6)
	bad := digest.FromString("something else")
	var mm *layerstore.DigestMismatchError
	if _, err := f.Sessions.Finish(t.Context(), "a", s.ID, chunk(6, "world"), bad); !errors.As(err, &mm) {
		t.Fatalf("Finish with a wrong digest: %v", err)
	}
	wantNoBlob(t, f, bad)
	wantNoBlob(t, f, digest.FromString("hello world"))
	wantUnknown(t, f, "a", s.ID)
}

func testSHA512(t *testing.T, f Fixture) {
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "hello "), 6)
	appendOK(t, f, "a", s.ID, chunk(6, "wor"), 9)
	d := digest.SHA512.FromString("hello world")
	bad := digest.SHA512.FromString("hello")
	var mm *layerstore.DigestMismatchError
	if _, err := f.Sessions.Finish(t.Context(), "a", s.ID, chunk(9, "ld"), bad); !errors.As(err, &mm) {
		t.Fatalf("Finish with a wrong sha512 digest: %v", err)
	}
	wantNoBlob(t, f, bad)
	s = start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "hello wor"), 9)
	if n, err := f.Sessions.Finish(t.Context(), "a", s.ID, chunk(9, "ld"), d); err != nil || n != 11 {
		t.Fatalf("Finish with sha512: %d, %v", n, err)
	}
	wantBlob(t, f, d, []byte("hello world"))
}

func testEmptyBlob(t *testing.T, f Fixture) {
	s := start(t, f, "a")
	d := digest.FromBytes(nil)
	if n, err := f.Sessions.Finish(t.Context(), "a", s.ID, uploads.Chunk{Start: -1, Size: 0}, d); err != nil || n != 0 {
		t.Fatalf("Finish of an empty upload: %d, %v", n, err)
	}
	wantBlob(t, f, d, nil)
	// An empty PATCH, or one without a body, changes nothing.
	s = start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, ""), 0)
	appendOK(t, f, "a", s.ID, chunk(0, "x"), 1)
	appendOK(t, f, "a", s.ID, uploads.Chunk{Start: -1, Size: -1}, 1)
}

// testMonolithic is POST then PUT with the whole blob, as some clients push.
func testMonolithic(t *testing.T, f Fixture) {
	blob := randomBytes(t, 100<<10)
	d := digest.FromBytes(blob)
	s := start(t, f, "a")
	n, err := f.Sessions.Finish(t.Context(), "a", s.ID, uploads.Chunk{Start: -1, Size: -1, Body: bytes.NewReader(blob)}, d)
	if err != nil || n != int64(len(blob)) {
		t.Fatalf("Finish: %d, %v", n, err)
	}
	wantBlob(t, f, d, blob)
}

func testManyChunks(t *testing.T, f Fixture) {
	blob := randomBytes(t, 20*1000+7)
	d := digest.FromBytes(blob)
	s := start(t, f, "a")
	for i := 0; i < 20; i++ {
		appendOK(t, f, "a", s.ID, chunk(int64(i*1000), string(blob[i*1000:(i+1)*1000])), int64((i+1)*1000))
	}
	wantNoBlob(t, f, d)
	if n, err := f.Sessions.Finish(t.Context(), "a", s.ID, chunk(20000, string(blob[20000:])), d); err != nil || n != int64(len(blob)) {
		t.Fatalf("Finish: %d, %v", n, err)
	}
	wantBlob(t, f, d, blob)
}

// testLargeChunks uploads chunks of the size the sessions ask for (at
// least 1 MiB), so an implementation with a minimum takes its fast path.
func testLargeChunks(t *testing.T, f Fixture) {
	size := max(f.Sessions.Limits().MinChunk, 1<<20)
	blob := randomBytes(t, int(2*size+12345))
	d := digest.FromBytes(blob)
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, string(blob[:size])), size)
	appendOK(t, f, "a", s.ID, chunk(size, string(blob[size:2*size])), 2*size)
	appendOK(t, f, "a", s.ID, chunk(2*size, string(blob[2*size:])), int64(len(blob)))
	wantNoBlob(t, f, d)
	if n, err := f.Sessions.Finish(t.Context(), "a", s.ID, uploads.Chunk{Start: -1, Size: 0}, d); err != nil || n != int64(len(blob)) {
		t.Fatalf("Finish: %d, %v", n, err)
	}
	wantBlob(t, f, d, blob)
}

func testSizeLimit(t *testing.T, f Fixture) {
	ctx := t.Context()
	if got := f.Sessions.Limits().MaxSize; got != 10 {
		t.Fatalf("Limits().MaxSize = %d, want 10", got)
	}
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "12345678"), 8)
	var tl *uploads.TooLargeError
	// Announced too large, and too large without a size.
	if _, err := f.Sessions.Append(ctx, "a", s.ID, chunk(8, "123")); !errors.As(err, &tl) || tl.Limit != 10 {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := f.Sessions.Append(ctx, "a", s.ID, uploads.Chunk{Start: 8, Size: -1, Body: strings.NewReader("123")}); !errors.As(err, &tl) {
		t.Fatalf("over the limit, size unknown: %v", err)
	}
	if _, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: 8, Size: -1, Body: strings.NewReader("123")}, digest.FromString("12345678123")); !errors.As(err, &tl) {
		t.Fatalf("final chunk over the limit: %v", err)
	}
	// The session is as it was, and takes what fits.
	appendOK(t, f, "a", s.ID, chunk(8, "90"), 10)
	d := digest.FromString("1234567890")
	if n, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: -1}, d); err != nil || n != 10 {
		t.Fatalf("Finish at the limit: %d, %v", n, err)
	}
	wantBlob(t, f, d, []byte("1234567890"))
}

func testOneWriterAtATime(t *testing.T, f Fixture) {
	ctx := t.Context()
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "abc"), 3)
	br := newBlockingReader("def")
	errc := make(chan error, 1)
	go func() {
		_, err := f.Sessions.Append(ctx, "a", s.ID, uploads.Chunk{Start: 3, Size: -1, Body: br})
		errc <- err
	}()
	select {
	case <-br.started:
	case err := <-errc:
		t.Fatalf("the first writer ended before reading: %v", err)
	}
	if _, err := f.Sessions.Append(ctx, "a", s.ID, chunk(3, "x")); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("concurrent Append: %v, want ErrInUse", err)
	}
	if _, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: -1}, digest.FromString("abc")); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("concurrent Finish: %v, want ErrInUse", err)
	}
	if err := f.Sessions.Cancel(ctx, "a", s.ID); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("concurrent Cancel: %v, want ErrInUse", err)
	}
	if got, err := f.Sessions.Get(ctx, "a", s.ID); err != nil || got.Size != 3 {
		t.Fatalf("status while a chunk is written: %+v, %v", got, err)
	}
	close(br.release)
	if err := <-errc; err != nil {
		t.Fatalf("the first writer: %v", err)
	}
	appendOK(t, f, "a", s.ID, chunk(6, "g"), 7)
	d := digest.FromString("abcdefg")
	if _, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: -1}, d); err != nil {
		t.Fatal(err)
	}
	wantBlob(t, f, d, []byte("abcdefg"))
}

// testBrokenChunk: a chunk whose body fails mid-way (the client went
// away). Whatever the session kept, the client resumes from the size Get
// reports.
func testBrokenChunk(t *testing.T, f Fixture) {
	ctx := t.Context()
	blob := randomBytes(t, 300<<10)
	d := digest.FromBytes(blob)
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, string(blob[:1000])), 1000)
	broken := io.MultiReader(bytes.NewReader(blob[1000:200<<10]), errReader{errors.New("connection reset")})
	if _, err := f.Sessions.Append(ctx, "a", s.ID, uploads.Chunk{Start: 1000, Size: int64(len(blob) - 1000), Body: broken}); err == nil {
		t.Fatal("Append of a broken body succeeded")
	}
	got, err := f.Sessions.Get(ctx, "a", s.ID)
	if err != nil || got.Size < 1000 || got.Size > 200<<10 {
		t.Fatalf("status after a broken chunk: %+v, %v", got, err)
	}
	wantNoBlob(t, f, d)
	appendOK(t, f, "a", s.ID, chunk(got.Size, string(blob[got.Size:])), int64(len(blob)))
	if _, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: -1}, d); err != nil {
		t.Fatalf("Finish after resuming: %v", err)
	}
	wantBlob(t, f, d, blob)
}

// testShortChunk: a body shorter than its announced size is an error.
func testShortChunk(t *testing.T, f Fixture) {
	s := start(t, f, "a")
	_, err := f.Sessions.Append(t.Context(), "a", s.ID, uploads.Chunk{Start: 0, Size: 10, Body: strings.NewReader("12345")})
	if err == nil {
		got, _ := f.Sessions.Get(t.Context(), "a", s.ID)
		t.Fatalf("Append of 5 bytes announced as 10 succeeded (size %d)", got.Size)
	}
}

func testCancel(t *testing.T, f Fixture) {
	ctx := t.Context()
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "abc"), 3)
	if err := f.Sessions.Cancel(ctx, "b", s.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("Cancel from another repository: %v", err)
	}
	if err := f.Sessions.Cancel(ctx, "a", s.ID); err != nil {
		t.Fatal(err)
	}
	wantUnknown(t, f, "a", s.ID)
	if _, err := f.Sessions.Finish(ctx, "a", s.ID, uploads.Chunk{Start: -1}, digest.FromString("abc")); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("Finish after Cancel: %v", err)
	}
	wantNoBlob(t, f, digest.FromString("abc"))
}

func testSweep(t *testing.T, f Fixture) {
	ctx := t.Context()
	s := start(t, f, "a")
	appendOK(t, f, "a", s.ID, chunk(0, "x"), 1)
	if n, err := f.Sweeper.Sweep(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Sweep now removed %d (%v), want 0", n, err)
	}
	if _, err := f.Sessions.Get(ctx, "a", s.ID); err != nil {
		t.Fatalf("a fresh session was swept: %v", err)
	}
	if n, err := f.Sweeper.Sweep(ctx, time.Now().Add(f.MaxAge+time.Minute)); err != nil || n < 1 {
		t.Fatalf("Sweep after the maximum age removed %d (%v), want at least 1", n, err)
	}
	wantUnknown(t, f, "a", s.ID)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// blockingReader yields its content once release is closed, and reports
// on started that someone began reading.
type blockingReader struct {
	r       io.Reader
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingReader(s string) *blockingReader {
	return &blockingReader{r: strings.NewReader(s), started: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return b.r.Read(p)
}
