package disk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/layerstore/uploads/disk"
	"github.com/envreg/envreg/layerstore/uploads/uploadstest"
)

func newSessions(t *testing.T, maxSize int64) (*disk.Sessions, *fs.Store, string) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := disk.New(filepath.Join(dir, "uploads"), blobs, time.Hour, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	return s, blobs, filepath.Join(dir, "uploads")
}

func TestContract(t *testing.T) {
	uploadstest.Run(t, func(t *testing.T, maxSize int64) uploadstest.Fixture {
		s, blobs, _ := newSessions(t, maxSize)
		return uploadstest.Fixture{Sessions: s, Sweeper: s, Blobs: blobs, MaxAge: time.Hour}
	})
}

// TestSweepByModTime: a session is judged by its data file's time, and one
// that a request is writing is left alone.
func TestSweepByModTime(t *testing.T) {
	m, _, dir := newSessions(t, 0)
	ctx := t.Context()
	old, _ := m.Start(ctx, "a")
	m.Append(ctx, "a", old.ID, uploads.Chunk{Start: 0, Size: 1, Body: strings.NewReader("x")})
	fresh, _ := m.Start(ctx, "a")
	m.Append(ctx, "a", fresh.ID, uploads.Chunk{Start: 0, Size: 1, Body: strings.NewReader("y")})
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, old.ID, "data"), past, past); err != nil {
		t.Fatal(err)
	}
	n, err := m.Sweep(ctx, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", n, err)
	}
	if _, err := m.Get(ctx, "a", old.ID); !errors.Is(err, uploads.ErrUnknown) {
		t.Fatalf("abandoned session survived: %v", err)
	}
	if _, err := m.Get(ctx, "a", fresh.ID); err != nil {
		t.Fatalf("fresh session swept: %v", err)
	}
}
