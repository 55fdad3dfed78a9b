package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/packages/layer"
)

// The fuzz targets of tar input and layer inspection. Seeds are in
// testdata/fuzz/<target>; CI runs each for a bounded time (.ci/run):
//
//	go test -run '^$' -fuzz '^FuzzNormalizeTar$' -fuzztime 15s ./packages/layer
//	go test -run '^$' -fuzz '^FuzzInspect$' -fuzztime 15s ./packages/layer

// fuzzPolicy keeps fuzzed inputs small (a megabyte unpacked); the odd
// inputs also allow setuid files, so both branches are explored.
func fuzzPolicy(data []byte) layer.Policy {
	return layer.Policy{
		AllowSetuid:  len(data)%2 == 1,
		MaxEntries:   1000,
		MaxEntrySize: 1 << 20,
		MaxTotalSize: 1 << 20,
	}
}

// FuzzNormalizeTar feeds arbitrary bytes to NormalizeTar. Whatever the
// input, it must not panic, must refuse it with an error wrapping
// ErrRefused (the input is at fault, never the program) and leave no
// spooled file behind; and when it accepts it, the layer must be
// canonical: valid gzip whose tar has only clean, relative names inside
// the root, no whiteouts, only files, directories and symbolic links,
// parents before children, nothing below a non-directory, normalized
// metadata, no setuid file unless allowed, the returned diffID, the same
// bytes on a second run, and itself again when normalized once more.
func FuzzNormalizeTar(f *testing.F) {
	spool := f.TempDir()
	f.Setenv("TMPDIR", spool)
	f.Fuzz(func(t *testing.T, data []byte) {
		pol := fuzzPolicy(data)
		var out bytes.Buffer
		diffID, err := pol.NormalizeTar(t.Context(), bytes.NewReader(data), &out)
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Fatalf("%d spooled files left behind (err %v)", len(left), err)
		}
		if err != nil {
			if !errors.Is(err, layer.ErrRefused) {
				t.Fatalf("error does not wrap ErrRefused: %v", err)
			}
			return
		}
		checkCanonicalLayer(t, out.Bytes(), diffID, pol)

		var again bytes.Buffer
		diffID2, err := pol.NormalizeTar(t.Context(), bytes.NewReader(data), &again)
		if err != nil || diffID2 != diffID || !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatalf("second run differs: diffID %s vs %s, err %v", diffID2, diffID, err)
		}

		var fixed bytes.Buffer
		diffID3, err := pol.NormalizeTar(t.Context(), bytes.NewReader(out.Bytes()), &fixed)
		if err != nil {
			t.Fatalf("normalizing the canonical layer again: %v", err)
		}
		if diffID3 != diffID || !bytes.Equal(fixed.Bytes(), out.Bytes()) {
			t.Fatalf("a canonical layer is not a fixed point: diffID %s, then %s", diffID, diffID3)
		}
	})
}

// treeLess is the canonical order: component by component, '/' first.
func treeLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		if a[i] == '/' || b[i] == '/' {
			return a[i] == '/'
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

func checkCanonicalLayer(t *testing.T, layer []byte, diffID digest.Digest, pol layer.Policy) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("layer is not valid gzip: %v", err)
	}
	if digest.FromBytes(raw) != diffID {
		t.Fatalf("diffID %s is not the digest of the uncompressed layer", diffID)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	types := map[string]byte{}
	prev := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch {
		case name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name:
			t.Fatalf("entry %q: not a clean relative path", h.Name)
		case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../"):
			t.Fatalf("entry %q escapes the root", h.Name)
		case (h.Typeflag == tar.TypeDir) != strings.HasSuffix(h.Name, "/"):
			t.Fatalf("entry %q: type %q and trailing slash disagree", h.Name, h.Typeflag)
		case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeSymlink:
			t.Fatalf("entry %q has type %q", h.Name, h.Typeflag)
		case h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)):
			t.Fatalf("entry %q: metadata not normalized: %+v", h.Name, h)
		case h.Typeflag == tar.TypeReg && !pol.AllowSetuid && h.Mode&0o6000 != 0:
			t.Fatalf("entry %q: setuid/setgid mode %o although the policy refuses it", h.Name, h.Mode)
		case prev != "" && !treeLess(prev, name):
			t.Fatalf("entry %q after %q: not in canonical order", name, prev)
		}
		for _, c := range strings.Split(name, "/") {
			if strings.HasPrefix(c, ".wh.") {
				t.Fatalf("entry %q: whiteout component", h.Name)
			}
		}
		if dir := path.Dir(name); dir != "." && types[dir] != tar.TypeDir {
			t.Fatalf("entry %q: parent %q is not an earlier directory (type %q)", h.Name, dir, types[dir])
		}
		types[name] = h.Typeflag
		prev = name
	}
}
