package uploads_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/layerstore/uploads"
)

func newManager(t *testing.T, maxSize int64) (*uploads.Manager, *blobfs.Store, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := uploads.New(filepath.Join(dir, "uploads"), time.Hour, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return m, blobs, filepath.Join(dir, "uploads")
}

func TestChunksAndFinish(t *testing.T) {
	m, blobs, _ := newManager(t, 0)
	ctx := t.Context()
	s, err := m.Start("team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("team/other", s.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("session visible from another repository: %v", err)
	}
	if s, err = m.Append(ctx, "team/app", s.ID, 0, strings.NewReader("hello ")); err != nil || s.Size != 6 {
		t.Fatalf("append: %+v %v", s, err)
	}
	var re *uploads.RangeError
	if _, err := m.Append(ctx, "team/app", s.ID, 3, strings.NewReader("x")); !errors.As(err, &re) || re.Size != 6 || re.Start != 3 {
		t.Fatalf("out-of-order chunk: %v", err)
	}
	if s, err = m.Append(ctx, "team/app", s.ID, -1, strings.NewReader("wor")); err != nil || s.Size != 9 {
		t.Fatalf("append without range: %+v %v", s, err)
	}
	d := digest.FromString("hello world")
	// A wrong digest: nothing stored, and the session is gone.
	bad := digest.FromString("nope")
	var mm *layerstore.DigestMismatchError
	if _, err := m.Finish(ctx, "team/app", s.ID, 9, strings.NewReader("ld"), bad, blobs); !errors.As(err, &mm) {
		t.Fatalf("finish with a wrong digest: %v", err)
	}
	if _, err := blobs.Stat(ctx, bad); !errors.Is(err, layerstore.ErrNotFound) {
		t.Fatalf("blob stored under the wrong digest: %v", err)
	}
	if _, err := m.Get("team/app", s.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("session after a digest mismatch: %v", err)
	}

	s, _ = m.Start("team/app")
	m.Append(ctx, "team/app", s.ID, 0, strings.NewReader("hello wor"))
	n, err := m.Finish(ctx, "team/app", s.ID, 9, strings.NewReader("ld"), d, blobs)
	if err != nil || n != 11 {
		t.Fatalf("finish: %d %v", n, err)
	}
	rc, size, err := blobs.Open(ctx, d)
	if err != nil || size != 11 {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	if buf.String() != "hello world" {
		t.Fatalf("stored %q", buf.String())
	}
	if err := m.Cancel("team/app", s.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("cancel after finish: %v", err)
	}
}

func TestSizeLimit(t *testing.T) {
	m, _, _ := newManager(t, 10)
	s, _ := m.Start("a")
	if _, err := m.Append(t.Context(), "a", s.ID, 0, strings.NewReader("12345678")); err != nil {
		t.Fatal(err)
	}
	var tl *uploads.TooLargeError
	if _, err := m.Append(t.Context(), "a", s.ID, 8, strings.NewReader("123")); !errors.As(err, &tl) || tl.Limit != 10 {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestSweepRemovesAbandoned(t *testing.T) {
	m, _, dir := newManager(t, 0)
	old, _ := m.Start("a")
	m.Append(t.Context(), "a", old.ID, 0, strings.NewReader("x"))
	fresh, _ := m.Start("a")
	m.Append(t.Context(), "a", fresh.ID, 0, strings.NewReader("y"))
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, old.ID, "data"), past, past); err != nil {
		t.Fatal(err)
	}
	n, err := m.Sweep(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", n, err)
	}
	if _, err := m.Get("a", old.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("abandoned session survived: %v", err)
	}
	if _, err := m.Get("a", fresh.ID); err != nil {
		t.Fatalf("fresh session swept: %v", err)
	}
}

func TestOneWriterAtATime(t *testing.T) {
	m, _, _ := newManager(t, 0)
	s, _ := m.Start("a")
	pr, pw := newBlockingReader()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Append(t.Context(), "a", s.ID, 0, pr)
	}()
	<-pr.started
	if _, err := m.Append(t.Context(), "a", s.ID, -1, strings.NewReader("x")); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("concurrent append: %v, want ErrInUse", err)
	}
	close(pw)
	wg.Wait()
}

type blockingReader struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingReader() (*blockingReader, chan struct{}) {
	b := &blockingReader{started: make(chan struct{}), release: make(chan struct{})}
	return b, b.release
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return 0, errors.New("done")
}
