package packages_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/internal/debian"
)

// TestFetchPatchelf: on a machine without patchelf the publisher runs
// Debian's, fetched from the archive for this machine's architecture. The
// fetched program sets a DT_RPATH, and a second call reuses the unpacked
// copy.
func TestFetchPatchelf(t *testing.T) {
	cache := debianCache(t)
	pub := &packages.Publisher{CacheDir: cache, TempDir: t.TempDir()}
	tool, err := pub.FetchPatchelf(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tool, filepath.Join(cache, "debian", "tools")+string(filepath.Separator)) {
		t.Errorf("patchelf unpacked at %s, want it under the cache's debian/tools", tool)
	}
	out, err := exec.Command(tool, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "patchelf ") {
		t.Fatalf("%s --version: %v %q", tool, err, out)
	}
	before, err := os.Stat(tool)
	if err != nil {
		t.Fatal(err)
	}

	// It does the job: a copy of a dynamically linked program of this
	// machine gets the DT_RPATH asked for.
	src, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Skipf("no /usr/bin/true to patch: %v", err)
	}
	file := filepath.Join(t.TempDir(), "true")
	if err := os.WriteFile(file, src, 0o755); err != nil {
		t.Fatal(err)
	}
	const rpath = "/opt/envreg/x-1.0.0/usr/lib"
	if err := debian.SetRPath(t.Context(), tool, file, rpath); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := f.DynString(elf.DT_RPATH); err != nil || len(got) != 1 || got[0] != rpath {
		t.Errorf("DT_RPATH = %q, %v; want %q", got, err, rpath)
	}
	if out, err := exec.Command(file).CombinedOutput(); err != nil {
		t.Errorf("the patched program no longer runs: %v %s", err, out)
	}

	again, err := pub.FetchPatchelf(t.Context())
	if err != nil || again != tool {
		t.Fatalf("second fetch: %s, %v; want %s", again, err, tool)
	}
	if after, err := os.Stat(tool); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the second fetch unpacked patchelf again")
	}
}
