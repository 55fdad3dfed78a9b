package packages_test

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/internal/debian"
	"github.com/envreg/envreg/packages/internal/debian/debtest"
)

// needPatchelf skips without Debian's patchelf, or fails when CI=true.
func needPatchelf(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("patchelf"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("patchelf is required in CI: %v", err)
		}
		t.Skipf("patchelf not available: %v", err)
	}
}

// TestBuildRelocatedDebianLayer: on a base, the packages of the requested
// source packages stay in place, the others move under the prefix (with
// their absolute symlinks into themselves), every dynamically linked ELF
// file gets the prefix's DT_RPATH, and the dpkg records of moved packages
// get names of their own and say where they went.
func TestBuildRelocatedDebianLayer(t *testing.T) {
	needPatchelf(t)
	arch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if !ok {
		t.Skipf("no ELF sample for %s", runtime.GOARCH)
	}
	sample, err := os.ReadFile("/bin/true") // a dynamically linked ELF file of this machine
	if err != nil {
		t.Skip(err)
	}
	tuple := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
	dir := t.TempDir()
	debs := []string{
		debtest.Build(t, dir, debtest.Package{Name: "tool", Version: "1", Arch: arch, Depends: "libdep1",
			Files: []debtest.File{{Path: "usr/bin/tool", Mode: 0o755, Content: string(sample)},
				{Path: "lib/systemd/system/tool.service", Content: "[Service]\n"}}}),
		debtest.Build(t, dir, debtest.Package{Name: "libdep1", Version: "2", Arch: arch,
			Files: []debtest.File{
				{Path: "usr/lib/" + tuple + "/libdep.so.1.0", Content: string(sample)},
				{Path: "usr/lib/" + tuple + "/libdep.so.1", Link: "libdep.so.1.0"},
				{Path: "usr/lib/" + tuple + "/libdep-abs.so", Link: "/usr/lib/" + tuple + "/libdep.so.1.0"},
				{Path: "usr/share/dep/data", Content: "data"},
				{Path: "usr/share/dep/certs", Link: "/etc/ssl/certs"},
			}}),
	}
	var layer bytes.Buffer
	if _, err := packages.BuildRelocatedDebianLayer(t.Context(), debs, "opt/envreg/tool-1.0.0", arch, []string{"tool"}, t.TempDir(), &layer); err != nil {
		t.Fatal(err)
	}
	hdrs, contents := layerEntries(t, layer.Bytes())
	prefix := "opt/envreg/tool-1.0.0/"
	for _, name := range []string{"usr/bin/tool", prefix + "usr/lib/" + tuple + "/libdep.so.1.0", prefix + "usr/share/dep/data",
		"usr/lib/systemd/system/tool.service", // usr-merged, like the base
		"var/lib/dpkg/status.d/tool", "var/lib/dpkg/status.d/libdep1_tool-1.0.0", "var/lib/dpkg/status.d/libdep1_tool-1.0.0.md5sums"} {
		if hdrs[name] == nil {
			t.Errorf("no /%s in the layer", name)
		}
	}
	for _, name := range []string{"usr/lib/" + tuple + "/libdep.so.1.0", "usr/share/dep/data", "var/lib/dpkg/status.d/libdep1", "lib/", "lib/systemd/system/tool.service"} {
		if hdrs[name] != nil {
			t.Errorf("/%s is in the layer: the dependency was not moved", name)
		}
	}
	for link, want := range map[string]string{
		prefix + "usr/lib/" + tuple + "/libdep.so.1":   "libdep.so.1.0",
		prefix + "usr/lib/" + tuple + "/libdep-abs.so": "/" + prefix + "usr/lib/" + tuple + "/libdep.so.1.0",
		prefix + "usr/share/dep/certs":                 "/etc/ssl/certs",
	} {
		if h := hdrs[link]; h == nil || h.Linkname != want {
			t.Errorf("/%s: %+v, want a link to %s", link, h, want)
		}
	}
	if rec := contents["var/lib/dpkg/status.d/libdep1_tool-1.0.0"]; !strings.Contains(rec, "Package: libdep1\n") ||
		!strings.Contains(rec, "\nVersion: 2\n") || !strings.Contains(rec, "\nX-Envreg-Prefix: /opt/envreg/tool-1.0.0\n") {
		t.Errorf("record of the moved package:\n%s", rec)
	}
	want := "/opt/envreg/tool-1.0.0/usr/lib/" + tuple + ":/opt/envreg/tool-1.0.0/lib/" + tuple + ":/opt/envreg/tool-1.0.0/usr/lib"
	for _, name := range []string{"usr/bin/tool", prefix + "usr/lib/" + tuple + "/libdep.so.1.0"} {
		f, err := elf.NewFile(strings.NewReader(contents[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rpath, _ := f.DynString(elf.DT_RPATH)
		runpath, _ := f.DynString(elf.DT_RUNPATH)
		if len(rpath) != 1 || rpath[0] != want || len(runpath) != 0 {
			t.Errorf("%s: DT_RPATH %q, DT_RUNPATH %q; want DT_RPATH %q only", name, rpath, runpath, want)
		}
		// patchelf moved the notes; PT_GNU_PROPERTY follows them (an
		// arm64 kernel refuses a file whose property note is not there).
		if sec := f.Section(".note.gnu.property"); sec != nil {
			for _, p := range f.Progs {
				if p.Type == elf.PT_GNU_PROPERTY && (p.Off != sec.Offset || p.Vaddr != sec.Addr) {
					t.Errorf("%s: PT_GNU_PROPERTY at %#x, .note.gnu.property at %#x", name, p.Off, sec.Offset)
				}
			}
		}
	}

	// An ELF file for another machine than the layer's fails, naming it.
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[arch]
	_, err = packages.BuildRelocatedDebianLayer(t.Context(), debs, "opt/envreg/tool-1.0.0", other, []string{"tool"}, t.TempDir(), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "/opt/envreg/tool-1.0.0/usr/lib/"+tuple+"/libdep.so.1.0 (package libdep1): ELF machine") {
		t.Errorf("a layer for %s with %s ELF files: err = %v", other, arch, err)
	}
}

// TestBuildDebianLayerAgainstBase: a layer that writes a path its base's
// packages write differently, or that needs a directory where the base
// has a symbolic link (trixie's /lib -> usr/lib), fails naming the path
// and both packages.
func TestBuildDebianLayerAgainstBase(t *testing.T) {
	dir := t.TempDir()
	baseDeb := debtest.Build(t, dir, debtest.Package{Name: "basefiles", Version: "1", Files: []debtest.File{
		{Path: "lib", Link: "usr/lib"}, {Path: "etc/x", Content: "a"}, {Path: "etc/same", Content: "same"}}})
	data, err := os.ReadFile(baseDeb)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	base := []debian.Package{{Name: "basefiles", Version: "1", Architecture: "all", File: baseDeb, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}}
	for _, tc := range []struct {
		name  string
		files []debtest.File
		want  string
	}{
		{"same file", []debtest.File{{Path: "etc/same", Content: "same"}}, ""},
		{"other file", []debtest.File{{Path: "etc/x", Content: "bb"}}, "/etc/x is written by package layerpkg and, differently, by the base's package basefiles"},
		{"under a link", []debtest.File{{Path: "lib/systemd/x.service", Content: "x"}}, "of package layerpkg needs /lib to be a directory, but the base's package basefiles has a file or symbolic link there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "layerpkg", Version: "1", Files: tc.files})
			_, err := packages.BuildDebianLayerOnBase(t.Context(), []string{deb}, base, t.TempDir(), io.Discard)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBuildLayerCarryingLoader: a layer that carries its own C library
// (packages of source glibc moved into its prefix) points the PT_INTERP of
// its executables at the loader in its prefix and leaves the C library's
// own files as built; one that carries a C library without that loader
// fails, naming the file.
func TestBuildLayerCarryingLoader(t *testing.T) {
	needPatchelf(t)
	arch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if !ok {
		t.Skipf("no ELF sample for %s", runtime.GOARCH)
	}
	sample, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var interp string
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		t.Skip("/bin/true has no PT_INTERP")
	}
	tuple := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
	build := func(libcFiles []debtest.File) (map[string]string, error) {
		dir := t.TempDir()
		debs := []string{
			debtest.Build(t, dir, debtest.Package{Name: "tool", Version: "1", Arch: arch, Depends: "libc6",
				Files: []debtest.File{{Path: "usr/bin/tool", Mode: 0o755, Content: string(sample)}}}),
			debtest.Build(t, dir, debtest.Package{Name: "libc6", Source: "glibc", Version: "2.43-1", Arch: arch, Files: libcFiles}),
		}
		var layer bytes.Buffer
		if _, err := packages.BuildRelocatedDebianLayer(t.Context(), debs, "opt/envreg/tool-1.0.0", arch, []string{"tool"}, t.TempDir(), &layer); err != nil {
			return nil, err
		}
		_, contents := layerEntries(t, layer.Bytes())
		return contents, nil
	}
	libc := "usr/lib/" + tuple + "/libc.so.6"
	contents, err := build([]debtest.File{
		{Path: "usr" + interp, Mode: 0o755, Content: string(sample)},
		{Path: libc, Content: string(sample)},
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := "opt/envreg/tool-1.0.0/"
	f, err := elf.NewFile(strings.NewReader(contents["usr/bin/tool"]))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			got = strings.TrimRight(string(b), "\x00")
		}
	}
	if want := "/" + prefix + "usr" + interp; got != want {
		t.Errorf("PT_INTERP of /usr/bin/tool = %q, want %q", got, want)
	}
	for _, name := range []string{prefix + "usr" + interp, prefix + libc} {
		if contents[name] != string(sample) {
			t.Errorf("/%s was changed: the C library's own files stay as built", name)
		}
	}

	// A C library without the loader the executables name.
	_, err = build([]debtest.File{{Path: libc, Content: string(sample)}})
	if want := "/usr/bin/tool (package tool): PT_INTERP " + interp + ": the layer carries its own C library but no loader of that name in /opt/envreg/tool-1.0.0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a C library without its loader: err = %v, want %q", err, want)
	}
}
