package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// wantEntries is layertest.Tree in canonical order with tar modes.
var wantEntries = []struct {
	name     string
	typ      byte
	mode     int64
	linkname string
}{
	{"etc/", tar.TypeDir, 0o755, ""},
	{"etc/os-release", tar.TypeReg, 0o644, ""},
	{"tmp/", tar.TypeDir, 0o1777, ""},
	{"usr/", tar.TypeDir, 0o755, ""},
	{"usr/local/", tar.TypeDir, 0o755, ""},
	{"usr/local/bin/", tar.TypeDir, 0o755, ""},
	{"usr/local/bin/hello", tar.TypeReg, 0o755, ""},
	{"usr/local/bin/hi", tar.TypeSymlink, 0o777, "hello"},
	{"usr/local/bin/su-ish", tar.TypeReg, 0o4755, ""},
	{"usr/local-note", tar.TypeReg, 0o600, ""},
}

// Golden digests of testTree. The diffID depends only on the tar writer;
// the blob digest also on compress/gzip. If the blob digest changes after a
// Go upgrade, the compressor changed: republishing unchanged packages would
// then fail with catalog.ErrExists, which needs a decision, not an update of
// this literal.
const (
	goldenDiffID = digest.Digest("sha256:faae1c0f3e0535901b0ec54f12e123f54557ca5dafc7838176c764a5e7a2f771")
	goldenDigest = digest.Digest("sha256:2f5b95c82b2083bc9e3de75d8326b23155a1489da7403b0b672b5d2a4d95921c")
)

// allowSetuid is the policy under which layertest.Tree builds.
var allowSetuid = layer.Policy{AllowSetuid: true}

func buildFS(t *testing.T, fsys fs.FS) ([]byte, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	diffID, err := allowSetuid.Build(t.Context(), fsys, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), diffID
}

func buildDir(t *testing.T, dir string) ([]byte, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	diffID, err := allowSetuid.BuildFromDir(t.Context(), dir, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), diffID
}

// readLayer decompresses a layer and returns its headers, checking that the
// diffID matches the uncompressed bytes.
func readLayer(t *testing.T, layer []byte, diffID digest.Digest) []*tar.Header {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); got != diffID {
		t.Fatalf("diffID = %s, digest of uncompressed tar = %s", diffID, got)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

func TestBuildGolden(t *testing.T) {
	layer, diffID := buildFS(t, layertest.MapFS(layertest.Tree))
	if diffID != goldenDiffID {
		t.Errorf("diffID = %s, want %s", diffID, goldenDiffID)
	}
	if got := digest.FromBytes(layer); got != goldenDigest {
		t.Errorf("digest = %s, want %s", got, goldenDigest)
	}
	again, diffID2 := buildFS(t, layertest.MapFS(layertest.Tree))
	if !bytes.Equal(layer, again) || diffID != diffID2 {
		t.Error("two builds of the same tree differ")
	}
}

func TestBuildFromDirMatchesFS(t *testing.T) {
	dir := t.TempDir()
	layertest.WriteDir(t, dir, layertest.Tree)
	got, gotDiffID := buildDir(t, dir)
	want, wantDiffID := buildFS(t, layertest.MapFS(layertest.Tree))
	if gotDiffID != wantDiffID || !bytes.Equal(got, want) {
		t.Errorf("BuildFromDir: diffID %s, Build: %s; bytes equal: %v", gotDiffID, wantDiffID, bytes.Equal(got, want))
	}
}

func TestBuildEntries(t *testing.T) {
	layer, diffID := buildFS(t, layertest.MapFS(layertest.Tree))
	hdrs := readLayer(t, layer, diffID)
	if len(hdrs) != len(wantEntries) {
		var names []string
		for _, h := range hdrs {
			names = append(names, h.Name)
		}
		t.Fatalf("entries = %q, want %d entries", names, len(wantEntries))
	}
	for i, h := range hdrs {
		w := wantEntries[i]
		if h.Name != w.name || h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.linkname {
			t.Errorf("entry %d = %q type %q mode %o link %q, want %q type %q mode %o link %q",
				i, h.Name, h.Typeflag, h.Mode, h.Linkname, w.name, w.typ, w.mode, w.linkname)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and empty names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want mtime epoch only", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR (PAX only when needed)", h.Name, h.Format)
		}
	}
}

func TestBuildGzipHeader(t *testing.T) {
	layer, _ := buildFS(t, layertest.MapFS(layertest.Tree))
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.Extra != nil {
		t.Errorf("gzip header = %+v, want empty", zr.Header)
	}
}

func TestBuildNormalizesMetadata(t *testing.T) {
	dir := t.TempDir()
	layertest.WriteDir(t, dir, layertest.Tree)
	want, wantDiffID := buildDir(t, dir)

	// Other times and owners on disk must not change the layer.
	when := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, 1234, 5678); err != nil {
				return err
			}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		when = when.Add(time.Hour)
		return os.Chtimes(p, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
	// chown clears setuid and setgid; restore the modes.
	for _, f := range layertest.Tree {
		if f.Mode.Type() != fs.ModeSymlink {
			if err := os.Chmod(filepath.Join(dir, f.Name), f.Mode&^fs.ModeType); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, gotDiffID := buildDir(t, dir)
	if gotDiffID != wantDiffID || !bytes.Equal(got, want) {
		t.Errorf("after changing times and owners: diffID %s, want %s", gotDiffID, wantDiffID)
	}
}

func TestBuildLongNames(t *testing.T) {
	long := strings.Repeat("x", 150)
	deep := strings.Repeat("abcdefghij/", 30) + "file"
	tree := fstest.MapFS{
		long:    {Data: []byte("long"), Mode: 0o644},
		deep:    {Data: []byte("deep"), Mode: 0o644},
		"ünï":   {Data: []byte("utf8"), Mode: 0o644},
		"short": {Data: []byte("short"), Mode: 0o644},
	}
	layer, diffID := buildFS(t, tree)
	found := map[string]tar.Format{}
	for _, h := range readLayer(t, layer, diffID) {
		found[h.Name] = h.Format
	}
	for _, name := range []string{long, deep, "ünï"} {
		if f, ok := found[name]; !ok || f != tar.FormatPAX {
			t.Errorf("%s...: present %v, format %v; want PAX", name[:min(len(name), 20)], ok, f)
		}
	}
	if f := found["short"]; f != tar.FormatUSTAR {
		t.Errorf("short: format %v, want USTAR", f)
	}
}

func TestBuildRefusesSpecialFiles(t *testing.T) {
	t.Run("fs device", func(t *testing.T) {
		fsys := fstest.MapFS{"dev/null": {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}}
		_, err := layer.Build(t.Context(), fsys, io.Discard)
		var ue *layer.UnsupportedFileError
		if !errors.As(err, &ue) || ue.Path != "dev/null" || ue.Kind != "character device" {
			t.Fatalf("err = %v, want *UnsupportedFileError for dev/null", err)
		}
	})
	special := map[string]func(p string) error{
		"fifo": func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"socket": func(p string) error {
			l, err := net.Listen("unix", p)
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			return nil
		},
		"char device": func(p string) error { return syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3) },
	}
	for name, mk := range special {
		t.Run(name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "envreg-special-") // short: socket paths are limited
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := mk(filepath.Join(dir, "sub", "x")); err != nil {
				t.Skipf("cannot create a %s here: %v", name, err)
			}
			_, err = layer.BuildFromDir(t.Context(), dir, io.Discard)
			var ue *layer.UnsupportedFileError
			if !errors.As(err, &ue) || ue.Path != "sub/x" {
				t.Fatalf("err = %v, want *UnsupportedFileError for sub/x", err)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "sub/x") {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

func TestBuildRefusesWhiteouts(t *testing.T) {
	fsys := fstest.MapFS{"etc/.wh.passwd": {Mode: 0o644}}
	if _, err := layer.Build(t.Context(), fsys, io.Discard); err == nil || !strings.Contains(err.Error(), "whiteout") {
		t.Fatalf("err = %v, want a whiteout error", err)
	}
}

func TestBuildFromDirHardLinks(t *testing.T) {
	linked, copied := t.TempDir(), t.TempDir()
	for _, dir := range []string{linked, copied} {
		if err := os.WriteFile(filepath.Join(dir, "a"), []byte("same"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(linked, "a"), filepath.Join(linked, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copied, "b"), []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, ld := buildDir(t, linked)
	c, cd := buildDir(t, copied)
	if ld != cd || !bytes.Equal(l, c) {
		t.Errorf("hard-linked tree %s != copied tree %s", ld, cd)
	}
}

func TestNormalizeTarMatchesDirBuild(t *testing.T) {
	dir := t.TempDir()
	layertest.WriteDir(t, dir, layertest.Tree)
	want, wantDiffID := buildDir(t, dir)
	for _, compress := range []bool{true, false} {
		in := layertest.MessyTar(t, layertest.TreeTar(), compress)
		var out bytes.Buffer
		diffID, err := allowSetuid.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
		if err != nil {
			t.Fatalf("compressed %v: %v", compress, err)
		}
		if diffID != wantDiffID || !bytes.Equal(out.Bytes(), want) {
			t.Errorf("compressed %v: diffID %s, want %s (dir build)", compress, diffID, wantDiffID)
		}
	}
}

func TestNormalizeTarHardLinksAndParents(t *testing.T) {
	in := layertest.MessyTar(t, []layertest.TarEntry{
		{Header: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg, Mode: 0o640}, Data: "content"},
		{Header: tar.Header{Name: "a/d", Typeflag: tar.TypeLink, Linkname: "./a/b/c", Mode: 0o777}},
	}, false)
	var out bytes.Buffer
	diffID, err := layer.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want, wantDiffID := buildFS(t, fstest.MapFS{
		"a":     {Mode: fs.ModeDir | 0o755},
		"a/b":   {Mode: fs.ModeDir | 0o755},
		"a/b/c": {Data: []byte("content"), Mode: 0o640},
		"a/d":   {Data: []byte("content"), Mode: 0o640},
	})
	if diffID != wantDiffID || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("diffID %s, want %s", diffID, wantDiffID)
	}
}

func TestNormalizeTarRefuses(t *testing.T) {
	reg := func(name string) layertest.TarEntry {
		return layertest.TarEntry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, Data: "x"}
	}
	tests := []struct {
		name    string
		entries []layertest.TarEntry
		want    string
	}{
		{"absolute", []layertest.TarEntry{reg("/etc/passwd")}, "absolute"},
		{"escape", []layertest.TarEntry{reg("a/../../etc/passwd")}, "escapes the root"},
		{"duplicate", []layertest.TarEntry{reg("a"), reg("a")}, `duplicate entry "a"`},
		{"duplicate after cleaning", []layertest.TarEntry{
			{Header: tar.Header{Name: "./d/", Typeflag: tar.TypeDir, Mode: 0o755}},
			{Header: tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755}},
		}, `duplicate entry "d"`},
		{"char device", []layertest.TarEntry{{Header: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666}}}, "dev/null: character device"},
		{"fifo", []layertest.TarEntry{{Header: tar.Header{Name: "run/p", Typeflag: tar.TypeFifo, Mode: 0o666}}}, "run/p: named pipe"},
		{"dangling hard link", []layertest.TarEntry{{Header: tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"}}}, "hard link b"},
		{"below a file", []layertest.TarEntry{reg("a"), reg("a/b")}, "parent a is not a directory"},
		{"below a symlink", []layertest.TarEntry{
			{Header: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
			reg("l/passwd"),
		}, "parent l is not a directory"},
		{"whiteout", []layertest.TarEntry{reg("etc/.wh.passwd")}, "whiteout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := layertest.MessyTar(t, tc.entries, true)
			_, err := layer.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
