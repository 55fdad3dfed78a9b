package layer_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// treeEntries is layertest.Tree as entries for Write, in reverse order,
// without the directory usr/local (Write adds it) and with a symbolic
// link of mode 0 (Write makes it 0777).
func treeEntries() []layer.Entry {
	var out []layer.Entry
	for _, f := range slices.Backward(layertest.Tree) {
		e := layer.Entry{Name: f.Name, Mode: int64(f.Mode.Perm())}
		if f.Mode&fs.ModeSetuid != 0 {
			e.Mode |= 0o4000
		}
		if f.Mode&fs.ModeSticky != 0 {
			e.Mode |= 0o1000
		}
		switch f.Mode.Type() {
		case fs.ModeDir:
			if f.Name == "usr/local" {
				continue
			}
			e.Type = tar.TypeDir
		case fs.ModeSymlink:
			e.Type, e.Linkname, e.Mode = tar.TypeSymlink, f.Data, 0
		default:
			data := f.Data
			e.Type, e.Size = tar.TypeReg, int64(len(data))
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
		}
		out = append(out, e)
	}
	return out
}

// TestWriteGolden: entries in any order give the canonical layer of the
// same tree, byte for byte the one Build writes, and the caller's slice
// is left as it was.
func TestWriteGolden(t *testing.T) {
	entries := treeEntries()
	before := slices.Clone(entries)
	var buf bytes.Buffer
	diffID, err := layer.Write(t.Context(), entries, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if diffID != goldenDiffID {
		t.Errorf("diffID = %s, want %s", diffID, goldenDiffID)
	}
	if got := digest.FromBytes(buf.Bytes()); got != goldenDigest {
		t.Errorf("digest = %s, want %s", got, goldenDigest)
	}
	if len(entries) != len(before) {
		t.Fatalf("Write changed the length of its argument")
	}
	for i := range entries {
		if entries[i].Name != before[i].Name || entries[i].Mode != before[i].Mode {
			t.Fatalf("Write changed its argument: entry %d is %q mode %o, was %q mode %o",
				i, entries[i].Name, entries[i].Mode, before[i].Name, before[i].Mode)
		}
	}
}

// TestWriteRefuses: what no layer may hold is refused, naming the entry.
func TestWriteRefuses(t *testing.T) {
	file := func(name string) layer.Entry {
		return layer.Entry{Name: name, Type: tar.TypeReg, Mode: 0o644,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }}
	}
	tests := []struct {
		name    string
		entries []layer.Entry
		rule    layer.Rule // "" for an *UnsupportedFileError
		path    string
	}{
		{"absolute", []layer.Entry{file("/etc/passwd")}, layer.RuleMalformed, "/etc/passwd"},
		{"dotdot", []layer.Entry{file("a/../../etc/passwd")}, layer.RuleMalformed, "a/../../etc/passwd"},
		{"unclean", []layer.Entry{file("a//b")}, layer.RuleMalformed, "a//b"},
		{"trailing slash", []layer.Entry{{Name: "d/", Type: tar.TypeDir, Mode: 0o755}}, layer.RuleMalformed, "d/"},
		{"empty name", []layer.Entry{file("")}, layer.RuleMalformed, ""},
		{"device", []layer.Entry{{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666}}, "", "dev/null"},
		{"hard link", []layer.Entry{file("a"), {Name: "b", Type: tar.TypeLink, Linkname: "a"}}, "", "b"},
		{"duplicate", []layer.Entry{file("a"), file("a")}, layer.RuleDuplicate, "a"},
		{"whiteout", []layer.Entry{file("etc/.wh.passwd")}, layer.RuleWhiteout, "etc/.wh.passwd"},
		{"below a symlink", []layer.Entry{{Name: "l", Type: tar.TypeSymlink, Linkname: "/etc"}, file("l/passwd")},
			layer.RuleThroughSymlink, "l/passwd"},
		{"below a file", []layer.Entry{file("a"), file("a/b")}, layer.RuleNotDirectory, "a/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := layer.Write(t.Context(), tc.entries, io.Discard)
			layertest.CheckRefused(t, err, tc.rule, tc.path)
		})
	}
	_, err := layer.Write(t.Context(), []layer.Entry{{Name: "f", Type: tar.TypeReg, Size: 1}}, io.Discard)
	if err == nil || errors.Is(err, layer.ErrRefused) || !strings.Contains(err.Error(), "Open is nil") {
		t.Errorf("a regular file without Open: %v, want a programming error, not a refusal", err)
	}
}

// TestReadTarThenWrite: ReadTar and Write give what NormalizeTar gives,
// and ReadTar refuses what NormalizeTar refuses.
func TestReadTarThenWrite(t *testing.T) {
	in := layertest.MessyTar(t, layertest.TreeTar(), true)
	var want bytes.Buffer
	wantID, err := allowSetuid.NormalizeTar(t.Context(), bytes.NewReader(in), &want)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := allowSetuid.ReadTar(t.Context(), bytes.NewReader(in), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	gotID, err := layer.Write(t.Context(), entries, &got)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != wantID || !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("ReadTar then Write: diffID %s, %d bytes; NormalizeTar: %s, %d bytes", gotID, got.Len(), wantID, want.Len())
	}
	for _, tc := range layertest.HostileTars {
		t.Run(tc.Name, func(t *testing.T) {
			entries, err := tc.Policy.ReadTar(t.Context(), bytes.NewReader(tc.Input(t)), t.TempDir())
			if err == nil {
				// Refusals of the whole tree (a duplicate after cleaning,
				// an entry below a symbolic link) come from Write.
				_, err = layer.Write(t.Context(), entries, io.Discard)
			}
			layertest.CheckRefused(t, err, tc.Rule, tc.Path)
		})
	}
}
