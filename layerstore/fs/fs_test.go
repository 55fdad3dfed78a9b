package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/layerstore/layerstoretest"
)

func newStore(t *testing.T) (*fs.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "blobs")
	s, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestContract(t *testing.T) {
	layerstoretest.Run(t, func(t *testing.T) layerstore.Store {
		s, _ := newStore(t)
		return s
	})
}

// dirNames lists dir, failing the test if it cannot.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestNoTornFile checks that a failed Put leaves no file at all: neither a
// final file a reader could find nor a temp file.
func TestNoTornFile(t *testing.T) {
	data, d := layerstoretest.Blob(1, 1<<20)
	other, _ := layerstoretest.Blob(2, 1<<20)
	tests := []struct {
		name string
		put  func(s *fs.Store) error
	}{
		{"reader fails midway", func(s *fs.Store) error {
			return s.Put(t.Context(), d, int64(len(data)), layerstoretest.FailingReader(data, len(data)/2))
		}},
		{"digest mismatch", func(s *fs.Store) error {
			return s.Put(t.Context(), d, int64(len(other)), bytes.NewReader(other))
		}},
		{"too short", func(s *fs.Store) error {
			return s.Put(t.Context(), d, int64(len(data))+1, bytes.NewReader(data))
		}},
		{"too long", func(s *fs.Store) error {
			return s.Put(t.Context(), d, int64(len(data))-1, bytes.NewReader(data))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, root := newStore(t)
			if err := tc.put(s); err == nil {
				t.Fatal("Put succeeded")
			}
			if names := dirNames(t, filepath.Join(root, "sha256")); len(names) != 0 {
				t.Errorf("blob directory holds %q after a failed Put", names)
			}
			if names := dirNames(t, filepath.Join(root, "_uploads")); len(names) != 0 {
				t.Errorf("_uploads holds %q after a failed Put", names)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	s, root := newStore(t)
	data, d := layerstoretest.Blob(3, 100)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("file content differs from the blob")
	}
	if names := dirNames(t, filepath.Join(root, "_uploads")); len(names) != 0 {
		t.Errorf("_uploads holds %q after a successful Put", names)
	}
}

func TestSHA512(t *testing.T) {
	s, root := newStore(t)
	data := []byte("sha512 content")
	d := digest.SHA512.FromBytes(data)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if size, err := s.Stat(t.Context(), d); err != nil || size != int64(len(data)) {
		t.Errorf("Stat = %d, %v", size, err)
	}
	if _, err := os.Stat(filepath.Join(root, "sha512", d.Encoded())); err != nil {
		t.Error(err)
	}

	d384 := digest.SHA384.FromBytes(data)
	if err := s.Put(t.Context(), d384, int64(len(data)), bytes.NewReader(data)); !errors.Is(err, digest.ErrDigestUnsupported) {
		t.Errorf("Put sha384 error = %v, want ErrDigestUnsupported", err)
	}
}

func TestExistingBlobWrongSize(t *testing.T) {
	s, _ := newStore(t)
	data, d := layerstoretest.Blob(4, 100)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	err := s.Put(t.Context(), d, 99, bytes.NewReader(data))
	var mismatch *layerstore.DigestMismatchError
	if !errors.As(err, &mismatch) || mismatch.WantSize != 99 || mismatch.GotSize != 100 {
		t.Errorf("Put of existing blob with wrong size: error = %v, want size mismatch 99 vs 100", err)
	}
}

func TestStaleUploadsRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	if _, err := fs.New(root); err != nil {
		t.Fatal(err)
	}
	uploads := filepath.Join(root, "_uploads")
	for _, name := range []string{"put-old", "put-new"} {
		if err := os.WriteFile(filepath.Join(uploads, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(uploads, "put-old"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.New(root); err != nil {
		t.Fatal(err)
	}
	// The young one may belong to a Put running in another process.
	if got, want := dirNames(t, uploads), []string{"put-new"}; !slices.Equal(got, want) {
		t.Errorf("_uploads after New = %q, want %q", got, want)
	}
}

func TestWalkAndDelete(t *testing.T) {
	s, root := newStore(t)
	want := map[digest.Digest]int64{}
	for i := range 5 {
		data, d := layerstoretest.Blob(uint64(10+i), 100+i)
		if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want[d] = int64(len(data))
	}
	data512 := []byte("five twelve")
	d512 := digest.SHA512.FromBytes(data512)
	if err := s.Put(t.Context(), d512, -1, bytes.NewReader(data512)); err != nil {
		t.Fatal(err)
	}
	want[d512] = int64(len(data512))
	// Stray files are not blobs.
	if err := os.WriteFile(filepath.Join(root, "sha256", "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	got := map[digest.Digest]int64{}
	var order []digest.Digest
	err := s.Walk(t.Context(), func(d digest.Digest, size int64) error {
		got[d] = size
		order = append(order, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("Walk found %d blobs, want %d", len(got), len(want))
	}
	for d, size := range want {
		if got[d] != size {
			t.Errorf("Walk: %s size %d, want %d", d, got[d], size)
		}
	}
	if order[len(order)-1] != d512 {
		t.Errorf("Walk visited sha512 blob before a sha256 one: %v", order)
	}

	stop := errors.New("stop")
	n := 0
	if err := s.Walk(t.Context(), func(digest.Digest, int64) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Walk with failing fn: err %v after %d calls, want stop after 1", err, n)
	}

	for d := range want {
		if err := s.Delete(t.Context(), d); err != nil {
			t.Fatalf("Delete(%s): %v", d, err)
		}
		if _, err := s.Stat(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
			t.Errorf("Stat after Delete: %v", err)
		}
		if err := s.Delete(t.Context(), d); !errors.Is(err, layerstore.ErrNotFound) {
			t.Errorf("second Delete(%s) error = %v, want ErrNotFound", d, err)
		}
	}
	if err := s.Delete(t.Context(), "sha256:../../x"); err == nil || errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("Delete of invalid digest: error = %v", err)
	}
}

// TestPutExistingRenewsBlob: putting a blob that exists renews its
// modification time, which gc's grace period is measured against.
func TestPutExistingRenewsBlob(t *testing.T) {
	root := t.TempDir()
	s, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("shared layer")
	d := digest.FromBytes(data)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "sha256", d.Encoded())
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(info.ModTime()) > time.Hour {
		t.Errorf("blob modification time %s not renewed by a second Put", info.ModTime())
	}
}
