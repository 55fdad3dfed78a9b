package packages_test

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
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/packages"
)

// The fuzz targets of tar ingestion and recipe loading. Seeds are in
// testdata/fuzz/<target>; CI runs each for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzNormalizeTar$' -fuzztime 15s ./packages
//	go test -run '^$' -fuzz '^FuzzRecipeYAML$' -fuzztime 15s ./packages

// fuzzPolicy keeps fuzzed inputs small (a megabyte unpacked); the odd
// inputs also allow setuid files, so both branches are explored.
func fuzzPolicy(data []byte) packages.Policy {
	return packages.Policy{
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
			if !errors.Is(err, packages.ErrRefused) {
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

func checkCanonicalLayer(t *testing.T, layer []byte, diffID digest.Digest, pol packages.Policy) {
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

// FuzzRecipeYAML loads arbitrary bytes as a recipe file. It must not
// panic; an accepted recipe must validate, and written back as YAML it
// must load as a recipe that writes the same YAML.
func FuzzRecipeYAML(f *testing.F) {
	f.Add([]byte(phpRecipe))
	f.Fuzz(func(t *testing.T, data []byte) {
		rcs, err := packages.LoadRecipes(fstest.MapFS{"r.yaml": {Data: data}})
		if err != nil {
			return
		}
		if len(rcs) != 1 {
			t.Fatalf("one file gave %d recipes", len(rcs))
		}
		rc := rcs[0]
		if err := rc.Validate(); err != nil {
			t.Fatalf("loaded recipe does not validate: %v", err)
		}
		out, err := yaml.Marshal(rc)
		if err != nil {
			t.Fatalf("marshalling the recipe: %v", err)
		}
		again, err := packages.LoadRecipes(fstest.MapFS{"r.yaml": {Data: out}})
		if err != nil {
			t.Fatalf("the recipe written back does not load: %v\n%s", err, out)
		}
		// Empty lists and maps are left out when written (omitempty), so
		// compare what the two recipes write, not the structs.
		out2, err := yaml.Marshal(again[0])
		if err != nil {
			t.Fatalf("marshalling the recipe again: %v", err)
		}
		if !bytes.Equal(out, out2) || again[0].Name != rc.Name || again[0].Version != rc.Version {
			t.Fatalf("round trip changed the recipe:\n%s\nthen\n%s", out, out2)
		}
	})
}
