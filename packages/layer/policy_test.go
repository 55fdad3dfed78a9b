package layer_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

func TestNormalizeTarRefusesHostileInput(t *testing.T) {
	for _, tc := range layertest.HostileTars {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := tc.Policy.NormalizeTar(t.Context(), bytes.NewReader(tc.Input(t)), io.Discard)
			layertest.CheckRefused(t, err, tc.Rule, tc.Path)
		})
	}
}

// TestNormalizeTarAcceptsSafeLinks: symbolic links are recorded, never
// followed, so absolute and upward targets are fine (Debian ships
// /etc/alternatives links); so are setgid and sticky directories, and
// setuid files when the policy allows them.
func TestNormalizeTarAcceptsSafeLinks(t *testing.T) {
	in := layertest.MessyTar(t, []layertest.TarEntry{
		layertest.Link("etc/alternatives/editor", tar.TypeSymlink, "/usr/bin/vim.basic"),
		layertest.Link("etc/localtime", tar.TypeSymlink, "../usr/share/zoneinfo/Etc/UTC"),
		layertest.Link("root", tar.TypeSymlink, "../../../../.."),
		layertest.Dir("var/local/", 0o2775),
		layertest.Dir("tmp/", 0o1777),
		layertest.Reg("a/b", "x"),
		layertest.Link("a/c", tar.TypeLink, "./a/b"),
	}, true)
	var out bytes.Buffer
	diffID, err := layer.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	for _, h := range readLayer(t, out.Bytes(), diffID) {
		got[h.Name] = h
	}
	for name, want := range map[string]string{
		"etc/alternatives/editor": "/usr/bin/vim.basic",
		"etc/localtime":           "../usr/share/zoneinfo/Etc/UTC",
		"root":                    "../../../../..",
	} {
		if h := got[name]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != want {
			t.Errorf("%s = %+v, want a symlink to %s", name, h, want)
		}
	}
	if h := got["var/local/"]; h == nil || h.Mode != 0o2775 {
		t.Errorf("var/local/ = %+v, want mode 2775", h)
	}
	if h := got["a/c"]; h == nil || h.Typeflag != tar.TypeReg || h.Size != 1 {
		t.Errorf("a/c = %+v, want a copy of a/b", h)
	}

	suid := layertest.MessyTar(t, []layertest.TarEntry{layertest.WithMode(layertest.Reg("bin/su", "#!"), 0o4755)}, true)
	out.Reset()
	diffID, err = layer.Policy{AllowSetuid: true}.NormalizeTar(t.Context(), bytes.NewReader(suid), &out)
	if err != nil {
		t.Fatal(err)
	}
	if hs := readLayer(t, out.Bytes(), diffID); len(hs) != 2 || hs[1].Name != "bin/su" || hs[1].Mode != 0o4755 {
		t.Errorf("with AllowSetuid: entries %+v, want bin/su mode 4755", hs)
	}
}

// TestNormalizeTarDeepPath: the deepest path Linux allows is accepted, and
// its 2,047 implied directories are in the layer. (Before the limits, one
// entry of 16 KB of "a/" took seconds and a megabyte name hours, writing
// gigabytes of directory headers: the parent walk was quadratic.)
func TestNormalizeTarDeepPath(t *testing.T) {
	name := strings.Repeat("a/", 2047) + "f" // 4095 bytes
	in := layertest.MessyTar(t, []layertest.TarEntry{layertest.Reg(name, "deep")}, true)
	var out bytes.Buffer
	diffID, err := layer.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	hs := readLayer(t, out.Bytes(), diffID)
	if len(hs) != 2048 || hs[2047].Name != name {
		t.Fatalf("%d entries, want 2047 directories and the file", len(hs))
	}
	pol := layer.Policy{MaxEntries: 2047}
	if _, err := pol.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); !errors.Is(err, layer.ErrRefused) {
		t.Fatalf("with 2047 entries allowed: %v, want a refusal", err)
	}
	pol.MaxEntries = 2048
	if _, err := pol.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
		t.Fatalf("with 2048 entries allowed: %v", err)
	}
}

// TestNormalizeTarNotCompressed: a plain tar whose first name starts like
// a compression magic is still a tar.
func TestNormalizeTarNotCompressed(t *testing.T) {
	for _, name := range []string{"BZh91AY", "BZhello"} {
		in := append(layertest.RawHeader(name, tar.TypeReg, 1), layertest.PadBlock([]byte("x"))...)
		in = append(in, make([]byte, 1024)...)
		if _, err := layer.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNormalizeTarLimitsExact: input exactly at a limit passes.
func TestNormalizeTarLimitsExact(t *testing.T) {
	in := layertest.MessyTar(t, []layertest.TarEntry{layertest.Reg("a", "12345"), layertest.Reg("b", "12345")}, false)
	pol := layer.Policy{MaxEntries: 2, MaxEntrySize: 5, MaxTotalSize: int64(len(in))}
	if _, err := pol.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	unlimited := layer.Policy{MaxEntries: -1, MaxEntrySize: -1, MaxTotalSize: -1}
	if _, err := unlimited.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
		t.Fatalf("no limits: %v", err)
	}
}

func TestBuildFromDirRefusesHostileTrees(t *testing.T) {
	for _, tc := range layertest.HostileDirs {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			tc.Make(t, dir)
			_, err := tc.Policy.BuildFromDir(t.Context(), dir, io.Discard)
			layertest.CheckRefused(t, err, tc.Rule, tc.Path)
		})
	}
}

// TestBuildFromDirSymlinksNotFollowed: a symbolic link to a directory
// outside the tree is recorded as a link; nothing behind it is read.
func TestBuildFromDirSymlinksNotFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	layertest.MakeFile(t, filepath.Join(outside, "secret"), "secret", 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	layertest.MakeFile(t, filepath.Join(dir, "var/local/.keep"), "", 0o644)
	if err := os.Chmod(filepath.Join(dir, "var/local"), 0o2775|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	diffID, err := layer.BuildFromDir(t.Context(), dir, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range readLayer(t, buf.Bytes(), diffID) {
		names = append(names, h.Name)
		if strings.Contains(h.Name, "secret") {
			t.Errorf("layer holds %s from behind a symlink", h.Name)
		}
		if h.Name == "out" && (h.Typeflag != tar.TypeSymlink || h.Linkname != outside) {
			t.Errorf("out = %+v, want a symlink to %s", h, outside)
		}
		if h.Name == "var/local/" && h.Mode != 0o2775 {
			t.Errorf("var/local/ mode %o, want 2775 (setgid directories are allowed)", h.Mode)
		}
	}
	if want := "out passwd var/ var/local/ var/local/.keep"; strings.Join(names, " ") != want {
		t.Errorf("entries %q, want %q", names, want)
	}
}
