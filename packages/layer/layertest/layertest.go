// Package layertest holds the test inputs of package layer that other
// packages' tests use too: a small tree with the interesting cases, tars
// written with messy metadata, and the hostile tars and directory trees
// every path that builds a layer must refuse (layer's own functions, the
// publishing job, the registry). Like layerstoretest, it is imported by
// tests only.
package layertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/envreg/envreg/packages/layer"
)

// File is one file of a test tree. For symbolic links Data is the
// target.
type File struct {
	Name string
	Mode fs.FileMode
	Data string
}

// Tree is a small tree with the interesting cases: tree order
// ("usr/local/bin" before "usr/local-note"), a symlink, setuid and sticky
// bits, and a private file. The default Policy refuses its setuid file, so
// the tests that build it allow setuid.
var Tree = []File{
	{"etc", fs.ModeDir | 0o755, ""},
	{"etc/os-release", 0o644, "ID=envreg\nVERSION_ID=12\n"},
	{"tmp", fs.ModeDir | fs.ModeSticky | 0o777, ""},
	{"usr", fs.ModeDir | 0o755, ""},
	{"usr/local", fs.ModeDir | 0o755, ""},
	{"usr/local/bin", fs.ModeDir | 0o755, ""},
	{"usr/local/bin/hello", 0o755, "#!/bin/sh\necho hello\n"},
	{"usr/local/bin/hi", fs.ModeSymlink | 0o777, "hello"},
	{"usr/local/bin/su-ish", fs.ModeSetuid | 0o755, "setuid\n"},
	{"usr/local-note", 0o600, "note\n"},
}

// MapFS is tree as an fs.FS.
func MapFS(tree []File) fstest.MapFS {
	m := fstest.MapFS{}
	for _, f := range tree {
		m[f.Name] = &fstest.MapFile{Data: []byte(f.Data), Mode: f.Mode}
	}
	return m
}

// WriteDir writes tree into the existing directory dir, modes included.
func WriteDir(t testing.TB, dir string, tree []File) {
	t.Helper()
	for _, f := range tree {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		switch f.Mode.Type() {
		case fs.ModeDir:
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case fs.ModeSymlink:
			if err := os.Symlink(f.Data, p); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			if err := os.WriteFile(p, []byte(f.Data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, f.Mode&^fs.ModeType); err != nil {
			t.Fatal(err)
		}
	}
}

// TarEntry is one entry of a hand-made input tar.
type TarEntry struct {
	Header tar.Header
	Data   string
}

// MessyTar writes entries in the given order with non-canonical metadata.
func MessyTar(t testing.TB, entries []TarEntry, compress bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if compress {
		zw = gzip.NewWriter(&buf)
		zw.Name = "input.tar"
		zw.ModTime = time.Now()
		w = zw
	}
	tw := tar.NewWriter(w)
	for i, e := range entries {
		h := e.Header
		h.Size = int64(len(e.Data))
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2020, 1, 1, 0, 0, i, 500, time.UTC)
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 1000, 1000, "alice", "staff"
		h.PAXRecords = map[string]string{"SCHILY.xattr.user.note": "x"}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TreeTar is Tree as tar entries, shuffled, with "./" prefixes and
// a root entry.
func TreeTar() []TarEntry {
	var out []TarEntry
	for i, f := range slices.Backward(Tree) {
		h := tar.Header{Name: f.Name, Mode: int64(f.Mode.Perm())}
		if i%2 == 0 {
			h.Name = "./" + h.Name
		}
		if f.Mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		data := f.Data
		switch f.Mode.Type() {
		case fs.ModeDir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case fs.ModeSymlink:
			h.Typeflag, h.Linkname, h.Mode, data = tar.TypeSymlink, f.Data, 0o755, ""
		default:
			h.Typeflag = tar.TypeReg
		}
		out = append(out, TarEntry{Header: h, Data: data})
	}
	// Children before parents is legal in a tar; put one file first.
	out[0], out[len(out)-2] = out[len(out)-2], out[0]
	return append([]TarEntry{{Header: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700}}}, out...)
}

// Hostile is one tar that every path building a layer must refuse,
// under Policy, with the Rule and Path a *layer.RefusedError names.
type Hostile struct {
	Name   string
	Input  func(t testing.TB) []byte
	Policy layer.Policy
	Rule   layer.Rule // "" for an *UnsupportedFileError
	Path   string     // the entry the error must name ("" for the whole input)
}

// Reg is a regular file (0644) holding data.
func Reg(name, data string) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, Data: data}
}

// Dir is a directory.
func Dir(name string, mode int64) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}

// Link is a hard (tar.TypeLink) or symbolic (tar.TypeSymlink) link.
func Link(name string, typ byte, target string) TarEntry {
	return TarEntry{Header: tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777}}
}

// WithMode is e with another mode.
func WithMode(e TarEntry, mode int64) TarEntry {
	e.Header.Mode = mode
	return e
}

func gzTar(entries ...TarEntry) func(t testing.TB) []byte {
	return func(t testing.TB) []byte { return MessyTar(t, entries, true) }
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugeHeader is a tar whose only header claims size bytes of content that
// do not follow: the limits must refuse it from the header alone.
func hugeHeader(typ byte, size int64) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: typ, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		// No content and no Close: the reader must not get that far.
		return Gzip(t, buf.Bytes())
	}
}

// sparseBomb is a sparse file in the PAX GNU 1.0 format claiming 1 TiB
// with one byte of data: four blocks of input that would unpack to 1 TiB.
// archive/tar writes no sparse files, so the blocks are made by hand.
func sparseBomb(t testing.TB) []byte {
	var pax bytes.Buffer
	for _, kv := range [][2]string{
		{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "big"}, {"GNU.sparse.realsize", "1099511627776"},
	} {
		pax.WriteString(paxRecord(kv[0], kv[1]))
	}
	sparseMap := make([]byte, 512)
	copy(sparseMap, "1\n1099511627775\n1\n") // one data byte, at the end
	var out bytes.Buffer
	out.Write(RawHeader("PaxHeaders/big", tar.TypeXHeader, int64(pax.Len())))
	out.Write(PadBlock(pax.Bytes()))
	out.Write(RawHeader("GNUSparseFile.0/big", tar.TypeReg, 513))
	out.Write(sparseMap)
	out.Write(PadBlock([]byte("x")))
	out.Write(make([]byte, 1024))
	return Gzip(t, out.Bytes())
}

// paxRecord formats one PAX record: "LEN key=value\n", LEN counting itself.
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(strconv.Itoa(n))+len(rec) != n {
		n++
	}
	return strconv.Itoa(n) + rec
}

// RawHeader is a USTAR header block.
func RawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// PadBlock pads b to a whole number of tar blocks.
func PadBlock(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// HostileTars are the tars that must be refused.
var HostileTars = []Hostile{
	{Name: "absolute path", Input: gzTar(Reg("/etc/passwd", "x")), Rule: layer.RuleAbsolute, Path: "/etc/passwd"},
	{Name: "dotdot escape", Input: gzTar(Reg("../etc/passwd", "x")), Rule: layer.RuleDotDot, Path: "../etc/passwd"},
	{Name: "dotdot escape inside", Input: gzTar(Reg("a/../../etc/passwd", "x")), Rule: layer.RuleDotDot, Path: "a/../../etc/passwd"},
	{Name: "dotdot within root", Input: gzTar(Reg("a/../b", "x")), Rule: layer.RuleDotDot, Path: "a/../b"},
	{Name: "hard link to absolute path", Input: gzTar(Link("shadow", tar.TypeLink, "/etc/shadow")), Rule: layer.RuleHardLink, Path: "shadow"},
	{Name: "hard link escaping", Input: gzTar(Link("shadow", tar.TypeLink, "../../etc/shadow")), Rule: layer.RuleHardLink, Path: "shadow"},
	{Name: "hard link to a later entry", Input: gzTar(Link("b", tar.TypeLink, "a"), Reg("a", "x")), Rule: layer.RuleHardLink, Path: "b"},
	{Name: "hard link to a directory", Input: gzTar(Dir("d/", 0o755), Link("b", tar.TypeLink, "d")), Rule: layer.RuleHardLink, Path: "b"},
	{Name: "write through absolute symlink", Input: gzTar(Link("etc", tar.TypeSymlink, "/etc"), Reg("etc/passwd", "root::0:0::/:/bin/sh\n")),
		Rule: layer.RuleThroughSymlink, Path: "etc/passwd"},
	{Name: "write through symlink listed later", Input: gzTar(Reg("l/x", "x"), Link("l", tar.TypeSymlink, "../../..")),
		Rule: layer.RuleThroughSymlink, Path: "l/x"},
	{Name: "write through nested symlink", Input: gzTar(Link("a", tar.TypeSymlink, "/"), Reg("a/b/c", "x")),
		Rule: layer.RuleThroughSymlink, Path: "a/b/c"},
	{Name: "below a file", Input: gzTar(Reg("a", "x"), Reg("a/b", "y")), Rule: layer.RuleNotDirectory, Path: "a/b"},
	{Name: "character device", Input: gzTar(TarEntry{Header: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666}}), Path: "dev/null"},
	{Name: "block device", Input: gzTar(TarEntry{Header: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660}}), Path: "dev/sda"},
	{Name: "fifo", Input: gzTar(TarEntry{Header: tar.Header{Name: "run/p", Typeflag: tar.TypeFifo, Mode: 0o644}}), Path: "run/p"},
	{Name: "duplicate", Input: gzTar(Reg("a", "1"), Reg("a", "2")), Rule: layer.RuleDuplicate, Path: "a"},
	{Name: "duplicate after cleaning", Input: gzTar(Reg("./b/c", "1"), Reg("b//c", "2")), Rule: layer.RuleDuplicate, Path: "b//c"},
	{Name: "duplicate directory and symlink", Input: gzTar(Dir("d/", 0o755), Link("d", tar.TypeSymlink, "/etc")), Rule: layer.RuleDuplicate, Path: "d"},
	{Name: "whiteout", Input: gzTar(Reg("etc/.wh.passwd", "")), Rule: layer.RuleWhiteout, Path: "etc/.wh.passwd"},
	{Name: "opaque whiteout", Input: gzTar(Reg("usr/.wh..wh..opq", "")), Rule: layer.RuleWhiteout, Path: "usr/.wh..wh..opq"},
	{Name: "whiteout as a parent", Input: gzTar(Reg("usr/.wh.lib/x", "")), Rule: layer.RuleWhiteout, Path: "usr/.wh.lib/x"},
	{Name: "whiteout directory", Input: gzTar(Dir(".wh.etc/", 0o755)), Rule: layer.RuleWhiteout, Path: ".wh.etc"},
	{Name: "setuid file", Input: gzTar(WithMode(Reg("bin/sh", "#!"), 0o4755)), Rule: layer.RuleSetuid, Path: "bin/sh"},
	{Name: "setgid file", Input: gzTar(WithMode(Reg("bin/sh", "#!"), 0o2755)), Rule: layer.RuleSetuid, Path: "bin/sh"},
	{Name: "hard link to a setuid file", Input: gzTar(WithMode(Reg("bin/su", "#!"), 0o6755), Link("bin/sudo", tar.TypeLink, "bin/su")),
		Rule: layer.RuleSetuid, Path: "bin/su"},
	// A hard link's own header is applied to its target by extractors
	// that chmod links (issue 15): the canonical form makes the Link a
	// copy with its target's mode, but such input is refused all the same.
	{Name: "setuid hard link header", Input: gzTar(WithMode(Reg("usr/bin/env", "#!"), 0o755), WithMode(Link("usr/bin/env-suid", tar.TypeLink, "usr/bin/env"), 0o4755)),
		Rule: layer.RuleSetuid, Path: "usr/bin/env-suid"},
	{Name: "setgid hard link header", Input: gzTar(WithMode(Reg("usr/bin/env", "#!"), 0o755), WithMode(Link("usr/bin/env-sgid", tar.TypeLink, "./usr/bin/env"), 0o2711)),
		Rule: layer.RuleSetuid, Path: "usr/bin/env-sgid"},
	{Name: "entry over the default size limit", Input: hugeHeader(tar.TypeReg, layer.DefaultMaxEntrySize+1), Rule: layer.RuleEntrySize, Path: "big"},
	{Name: "entry over a configured size limit", Input: gzTar(Reg("a", "12345678901")), Policy: layer.Policy{MaxEntrySize: 10},
		Rule: layer.RuleEntrySize, Path: "a"},
	{Name: "sparse entry over the size limit", Input: sparseBomb, Rule: layer.RuleEntrySize, Path: "big"},
	{Name: "total over the limit", Input: gzTar(Reg("a", strings.Repeat("a", 60000)), Reg("b", strings.Repeat("b", 60000))),
		Policy: layer.Policy{MaxTotalSize: 100000}, Rule: layer.RuleTotalSize, Path: "b"},
	{Name: "uncompressed stream over the limit", Input: gzTar(Reg("a", strings.Repeat("a", 600)), Reg("b", strings.Repeat("b", 600))),
		Policy: layer.Policy{MaxTotalSize: 3000}, Rule: layer.RuleTotalSize, Path: "a"},
	{Name: "hard link copies over the total limit", Input: gzTar(Reg("a", strings.Repeat("a", 4000)),
		Link("b", tar.TypeLink, "a"), Link("c", tar.TypeLink, "a"), Link("d", tar.TypeLink, "a")),
		Policy: layer.Policy{MaxTotalSize: 10000}, Rule: layer.RuleTotalSize, Path: "c"},
	{Name: "too many entries", Input: gzTar(Reg("a", ""), Reg("b", ""), Reg("c", ""), Reg("d", "")),
		Policy: layer.Policy{MaxEntries: 3}, Rule: layer.RuleEntries, Path: "d"},
	{Name: "names over the average per entry", Input: func(t testing.TB) []byte {
		var es []TarEntry
		for i := range 6 { // 451-byte names: 2,706 bytes, over 10 × 256
			es = append(es, Reg(strings.Repeat("a", 200)+"/"+strings.Repeat("b", 249)+strconv.Itoa(i), ""))
		}
		return MessyTar(t, es, true)
	}, Policy: layer.Policy{MaxEntries: 10}, Rule: layer.RuleNameLength, Path: strings.Repeat("a", 200) + "/" + strings.Repeat("b", 249) + "5"},
	{Name: "path over PATH_MAX", Input: gzTar(Reg(strings.Repeat("a/", 2048)+"f", "")), Rule: layer.RuleNameLength, Path: strings.Repeat("a/", 2048) + "f"},
	{Name: "component over NAME_MAX", Input: gzTar(Reg("etc/"+strings.Repeat("n", 256), "")), Rule: layer.RuleNameLength, Path: "etc/" + strings.Repeat("n", 256)},
	{Name: "symlink target over PATH_MAX", Input: gzTar(Link("l", tar.TypeSymlink, strings.Repeat("t/", 2049))), Rule: layer.RuleNameLength, Path: "l"},
	{Name: "implied directories count as entries", Input: gzTar(Reg(strings.Repeat("d/", 200)+"f", "")),
		Policy: layer.Policy{MaxEntries: 100}, Rule: layer.RuleEntries, Path: strings.Repeat("d/", 200) + "f"},
	{Name: "gzip bomb after the tar", Input: func(t testing.TB) []byte {
		// A valid tar followed by 8 MiB of zeros: 8 KiB compressed.
		plain := MessyTar(t, []TarEntry{Reg("a", "x")}, false)
		return Gzip(t, append(plain, make([]byte, 8<<20)...))
	}, Policy: layer.Policy{MaxTotalSize: 1 << 20}, Rule: layer.RuleTotalSize, Path: "a"},
	{Name: "gzip bomb in a file", Input: func(t testing.TB) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 64 << 20}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, 64<<20)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return Gzip(t, buf.Bytes())
	}, Policy: layer.Policy{MaxEntrySize: 1 << 20}, Rule: layer.RuleEntrySize, Path: "zeros"},
	{Name: "not gzip despite the gzip magic", Input: func(t testing.TB) []byte {
		return append([]byte{0x1f, 0x8b}, []byte("this is not deflate data at all, just text")...)
	}, Rule: layer.RuleMalformed},
	{Name: "gzip with a corrupt checksum", Input: func(t testing.TB) []byte {
		b := MessyTar(t, []TarEntry{Reg("a", "x")}, true)
		b[len(b)-6] ^= 0xff // CRC-32 in the trailer
		return b
	}, Rule: layer.RuleMalformed, Path: "a"},
	{Name: "gzip with a corrupt stream", Input: func(t testing.TB) []byte {
		b := MessyTar(t, []TarEntry{Reg("a", strings.Repeat("abc", 1000))}, true)
		for i := 20; i < len(b)-8; i += 7 {
			b[i] ^= 0x55
		}
		return b
	}, Rule: layer.RuleMalformed},
	{Name: "gzip with trailing garbage", Input: func(t testing.TB) []byte {
		return append(MessyTar(t, []TarEntry{Reg("a", "x")}, true), []byte("garbage after the gzip member")...)
	}, Rule: layer.RuleMalformed, Path: "a"},
	{Name: "zstd", Input: func(t testing.TB) []byte { return []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0} }, Rule: layer.RuleMalformed},
	{Name: "bzip2", Input: func(t testing.TB) []byte { return []byte("BZh91AY&SY\x00\x01") }, Rule: layer.RuleMalformed},
	{Name: "empty input", Input: func(t testing.TB) []byte { return nil }, Rule: layer.RuleMalformed},
	{Name: "text, not a tar", Input: func(t testing.TB) []byte { return bytes.Repeat([]byte("hello tar\n"), 100) }, Rule: layer.RuleMalformed},
}

// CheckRefused checks that err refuses the input under rule (or as an
// *UnsupportedFileError when rule is ""), naming path.
func CheckRefused(t testing.TB, err error, rule layer.Rule, path string) {
	t.Helper()
	if !errors.Is(err, layer.ErrRefused) {
		t.Fatalf("err = %v, want an error wrapping layer.ErrRefused", err)
	}
	if rule == "" {
		var ue *layer.UnsupportedFileError
		if !errors.As(err, &ue) || ue.Path != path {
			t.Fatalf("err = %v, want *UnsupportedFileError for %s", err, path)
		}
	} else {
		var re *layer.RefusedError
		if !errors.As(err, &re) || re.Rule != rule || re.Path != path {
			t.Fatalf("err = %v (%#v), want *RefusedError rule %s path %q", err, re, rule, path)
		}
	}
	named := path
	if len(named) > 100 {
		named = named[:60] // messages shorten long names
	}
	if named != "" && !strings.Contains(err.Error(), named) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

// HostileDir is one directory tree that every path building a layer
// from a directory must refuse.
type HostileDir struct {
	Name   string
	Make   func(t testing.TB, dir string) // writes the tree into dir
	Policy layer.Policy
	Rule   layer.Rule
	Path   string
}

// MakeFile writes a file, and its parents, with mode.
func MakeFile(t testing.TB, name string, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

// HostileDirs are the directory trees that must be refused.
var HostileDirs = []HostileDir{
	{Name: "setuid file", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "bin/sh"), "#!", 0o755|fs.ModeSetuid)
	}, Rule: layer.RuleSetuid, Path: "bin/sh"},
	{Name: "setgid file", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "bin/sh"), "#!", 0o755|fs.ModeSetgid)
	}, Rule: layer.RuleSetuid, Path: "bin/sh"},
	{Name: "hard link to a file outside", Make: func(t testing.TB, dir string) {
		outside := filepath.Join(t.TempDir(), "secret")
		MakeFile(t, outside, "secret", 0o600)
		if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(outside, filepath.Join(dir, "etc/secret")); err != nil {
			t.Skipf("cannot make hard links here: %v", err)
		}
	}, Rule: layer.RuleHardLink, Path: "etc/secret"},
	{Name: "whiteout", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "etc/.wh.passwd"), "", 0o644)
	}, Rule: layer.RuleWhiteout, Path: "etc/.wh.passwd"},
	{Name: "whiteout directory", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "usr/.wh.lib/x"), "", 0o644)
	}, Rule: layer.RuleWhiteout, Path: "usr/.wh.lib"},
	{Name: "file over the size limit", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "big"), strings.Repeat("x", 2000), 0o644)
	}, Policy: layer.Policy{MaxEntrySize: 1000}, Rule: layer.RuleEntrySize, Path: "big"},
	{Name: "total over the limit", Make: func(t testing.TB, dir string) {
		MakeFile(t, filepath.Join(dir, "a"), strings.Repeat("x", 600), 0o644)
		MakeFile(t, filepath.Join(dir, "b"), strings.Repeat("x", 600), 0o644)
	}, Policy: layer.Policy{MaxTotalSize: 1000}, Rule: layer.RuleTotalSize, Path: "b"},
	{Name: "too many entries", Make: func(t testing.TB, dir string) {
		for _, n := range []string{"a", "b", "c"} {
			MakeFile(t, filepath.Join(dir, n), "", 0o644)
		}
	}, Policy: layer.Policy{MaxEntries: 2}, Rule: layer.RuleEntries, Path: "c"},
}

// PushedEntry is one entry of a layer written as it is (PushedTar): a
// regular file with Content, a link to Content, or a directory.
type PushedEntry struct {
	Name    string
	Mode    int64
	Type    byte
	Content string // a regular file's content, a link's target
	PAX     map[string]string
	UID     int
	GID     int
	Uname   string
}

// PushedTar writes entries as they are given, in PAX format, as a
// gzip-compressed layer: what a client pushes.
func PushedTar(t testing.TB, ents ...PushedEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Typeflag: e.Type, PAXRecords: e.PAX, Uid: e.UID, Gid: e.GID, Uname: e.Uname, Format: tar.FormatPAX}
		switch e.Type {
		case tar.TypeReg:
			h.Size = int64(len(e.Content))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.Content
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.Type == tar.TypeReg {
			tw.Write([]byte(e.Content))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
