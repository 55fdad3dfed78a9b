package s3_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/layerstoretest"
)

// TestModTime checks that ModTime reports when a blob was committed (its
// object's Last-Modified, to the second), that a Put of an existing blob
// leaves it alone, and the errors for a missing blob and an invalid digest.
// The age is set on the backend file, which versitygw's POSIX backend
// reports as the object's Last-Modified.
func TestModTime(t *testing.T) {
	s, prefix := newStore(t, "")
	data, d := layerstoretest.Blob(70, 2000)
	before := time.Now().Truncate(time.Second)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ModTime(t.Context(), d)
	if err != nil {
		t.Fatalf("ModTime: %v", err)
	}
	if after := time.Now(); got.Before(before) || got.After(after) {
		t.Errorf("ModTime of a blob just stored = %v, want between %v and %v", got, before, after)
	}

	old := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	file := filepath.Join(backendRoot, testBucket, filepath.FromSlash(prefix), "blobs", string(d.Algorithm()), d.Encoded())
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ModTime(t.Context(), d); err != nil || !got.Equal(old) {
		t.Errorf("ModTime of a blob stored three hours ago = %v, %v; want %v", got, err, old)
	}
	// Storing it again does not rewrite it: it keeps its age.
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ModTime(t.Context(), d); err != nil || !got.Equal(old) {
		t.Errorf("ModTime after a second Put = %v, %v; want %v", got, err, old)
	}

	_, missing := layerstoretest.Blob(71, 10)
	if _, err := s.ModTime(t.Context(), missing); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("ModTime of a missing blob = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModTime(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("ModTime of a deleted blob = %v, want ErrNotFound", err)
	}
	if _, err := s.ModTime(t.Context(), "sha256:.."); err == nil || errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("ModTime(invalid) = %v, want an invalid-digest error", err)
	}
}
