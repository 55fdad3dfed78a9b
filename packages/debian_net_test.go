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
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/internal/debian"
)

// The tests in this file use the real Debian archive through the machine's
// apt sources. They skip, saying why, when apt or the archive is not
// available, and fail instead when CI=true. ENVREG_TEST_CACHE names a
// cache directory to reuse between runs.

var (
	netCacheOnce sync.Once
	netCache     string
	netCacheErr  error
)

// debianCache returns the cache for network tests, checking once that apt
// and the archive are usable.
func debianCache(t *testing.T) string {
	t.Helper()
	netCacheOnce.Do(func() {
		for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
			if _, err := exec.LookPath(tool); err != nil {
				netCacheErr = fmt.Errorf("%s not available: %w", tool, err)
				return
			}
		}
		netCache = os.Getenv("ENVREG_TEST_CACHE")
		if netCache == "" {
			netCache, netCacheErr = os.MkdirTemp("", "envreg-debian-test-*")
			if netCacheErr != nil {
				return
			}
		}
		a, err := debian.New(debian.Config{CacheDir: filepath.Join(netCache, "debian"), Arch: "amd64"})
		if err == nil {
			err = a.Update(t.Context())
		}
		if err != nil {
			netCacheErr = fmt.Errorf("Debian archive not reachable: %w", err)
		}
	})
	if netCacheErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (required when CI=true)", netCacheErr)
		}
		t.Skip(netCacheErr)
	}
	return netCache
}

func TestMain(m *testing.M) {
	code := m.Run()
	if netCache != "" && os.Getenv("ENVREG_TEST_CACHE") == "" {
		os.RemoveAll(netCache)
	}
	os.Exit(code)
}

// TestPublishDebianBadInput: a missing package or version, a package
// missing for one platform, a release the archive does not have, or
// dependencies that cannot be satisfied fail naming the package and the
// platform, and nothing is published.
func TestPublishDebianBadInput(t *testing.T) {
	cache := debianCache(t)
	base := "name: base\nversion: 12.0.0\nplatforms: [linux/amd64]\nsource:\n  debian:\n    packages: [libc6]\n"
	amd64 := "[linux/amd64]"
	tests := []struct {
		name, platforms, packages, sources string
		extra                              string // more source.debian lines
		want                               []string
	}{
		{"missing version", amd64, "[dash=0.0.1-99]", "", "", []string{"linux/amd64: debian package dash version 0.0.1-99 not found for amd64 (available: "}},
		{"missing package", amd64, "[envreg-no-such-package]", "", "", []string{"linux/amd64: debian package envreg-no-such-package not found for amd64"}},
		{"missing for one platform", "[linux/amd64, linux/arm64]", "[libc6-i386]", "", "", []string{"linux/arm64: debian package libc6-i386 not found for arm64"}},
		{"release the archive does not have", amd64, "[dash]", "[deb http://deb.debian.org/debian envreg-no-such-release main]", "",
			[]string{"linux/amd64: updating Debian package lists for amd64", "envreg-no-such-release"}},
		{"carry what the base lacks", amd64, "[dash]", "", "    carry: [coreutils]\n", []string{"linux/amd64: source.debian.carry: coreutils: the base base does not provide it for amd64"}},
		{"unsatisfiable", amd64, "[exim4-daemon-light, exim4-daemon-heavy]", "", "", []string{"unsatisfiable Debian dependencies of exim4-daemon-light, exim4-daemon-heavy for amd64", "Conflicts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := "name: x\nversion: 1.0.0\nplatforms: " + tc.platforms + "\nsource:\n  debian:\n    packages: " +
				tc.packages + "\n    base: ../base/recipe.yaml\n"
			if tc.sources != "" {
				x += "    sources: " + tc.sources + "\n"
			}
			x += tc.extra
			recipes, err := packages.LoadRecipes(fstest.MapFS{
				"base/recipe.yaml": {Data: []byte(base)},
				"x/recipe.yaml":    {Data: []byte(x + "requires: [base ^12]\n")},
			})
			if err != nil {
				t.Fatal(err)
			}
			pub, blobs, cat := newPublisher(t)
			pub.CacheDir = cache
			_, err = pub.PublishRecipe(t.Context(), recipes[1], "", false)
			if err == nil {
				t.Fatal("published")
			}
			platforms := strings.Trim(tc.platforms, "[]")
			for _, w := range append(tc.want, "publishing x 1.0.0 for "+platforms+": ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			if blobs.puts != 0 || cat.calls != 0 {
				t.Errorf("stored %d blobs and made %d catalog calls, want none", blobs.puts, cat.calls)
			}
		})
	}
}

func TestPublishBundledDebian(t *testing.T) {
	if os.Getenv("ENVREG_TEST_DEBIAN") != "1" {
		t.Skip("set ENVREG_TEST_DEBIAN=1 to publish the bundled recipes from the Debian archive")
	}
	debianCache(t)
	cache := os.Getenv("ENVREG_TEST_CACHE")
	recipes, err := packages.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	pub, blobs, cat := newPublisher(t)
	pub.CacheDir = cache
	start := time.Now()
	n := 0
	for _, ranged := range recipes {
		versions, err := pub.ExpandRecipe(t.Context(), ranged)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range versions {
			if _, err := pub.PublishRecipe(t.Context(), rc, "", false); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	t.Logf("published %d versions for 3 platforms in %s", n, time.Since(start).Round(time.Second))

	// The recipes name ranges: relations, not literal versions, which the
	// archive moves.
	rel := func(name, minor string, oldest bool) catalog.Release { return cat.pick(t, name, minor, oldest) }
	base, php, php32 := rel("base", "13", false), rel("php", "8.2", false), rel("php", "8.2", true)
	node, gm := rel("nodejs", "18", false), rel("graphicsmagick", "1.3", true)
	if php.Version.Equal(php32.Version) {
		t.Errorf("one php 8.2 version (%s): want the archive's two newest patches", php.Version)
	}
	for _, c := range []struct {
		r                      catalog.Release
		pkg, version, has, not string
	}{
		{base, "base-files", "13.8+deb13u8", "libc6=", ""},
		{php, "php8.2-cli", "", "php8.2-common=" + php.Labels[packages.LabelDebianVersion], "libc6="},
		{php32, "php8.2-cli", "", "php8.2-common=" + php32.Labels[packages.LabelDebianVersion], "libc6="},
		{node, "nodejs", "", "libnode108=", "libssl3="},
		{gm, "graphicsmagick", "", "libgraphicsmagick-q16-3=", "zlib1g="},
	} {
		l := c.r.Labels
		if l[packages.LabelDebianPackage] != c.pkg || (c.version != "" && l[packages.LabelDebianVersion] != c.version) ||
			(c.version == "" && !derivesTo(l[packages.LabelDebianVersion], c.r.Version.String())) {
			t.Errorf("%s: labels %v", c.r.ID(), l)
		}
		list := " " + l[packages.LabelDebianPackages]
		if !strings.Contains(list, " "+c.has) || (c.not != "" && strings.Contains(list, " "+c.not)) {
			t.Errorf("%s: %s = %q, want %q in it and not %q (the base provides it)", c.r.ID(), packages.LabelDebianPackages, list, c.has, c.not)
		}
		if len(c.r.Layers) != 3 {
			t.Errorf("%s has %d layers, want amd64, arm64 and arm/v7", c.r.ID(), len(c.r.Layers))
		}
	}

	amd64 := catalog.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := catalog.Platform{OS: "linux", Architecture: "arm64"}
	armv7 := catalog.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	layer := func(r catalog.Release, p catalog.Platform) catalog.Layer {
		l, ok := r.Layer(p)
		if !ok {
			t.Fatalf("%s has no %s layer", r.ID(), p)
		}
		return l
	}
	// The base has the shell and the dynamic loader; scanners find the
	// packages in status.d.
	for p, loader := range map[catalog.Platform]string{amd64: "lib64/ld-linux-x86-64.so.2", arm64: "lib/ld-linux-aarch64.so.1", armv7: "lib/ld-linux-armhf.so.3"} {
		files := layer(base, p).Files
		for _, f := range []string{"bin/sh", "bin/dash", loader, "etc/ssl/certs/ca-certificates.crt", "var/lib/dpkg/status.d/libc6", "etc/os-release"} {
			if files[f] == "" {
				t.Errorf("base %s has no /%s", p, f)
			}
		}
	}
	phpStatus := readLayerFile(t, blobs.blobs[layer(php, arm64).Digest], "var/lib/dpkg/status.d/php8.2-cli")
	if !strings.Contains(phpStatus, "Package: php8.2-cli\nStatus: install ok installed\n") ||
		!strings.Contains(phpStatus, "\nVersion: "+php.Labels[packages.LabelDebianVersion]+"\n") || !strings.Contains(phpStatus, "\nArchitecture: arm64\n") {
		t.Errorf("php8.2-cli status record for arm64:\n%s", phpStatus)
	}
	// No two layers of one image write a path differently (the resolver
	// would refuse the composition).
	for _, p := range []catalog.Platform{amd64, arm64, armv7} {
		seen := map[string]string{}
		for _, r := range []catalog.Release{base, php, node, gm} {
			for f, fp := range layer(r, p).Files {
				if prev, ok := seen[f]; ok && prev != fp {
					t.Errorf("%s: /%s differs between layers", p, f)
				}
				seen[f] = fp
			}
		}
	}

	// Same .debs, same layers: a new run republishes identically (the
	// catalog refuses different content), even after a cached .deb was
	// corrupted (it is downloaded again).
	debs, _ := filepath.Glob(filepath.Join(cacheRoot(t, cache), "debian", "archives", "graphicsmagick_1.4+really"+core(gm)+"-*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("cached graphicsmagick .debs: %v", debs)
	}
	data, err := os.ReadFile(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(debs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	again := &packages.Publisher{Blobs: blobs, Catalog: cat, TempDir: t.TempDir(), CacheDir: cache}
	for _, ranged := range recipes {
		if ranged.Name != "graphicsmagick" && ranged.Name != "base" {
			continue
		}
		versions, err := again.ExpandRecipe(t.Context(), ranged)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range versions {
			if _, err := again.PublishRecipe(t.Context(), rc, "", false); err != nil {
				t.Fatalf("republishing %s: %v", rc.Name, err)
			}
		}
	}

	// Run the programs in the composed amd64 tree.
	if runtime.GOARCH != "amd64" || os.Geteuid() != 0 {
		t.Skip("running the composed tree needs root (chroot) on amd64")
	}
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Skip("chroot not available")
	}
	root := t.TempDir()
	for _, r := range []catalog.Release{base, php, node, gm} {
		extractLayer(t, root, blobs.blobs[layer(r, amd64).Digest])
	}
	root32 := t.TempDir()
	for _, r := range []catalog.Release{base, php32} {
		extractLayer(t, root32, blobs.blobs[layer(r, amd64).Digest])
	}
	for _, c := range []struct {
		root string
		args []string
		want string
	}{
		{root, []string{"php", "-r", "echo PHP_VERSION;"}, core(php)},
		{root32, []string{"php", "-r", "echo PHP_VERSION;"}, core(php32)},
		{root, []string{"php", "-r", "echo ctype_digit('1') ? 'modules' : 'none';"}, "modules"},
		{root, []string{"node", "-v"}, "v" + core(node) + "\n"},
		{root, []string{"gm", "version"}, "GraphicsMagick " + core(gm) + " "},
		{root, []string{"/bin/sh", "-c", "ls /usr/bin/env && id -un"}, "/usr/bin/env\nroot\n"},
	} {
		cmd := exec.Command("chroot", append([]string{c.root, "/usr/bin/env", "PATH=/usr/local/bin:/usr/bin:/bin"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("%s: %v\n%s\nwant output starting with %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

// cacheRoot is the directory Publisher.CacheDir stands for.
func cacheRoot(t *testing.T, dir string) string {
	if dir != "" {
		return dir
	}
	c, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(c, "envreg")
}

func readLayerFile(t *testing.T, layer []byte, name string) string {
	t.Helper()
	_, contents := layerEntries(t, layer)
	return contents[name]
}

// extractLayer applies a layer to dir, without following symbolic links
// out of it.
func extractLayer(t *testing.T, dir string, layer []byte) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		mode := fs.FileMode(hdr.Mode & 0o777)
		if hdr.Typeflag != tar.TypeDir {
			if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				t.Fatal(err)
			}
			if hdr.Mode&0o1000 != 0 {
				mode |= fs.ModeSticky // /tmp
			}
			err = root.Chmod(name, mode)
		case tar.TypeSymlink:
			err = root.Symlink(hdr.Linkname, name)
		case tar.TypeReg:
			var f *os.File
			f, err = root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
			if err == nil {
				err = root.Chmod(name, mode)
			}
		}
		if err != nil {
			t.Fatalf("extracting %s: %v", name, err)
		}
	}
}

// core is r's version without build metadata.
func core(r catalog.Release) string {
	v, _ := r.Version.SetMetadata("")
	return v.String()
}

// derivesTo reports whether the Debian version debian derives the
// semantic version v (compared with build metadata).
func derivesTo(debian, v string) bool {
	return debian != "" && packages.DerivedVersion(debian) == v
}
