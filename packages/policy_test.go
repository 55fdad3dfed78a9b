package packages_test

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
	"strconv"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
)

// hostileTar is one input that publishing must refuse.
type hostileTar struct {
	name string
	in   func(t *testing.T) []byte
	pol  packages.Policy
	rule packages.Rule // "" for an *UnsupportedFileError
	path string        // the entry the error must name ("" for the whole input)
}

func reg(name, data string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data: data}
}

func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}

func link(name string, typ byte, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777}}
}

func withMode(e tarEntry, mode int64) tarEntry {
	e.hdr.Mode = mode
	return e
}

func gzTar(entries ...tarEntry) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return messyTar(t, entries, true) }
}

func gzipBytes(t *testing.T, b []byte) []byte {
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
func hugeHeader(typ byte, size int64) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: typ, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		// No content and no Close: the reader must not get that far.
		return gzipBytes(t, buf.Bytes())
	}
}

// sparseBomb is a sparse file in the PAX GNU 1.0 format claiming 1 TiB
// with one byte of data: four blocks of input that would unpack to 1 TiB.
// archive/tar writes no sparse files, so the blocks are made by hand.
func sparseBomb(t *testing.T) []byte {
	var pax bytes.Buffer
	for _, kv := range [][2]string{
		{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "big"}, {"GNU.sparse.realsize", "1099511627776"},
	} {
		pax.WriteString(paxRecord(kv[0], kv[1]))
	}
	sparseMap := make([]byte, 512)
	copy(sparseMap, "1\n1099511627775\n1\n") // one data byte, at the end
	var out bytes.Buffer
	out.Write(rawHeader("PaxHeaders/big", tar.TypeXHeader, int64(pax.Len())))
	out.Write(padBlock(pax.Bytes()))
	out.Write(rawHeader("GNUSparseFile.0/big", tar.TypeReg, 513))
	out.Write(sparseMap)
	out.Write(padBlock([]byte("x")))
	out.Write(make([]byte, 1024))
	return gzipBytes(t, out.Bytes())
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

// rawHeader is a USTAR header block.
func rawHeader(name string, typ byte, size int64) []byte {
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

func padBlock(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

var hostileTars = []hostileTar{
	{name: "absolute path", in: gzTar(reg("/etc/passwd", "x")), rule: packages.RuleAbsolute, path: "/etc/passwd"},
	{name: "dotdot escape", in: gzTar(reg("../etc/passwd", "x")), rule: packages.RuleDotDot, path: "../etc/passwd"},
	{name: "dotdot escape inside", in: gzTar(reg("a/../../etc/passwd", "x")), rule: packages.RuleDotDot, path: "a/../../etc/passwd"},
	{name: "dotdot within root", in: gzTar(reg("a/../b", "x")), rule: packages.RuleDotDot, path: "a/../b"},
	{name: "hard link to absolute path", in: gzTar(link("shadow", tar.TypeLink, "/etc/shadow")), rule: packages.RuleHardLink, path: "shadow"},
	{name: "hard link escaping", in: gzTar(link("shadow", tar.TypeLink, "../../etc/shadow")), rule: packages.RuleHardLink, path: "shadow"},
	{name: "hard link to a later entry", in: gzTar(link("b", tar.TypeLink, "a"), reg("a", "x")), rule: packages.RuleHardLink, path: "b"},
	{name: "hard link to a directory", in: gzTar(dirEntry("d/", 0o755), link("b", tar.TypeLink, "d")), rule: packages.RuleHardLink, path: "b"},
	{name: "write through absolute symlink", in: gzTar(link("etc", tar.TypeSymlink, "/etc"), reg("etc/passwd", "root::0:0::/:/bin/sh\n")),
		rule: packages.RuleThroughSymlink, path: "etc/passwd"},
	{name: "write through symlink listed later", in: gzTar(reg("l/x", "x"), link("l", tar.TypeSymlink, "../../..")),
		rule: packages.RuleThroughSymlink, path: "l/x"},
	{name: "write through nested symlink", in: gzTar(link("a", tar.TypeSymlink, "/"), reg("a/b/c", "x")),
		rule: packages.RuleThroughSymlink, path: "a/b/c"},
	{name: "below a file", in: gzTar(reg("a", "x"), reg("a/b", "y")), rule: packages.RuleNotDirectory, path: "a/b"},
	{name: "character device", in: gzTar(tarEntry{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666}}), path: "dev/null"},
	{name: "block device", in: gzTar(tarEntry{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660}}), path: "dev/sda"},
	{name: "fifo", in: gzTar(tarEntry{hdr: tar.Header{Name: "run/p", Typeflag: tar.TypeFifo, Mode: 0o644}}), path: "run/p"},
	{name: "duplicate", in: gzTar(reg("a", "1"), reg("a", "2")), rule: packages.RuleDuplicate, path: "a"},
	{name: "duplicate after cleaning", in: gzTar(reg("./b/c", "1"), reg("b//c", "2")), rule: packages.RuleDuplicate, path: "b//c"},
	{name: "duplicate directory and symlink", in: gzTar(dirEntry("d/", 0o755), link("d", tar.TypeSymlink, "/etc")), rule: packages.RuleDuplicate, path: "d"},
	{name: "whiteout", in: gzTar(reg("etc/.wh.passwd", "")), rule: packages.RuleWhiteout, path: "etc/.wh.passwd"},
	{name: "opaque whiteout", in: gzTar(reg("usr/.wh..wh..opq", "")), rule: packages.RuleWhiteout, path: "usr/.wh..wh..opq"},
	{name: "whiteout as a parent", in: gzTar(reg("usr/.wh.lib/x", "")), rule: packages.RuleWhiteout, path: "usr/.wh.lib/x"},
	{name: "whiteout directory", in: gzTar(dirEntry(".wh.etc/", 0o755)), rule: packages.RuleWhiteout, path: ".wh.etc"},
	{name: "setuid file", in: gzTar(withMode(reg("bin/sh", "#!"), 0o4755)), rule: packages.RuleSetuid, path: "bin/sh"},
	{name: "setgid file", in: gzTar(withMode(reg("bin/sh", "#!"), 0o2755)), rule: packages.RuleSetuid, path: "bin/sh"},
	{name: "hard link to a setuid file", in: gzTar(withMode(reg("bin/su", "#!"), 0o6755), link("bin/sudo", tar.TypeLink, "bin/su")),
		rule: packages.RuleSetuid, path: "bin/su"},
	// A hard link's own header is applied to its target by extractors
	// that chmod links (issue 15): the canonical form makes the link a
	// copy with its target's mode, but such input is refused all the same.
	{name: "setuid hard link header", in: gzTar(withMode(reg("usr/bin/env", "#!"), 0o755), withMode(link("usr/bin/env-suid", tar.TypeLink, "usr/bin/env"), 0o4755)),
		rule: packages.RuleSetuid, path: "usr/bin/env-suid"},
	{name: "setgid hard link header", in: gzTar(withMode(reg("usr/bin/env", "#!"), 0o755), withMode(link("usr/bin/env-sgid", tar.TypeLink, "./usr/bin/env"), 0o2711)),
		rule: packages.RuleSetuid, path: "usr/bin/env-sgid"},
	{name: "entry over the default size limit", in: hugeHeader(tar.TypeReg, packages.DefaultMaxEntrySize+1), rule: packages.RuleEntrySize, path: "big"},
	{name: "entry over a configured size limit", in: gzTar(reg("a", "12345678901")), pol: packages.Policy{MaxEntrySize: 10},
		rule: packages.RuleEntrySize, path: "a"},
	{name: "sparse entry over the size limit", in: sparseBomb, rule: packages.RuleEntrySize, path: "big"},
	{name: "total over the limit", in: gzTar(reg("a", strings.Repeat("a", 60000)), reg("b", strings.Repeat("b", 60000))),
		pol: packages.Policy{MaxTotalSize: 100000}, rule: packages.RuleTotalSize, path: "b"},
	{name: "uncompressed stream over the limit", in: gzTar(reg("a", strings.Repeat("a", 600)), reg("b", strings.Repeat("b", 600))),
		pol: packages.Policy{MaxTotalSize: 3000}, rule: packages.RuleTotalSize, path: "a"},
	{name: "hard link copies over the total limit", in: gzTar(reg("a", strings.Repeat("a", 4000)),
		link("b", tar.TypeLink, "a"), link("c", tar.TypeLink, "a"), link("d", tar.TypeLink, "a")),
		pol: packages.Policy{MaxTotalSize: 10000}, rule: packages.RuleTotalSize, path: "c"},
	{name: "too many entries", in: gzTar(reg("a", ""), reg("b", ""), reg("c", ""), reg("d", "")),
		pol: packages.Policy{MaxEntries: 3}, rule: packages.RuleEntries, path: "d"},
	{name: "names over the average per entry", in: func(t *testing.T) []byte {
		var es []tarEntry
		for i := range 6 { // 451-byte names: 2,706 bytes, over 10 × 256
			es = append(es, reg(strings.Repeat("a", 200)+"/"+strings.Repeat("b", 249)+strconv.Itoa(i), ""))
		}
		return messyTar(t, es, true)
	}, pol: packages.Policy{MaxEntries: 10}, rule: packages.RuleNameLength, path: strings.Repeat("a", 200) + "/" + strings.Repeat("b", 249) + "5"},
	{name: "path over PATH_MAX", in: gzTar(reg(strings.Repeat("a/", 2048)+"f", "")), rule: packages.RuleNameLength, path: strings.Repeat("a/", 2048) + "f"},
	{name: "component over NAME_MAX", in: gzTar(reg("etc/"+strings.Repeat("n", 256), "")), rule: packages.RuleNameLength, path: "etc/" + strings.Repeat("n", 256)},
	{name: "symlink target over PATH_MAX", in: gzTar(link("l", tar.TypeSymlink, strings.Repeat("t/", 2049))), rule: packages.RuleNameLength, path: "l"},
	{name: "implied directories count as entries", in: gzTar(reg(strings.Repeat("d/", 200)+"f", "")),
		pol: packages.Policy{MaxEntries: 100}, rule: packages.RuleEntries, path: strings.Repeat("d/", 200) + "f"},
	{name: "gzip bomb after the tar", in: func(t *testing.T) []byte {
		// A valid tar followed by 8 MiB of zeros: 8 KiB compressed.
		plain := messyTar(t, []tarEntry{reg("a", "x")}, false)
		return gzipBytes(t, append(plain, make([]byte, 8<<20)...))
	}, pol: packages.Policy{MaxTotalSize: 1 << 20}, rule: packages.RuleTotalSize, path: "a"},
	{name: "gzip bomb in a file", in: func(t *testing.T) []byte {
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
		return gzipBytes(t, buf.Bytes())
	}, pol: packages.Policy{MaxEntrySize: 1 << 20}, rule: packages.RuleEntrySize, path: "zeros"},
	{name: "not gzip despite the gzip magic", in: func(t *testing.T) []byte {
		return append([]byte{0x1f, 0x8b}, []byte("this is not deflate data at all, just text")...)
	}, rule: packages.RuleMalformed},
	{name: "gzip with a corrupt checksum", in: func(t *testing.T) []byte {
		b := messyTar(t, []tarEntry{reg("a", "x")}, true)
		b[len(b)-6] ^= 0xff // CRC-32 in the trailer
		return b
	}, rule: packages.RuleMalformed, path: "a"},
	{name: "gzip with a corrupt stream", in: func(t *testing.T) []byte {
		b := messyTar(t, []tarEntry{reg("a", strings.Repeat("abc", 1000))}, true)
		for i := 20; i < len(b)-8; i += 7 {
			b[i] ^= 0x55
		}
		return b
	}, rule: packages.RuleMalformed},
	{name: "gzip with trailing garbage", in: func(t *testing.T) []byte {
		return append(messyTar(t, []tarEntry{reg("a", "x")}, true), []byte("garbage after the gzip member")...)
	}, rule: packages.RuleMalformed, path: "a"},
	{name: "zstd", in: func(t *testing.T) []byte { return []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0} }, rule: packages.RuleMalformed},
	{name: "bzip2", in: func(t *testing.T) []byte { return []byte("BZh91AY&SY\x00\x01") }, rule: packages.RuleMalformed},
	{name: "empty input", in: func(t *testing.T) []byte { return nil }, rule: packages.RuleMalformed},
	{name: "text, not a tar", in: func(t *testing.T) []byte { return bytes.Repeat([]byte("hello tar\n"), 100) }, rule: packages.RuleMalformed},
}

// checkRefused checks that err refuses the input under rule (or as an
// *UnsupportedFileError when rule is ""), naming path.
func checkRefused(t *testing.T, err error, rule packages.Rule, path string) {
	t.Helper()
	if !errors.Is(err, packages.ErrRefused) {
		t.Fatalf("err = %v, want an error wrapping packages.ErrRefused", err)
	}
	if rule == "" {
		var ue *packages.UnsupportedFileError
		if !errors.As(err, &ue) || ue.Path != path {
			t.Fatalf("err = %v, want *UnsupportedFileError for %s", err, path)
		}
	} else {
		var re *packages.RefusedError
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

func TestNormalizeTarRefusesHostileInput(t *testing.T) {
	for _, tc := range hostileTars {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.pol.NormalizeTar(t.Context(), bytes.NewReader(tc.in(t)), io.Discard)
			checkRefused(t, err, tc.rule, tc.path)
		})
	}
}

// TestPublishRefusesHostileTar publishes each hostile tar through the
// publishing job: the error names the entry, and nothing is stored, in the
// blob store, the catalog or the temporary directory.
func TestPublishRefusesHostileTar(t *testing.T) {
	for _, tc := range hostileTars {
		t.Run(tc.name, func(t *testing.T) {
			pub, blobs, cat := newPublisher(t)
			pub.Policy = tc.pol
			file := filepath.Join(t.TempDir(), "hostile.tar.gz")
			if err := os.WriteFile(file, tc.in(t), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Tar: file})
			checkRefused(t, err, tc.rule, tc.path)
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the input file", err)
			}
			checkNothingStored(t, pub, blobs, cat)
		})
	}
}

func checkNothingStored(t *testing.T, pub *packages.Publisher, blobs *memBlobs, cat *memCatalog) {
	t.Helper()
	if blobs.puts != 0 || len(blobs.blobs) != 0 {
		t.Errorf("%d blob puts, %d blobs stored; want none", blobs.puts, len(blobs.blobs))
	}
	if cat.calls != 0 || len(cat.releases) != 0 {
		t.Errorf("%d catalog calls; want none", cat.calls)
	}
	left, err := os.ReadDir(pub.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temporary directory holds %d entries", len(left))
	}
}

// TestNormalizeTarAcceptsSafeLinks: symbolic links are recorded, never
// followed, so absolute and upward targets are fine (Debian ships
// /etc/alternatives links); so are setgid and sticky directories, and
// setuid files when the policy allows them.
func TestNormalizeTarAcceptsSafeLinks(t *testing.T) {
	in := messyTar(t, []tarEntry{
		link("etc/alternatives/editor", tar.TypeSymlink, "/usr/bin/vim.basic"),
		link("etc/localtime", tar.TypeSymlink, "../usr/share/zoneinfo/Etc/UTC"),
		link("root", tar.TypeSymlink, "../../../../.."),
		dirEntry("var/local/", 0o2775),
		dirEntry("tmp/", 0o1777),
		reg("a/b", "x"),
		link("a/c", tar.TypeLink, "./a/b"),
	}, true)
	var out bytes.Buffer
	diffID, err := packages.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
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

	suid := messyTar(t, []tarEntry{withMode(reg("bin/su", "#!"), 0o4755)}, true)
	out.Reset()
	diffID, err = packages.Policy{AllowSetuid: true}.NormalizeTar(t.Context(), bytes.NewReader(suid), &out)
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
	in := messyTar(t, []tarEntry{reg(name, "deep")}, true)
	var out bytes.Buffer
	diffID, err := packages.NormalizeTar(t.Context(), bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	hs := readLayer(t, out.Bytes(), diffID)
	if len(hs) != 2048 || hs[2047].Name != name {
		t.Fatalf("%d entries, want 2047 directories and the file", len(hs))
	}
	pol := packages.Policy{MaxEntries: 2047}
	if _, err := pol.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); !errors.Is(err, packages.ErrRefused) {
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
		in := append(rawHeader(name, tar.TypeReg, 1), padBlock([]byte("x"))...)
		in = append(in, make([]byte, 1024)...)
		if _, err := packages.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNormalizeTarLimitsExact: input exactly at a limit passes.
func TestNormalizeTarLimitsExact(t *testing.T) {
	in := messyTar(t, []tarEntry{reg("a", "12345"), reg("b", "12345")}, false)
	pol := packages.Policy{MaxEntries: 2, MaxEntrySize: 5, MaxTotalSize: int64(len(in))}
	if _, err := pol.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	unlimited := packages.Policy{MaxEntries: -1, MaxEntrySize: -1, MaxTotalSize: -1}
	if _, err := unlimited.NormalizeTar(t.Context(), bytes.NewReader(in), io.Discard); err != nil {
		t.Fatalf("no limits: %v", err)
	}
}

// hostileDir is one directory tree that publishing must refuse.
type hostileDir struct {
	name string
	make func(t *testing.T, dir string)
	pol  packages.Policy
	rule packages.Rule
	path string
}

func mkfile(t *testing.T, name string, data string, mode fs.FileMode) {
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

var hostileDirs = []hostileDir{
	{name: "setuid file", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "bin/sh"), "#!", 0o755|fs.ModeSetuid)
	}, rule: packages.RuleSetuid, path: "bin/sh"},
	{name: "setgid file", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "bin/sh"), "#!", 0o755|fs.ModeSetgid)
	}, rule: packages.RuleSetuid, path: "bin/sh"},
	{name: "hard link to a file outside", make: func(t *testing.T, dir string) {
		outside := filepath.Join(t.TempDir(), "secret")
		mkfile(t, outside, "secret", 0o600)
		if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(outside, filepath.Join(dir, "etc/secret")); err != nil {
			t.Skipf("cannot make hard links here: %v", err)
		}
	}, rule: packages.RuleHardLink, path: "etc/secret"},
	{name: "whiteout", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "etc/.wh.passwd"), "", 0o644)
	}, rule: packages.RuleWhiteout, path: "etc/.wh.passwd"},
	{name: "whiteout directory", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "usr/.wh.lib/x"), "", 0o644)
	}, rule: packages.RuleWhiteout, path: "usr/.wh.lib"},
	{name: "file over the size limit", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "big"), strings.Repeat("x", 2000), 0o644)
	}, pol: packages.Policy{MaxEntrySize: 1000}, rule: packages.RuleEntrySize, path: "big"},
	{name: "total over the limit", make: func(t *testing.T, dir string) {
		mkfile(t, filepath.Join(dir, "a"), strings.Repeat("x", 600), 0o644)
		mkfile(t, filepath.Join(dir, "b"), strings.Repeat("x", 600), 0o644)
	}, pol: packages.Policy{MaxTotalSize: 1000}, rule: packages.RuleTotalSize, path: "b"},
	{name: "too many entries", make: func(t *testing.T, dir string) {
		for _, n := range []string{"a", "b", "c"} {
			mkfile(t, filepath.Join(dir, n), "", 0o644)
		}
	}, pol: packages.Policy{MaxEntries: 2}, rule: packages.RuleEntries, path: "c"},
}

func TestBuildLayerFromDirRefusesHostileTrees(t *testing.T) {
	for _, tc := range hostileDirs {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(t, dir)
			_, err := tc.pol.BuildLayerFromDir(t.Context(), dir, io.Discard)
			checkRefused(t, err, tc.rule, tc.path)

			pub, blobs, cat := newPublisher(t)
			pub.Policy = tc.pol
			_, err = pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Dir: dir})
			checkRefused(t, err, tc.rule, tc.path)
			checkNothingStored(t, pub, blobs, cat)
		})
	}
}

// TestBuildLayerFromDirSymlinksNotFollowed: a symbolic link to a directory
// outside the tree is recorded as a link; nothing behind it is read.
func TestBuildLayerFromDirSymlinksNotFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(outside, "secret"), "secret", 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(dir, "var/local/.keep"), "", 0o644)
	if err := os.Chmod(filepath.Join(dir, "var/local"), 0o2775|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	diffID, err := packages.BuildLayerFromDir(t.Context(), dir, &buf)
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
