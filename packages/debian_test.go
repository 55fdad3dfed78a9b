package packages_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/internal/debian/debtest"
)

const baseRecipe = `name: base
version: 12.15.0
platforms: [linux/amd64, linux/arm64]
source:
  debian:
    packages: [base-files=12.4+deb12u15, libc6, dash]
`

const debPHPRecipe = `name: php
platforms: [linux/amd64, linux/arm64]
source:
  debian:
    packages: [php8.2-cli=8.2.36-1~deb12u1]
    base: ../base/recipe.yaml
    symlinks: {/usr/bin/php: php8.2}
requires: ["base ^12"]
`

func TestLoadDebianRecipes(t *testing.T) {
	recipes, err := packages.LoadRecipes(fstest.MapFS{
		"base/recipe.yaml":   {Data: []byte(baseRecipe)},
		"php/8.2.36.yaml":    {Data: []byte(debPHPRecipe)},
		"testdata/bad.yaml":  {Data: []byte("not: a recipe")},
		"_old/recipe.yaml":   {Data: []byte("not: a recipe")},
		"php/testdata/x.yml": {Data: []byte("ignored: not .yaml")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recipes) != 2 {
		t.Fatalf("loaded %d recipes, want base and php", len(recipes))
	}
	php := recipes[1]
	// The version is derived from the pinned Debian version of the main
	// package (see the debian package's TestSemver for the rules).
	if php.Version != "8.2.36+1.deb12u1" {
		t.Errorf("php version = %q, want 8.2.36+1.deb12u1", php.Version)
	}
	d := php.Source.Debian
	if d == nil || d.BaseRecipe == nil || d.BaseRecipe.Name != "base" || d.BaseRecipe.File != "base/recipe.yaml" {
		t.Fatalf("php's base recipe is not loaded: %+v", d)
	}
	if d.Symlinks["/usr/bin/php"] != "php8.2" {
		t.Errorf("symlinks = %v", d.Symlinks)
	}
}

func TestLoadDebianRecipesInvalid(t *testing.T) {
	ranged := strings.Replace(debPHPRecipe, "php8.2-cli=8.2.36-1~deb12u1]", "php8.2-cli]\n    versions: \"~8.2\"\n    keep: 2", 1)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no packages", strings.Replace(debPHPRecipe, "[php8.2-cli=8.2.36-1~deb12u1]", "[]", 1), []string{"source.debian.packages: at least one package"}},
		{"bad package", strings.Replace(debPHPRecipe, "php8.2-cli=", "PHP=", 1), []string{"source.debian.packages[0]:", `invalid Debian package "PHP=8.2.36-1~deb12u1"`}},
		{"bad version", strings.Replace(debPHPRecipe, "=8.2.36-1~deb12u1", "=x8.2", 1), []string{"source.debian.packages[0]:", "must start with a digit"}},
		{"twice", strings.Replace(debPHPRecipe, "[php8.2-cli=8.2.36-1~deb12u1]", "[php8.2-cli=8.2.36-1~deb12u1, php8.2-cli]", 1), []string{"packages[1]: php8.2-cli is listed twice"}},
		{"no version to derive", strings.Replace(debPHPRecipe, "php8.2-cli=8.2.36-1~deb12u1", "php8.2-cli", 1), []string{"version: missing; give one, or pin the first source.debian package"}},
		{"two sources", strings.Replace(debPHPRecipe, "source:\n", "source:\n  dir: rootfs\n", 1), []string{"set only one of source.dir, source.tar, source.debian"}},
		{"reserved label", debPHPRecipe + "labels: {io.envreg.debian.version: x}\n", []string{"labels: io.envreg.debian.version:"}},
		{"absolute base", strings.Replace(debPHPRecipe, "../base/recipe.yaml", "/base/recipe.yaml", 1), []string{"source.debian.base:"}},
		{"relative symlink", strings.Replace(debPHPRecipe, "/usr/bin/php:", "usr/bin/php:", 1), []string{"source.debian.symlinks:", "clean absolute path"}},
		{"dpkg file", strings.Replace(debPHPRecipe, "/usr/bin/php:", "/var/lib/dpkg/status:", 1), []string{"/var/lib/dpkg is written from the packages"}},
		{"insecure source", debPHPRecipe[:strings.Index(debPHPRecipe, "requires")] + "    sources: [\"deb [trusted=yes] http://example.org/debian bookworm main\"]\n" + "requires: [\"base ^12\"]\n", []string{"source.debian.sources:", "skip signature verification"}},
		{"requires no base", strings.Replace(debPHPRecipe, `requires: ["base ^12"]`, `requires: ["base ^13"]`, 1), []string{`requires: must include base with a range that base 12.15.0`}},
		{"missing base", strings.Replace(debPHPRecipe, "../base/recipe.yaml", "../nope/recipe.yaml", 1), []string{"source.debian.base:", "nope/recipe.yaml"}},
		{"base outside", strings.Replace(debPHPRecipe, "../base/recipe.yaml", "../../base.yaml", 1), []string{"outside the recipe directory"}},
		{"own base", strings.Replace(debPHPRecipe, "../base/recipe.yaml", "8.2.36.yaml", 1), []string{"is its own base"}},
		{"range and pin", strings.Replace(debPHPRecipe, "    base:", "    versions: \"~8.2\"\n    base:", 1), []string{"source.debian.versions: the main package is pinned (php8.2-cli=8.2.36-1~deb12u1)"}},
		{"bad range", strings.Replace(ranged, "~8.2", "eight", 1), []string{`source.debian.versions: "eight":`}},
		{"range and version", "version: 8.2.36\n" + ranged, []string{"version: leave it out: source.debian.versions takes the versions from the archive"}},
		{"keep without range", strings.Replace(debPHPRecipe, "    base:", "    keep: 2\n    base:", 1), []string{"source.debian.keep: only used with source.debian.versions"}},
		{"negative keep", strings.Replace(ranged, "keep: 2", "keep: -1", 1), []string{"source.debian.keep: -1:"}},
		{"carryNewer without base", strings.Replace(debPHPRecipe, "    base: ../base/recipe.yaml", "    carryNewer: true", 1), []string{"source.debian.carryNewer: only in a recipe with a base"}},
		{"carry without base", strings.Replace(debPHPRecipe, "    base: ../base/recipe.yaml", "    carry: [libc6]", 1), []string{`source.debian.carry[0]: "libc6": only in a recipe with a base`}},
		{"carry a pin", strings.Replace(debPHPRecipe, "    base:", "    carry: [libc6=2.36-9]\n    base:", 1), []string{`source.debian.carry[0]: "libc6=2.36-9" is not a Debian package name`}},
		{"carry twice", strings.Replace(debPHPRecipe, "    base:", "    carry: [libc6, libc6]\n    base:", 1), []string{"source.debian.carry[1]: libc6 is listed twice"}},
		{"carry a requested package", strings.Replace(debPHPRecipe, "    base:", "    carry: [php8.2-cli]\n    base:", 1), []string{"source.debian.carry[0]: php8.2-cli is in packages"}},
		{"expired allowed, trust not", debPHPRecipe[:strings.Index(debPHPRecipe, "requires")] + "    sources: [\"deb [check-valid-until=no allow-insecure=yes] http://example.org/debian forky main\"]\n" + "requires: [\"base ^12\"]\n", []string{"source.debian.sources:", "allow-insecure would skip signature verification"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := packages.LoadRecipes(fstest.MapFS{
				"base/recipe.yaml": {Data: []byte(baseRecipe)},
				"php/8.2.36.yaml":  {Data: []byte(tc.yaml)},
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, "php/8.2.36.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadRecipeFileDebianBase(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"base/recipe.yaml": baseRecipe, "php/8.2.36.yaml": debPHPRecipe} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := packages.LoadRecipeFile(filepath.Join(dir, "php", "8.2.36.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if b := rc.Source.Debian.BaseRecipe; b == nil || b.File != filepath.Join(dir, "php", "..", "base", "recipe.yaml") && b.File != filepath.Join(dir, "base", "recipe.yaml") {
		t.Errorf("base = %+v", b)
	}
	recipes, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := recipes[1].Source.Debian.BaseRecipe; b.File != filepath.Join(dir, "base", "recipe.yaml") || b.Dir != filepath.Join(dir, "base") {
		t.Errorf("LoadRecipeDir: base file %q, dir %q", b.File, b.Dir)
	}
}

// TestBundledRecipes checks the recipes in packages/*/ without the
// network: `envreg publish packages/` (LoadRecipeDir) and the embedded
// copy (Bundled) load the same recipes and nothing else of the source tree.
func TestBundledRecipes(t *testing.T) {
	bundled, err := packages.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := packages.LoadRecipeDir(".")
	if err != nil {
		t.Fatal(err)
	}
	// The base is one version; the others follow the archive (ranges,
	// issue 18 item 6): the three newest php 8.2 patches, the newest of
	// the rest, from the release named.
	want := []string{"base 13.8.0", "composer ^2 keep 1 from bookworm", "composer ^2 keep 1 from trixie",
		"graphicsmagick ~1.3 keep 1 from bookworm", "graphicsmagick ~1.3 keep 1 from trixie",
		"nodejs ^18 keep 1 from bookworm", "nodejs ^20 keep 1 from trixie", "nodejs ^24 keep 1 from forky",
		"npm * keep 1 from forky", "npm * keep 1 from trixie",
		"php ~8.2 keep 3 from bookworm", "php ~8.4 keep 1 from trixie"}
	for _, set := range [][]packages.Recipe{bundled, fromDir} {
		var got []string
		for _, rc := range set {
			id := rc.Name + " " + rc.Version
			if d := rc.Source.Debian; rc.Ranged() {
				f := strings.Fields(d.Sources[0]) // deb [OPTIONS] URI SUITE COMPONENT
				suite := f[len(f)-2]
				id = fmt.Sprintf("%s %s keep %d from %s", rc.Name, d.Versions, d.Keep, suite)
			}
			got = append(got, id)
			if rc.Source.Debian == nil || !slices.Equal(rc.Platforms, []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}) {
				t.Errorf("%s: want a Debian source for linux/amd64, linux/arm64 and linux/arm/v7", rc.File)
			}
			wantBase := map[string]string{"base": "", "composer": "php", "npm": "nodejs"}[rc.Name]
			if _, ok := map[string]bool{"base": true, "composer": true, "npm": true}[rc.Name]; !ok {
				wantBase = "base"
			}
			if b := rc.Source.Debian.BaseRecipe; wantBase != "" && (b == nil || b.Name != wantBase) {
				t.Errorf("%s: base recipe %s not loaded", rc.File, wantBase)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("recipes = %q, want %q", got, want)
		}
	}
}

// layerEntries reads a layer into path → entry.
func layerEntries(t *testing.T, layer []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdrs, contents := map[string]*tar.Header{}, map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs[hdr.Name], contents[hdr.Name] = hdr, string(b)
	}
}

func testDebs(t *testing.T) []string {
	dir := t.TempDir()
	hello := debtest.Build(t, dir, debtest.Package{
		Name: "hello", Version: "1:1.0-1", Depends: "libhello1 (= 1:1.0-1)",
		Files: []debtest.File{
			{Path: "usr/bin/hello", Mode: 0o755, Content: "#!/bin/sh\necho hello\n"},
			{Path: "usr/bin/hello-again", HardLink: "usr/bin/hello"},
			{Path: "usr/share/doc/hello/copyright", Content: "MIT\n"},
			{Path: "usr/share/doc/hello/changelog.Debian.gz", Content: "changes"},
			{Path: "usr/share/man/man1/hello.1.gz", Content: "manual"},
			{Path: "usr/lib/shared.txt", Content: "same in both\n"},
			{Path: "tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
		},
		Postinst: "#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/hi hi /usr/bin/hello 10\ntouch /etc/postinst-ran\n",
	})
	lib := debtest.Build(t, dir, debtest.Package{
		Name: "libhello1", Version: "1:1.0-1", Arch: "amd64",
		Files: []debtest.File{
			{Path: "usr/lib/x86_64-linux-gnu/libhello.so.1", Link: "libhello.so.1.0"},
			{Path: "usr/lib/x86_64-linux-gnu/libhello.so.1.0", Content: "ELF"},
			{Path: "usr/lib/shared.txt", Content: "same in both\n"},
			{Path: "usr/share/doc/libhello1", Link: "hello"},
			{Path: "usr/share/ca-certificates/test/b.crt", Content: "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----"},
			{Path: "usr/share/ca-certificates/test/a.crt", Content: "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"},
		},
	})
	return []string{hello, lib}
}

func TestBuildDebianLayer(t *testing.T) {
	debs := testDebs(t)
	symlinks := map[string]string{"/usr/bin/hi": "hello"}
	files := map[string]string{"/etc/hello.conf": "greeting=hi\n"}
	var layer bytes.Buffer
	diffID, err := packages.BuildDebianLayer(t.Context(), debs, symlinks, files, t.TempDir(), &layer)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, contents := layerEntries(t, layer.Bytes())

	want := []string{
		"etc/", "etc/hello.conf", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt",
		"tmp/",
		"usr/", "usr/bin/", "usr/bin/hello", "usr/bin/hello-again", "usr/bin/hi",
		"usr/lib/", "usr/lib/shared.txt", "usr/lib/x86_64-linux-gnu/",
		"usr/lib/x86_64-linux-gnu/libhello.so.1", "usr/lib/x86_64-linux-gnu/libhello.so.1.0",
		"usr/share/", "usr/share/ca-certificates/", "usr/share/ca-certificates/test/",
		"usr/share/ca-certificates/test/a.crt", "usr/share/ca-certificates/test/b.crt",
		"usr/share/doc/", "usr/share/doc/hello/", "usr/share/doc/hello/copyright", "usr/share/doc/libhello1",
		"var/", "var/lib/", "var/lib/dpkg/", "var/lib/dpkg/status.d/",
		"var/lib/dpkg/status.d/hello", "var/lib/dpkg/status.d/hello.md5sums",
		"var/lib/dpkg/status.d/libhello1", "var/lib/dpkg/status.d/libhello1.md5sums",
	}
	if got := slices.Sorted(maps.Keys(hdrs)); !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant (no maintainer script effects, no docs but copyright, no man pages):\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	status := contents["var/lib/dpkg/status.d/hello"]
	if !strings.HasPrefix(status, "Package: hello\nStatus: install ok installed\nVersion: 1:1.0-1\nArchitecture: amd64\n") ||
		!strings.Contains(status, "\nDepends: libhello1 (= 1:1.0-1)\n") || !strings.HasSuffix(status, "\n Built by debtest.\n") {
		t.Errorf("status record:\n%s", status)
	}
	if !strings.Contains(contents["var/lib/dpkg/status.d/hello.md5sums"], "  usr/bin/hello\n") {
		t.Errorf("md5sums: %q", contents["var/lib/dpkg/status.d/hello.md5sums"])
	}
	if h := hdrs["usr/bin/hello-again"]; h.Typeflag != tar.TypeReg || contents["usr/bin/hello-again"] != "#!/bin/sh\necho hello\n" || h.Mode != 0o755 {
		t.Errorf("hard link became %+v", h)
	}
	if h := hdrs["usr/bin/hi"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "hello" {
		t.Errorf("recipe symlink = %+v", h)
	}
	if h := hdrs["tmp/"]; h.Mode != 0o1777 {
		t.Errorf("tmp mode = %o, want 1777", h.Mode)
	}
	if got, want := contents["etc/ssl/certs/ca-certificates.crt"],
		"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"; got != want {
		t.Errorf("CA bundle = %q, want %q", got, want)
	}
	if contents["etc/hello.conf"] != "greeting=hi\n" || hdrs["etc/hello.conf"].Mode != 0o644 {
		t.Errorf("recipe file = %+v %q", hdrs["etc/hello.conf"], contents["etc/hello.conf"])
	}
	for name, h := range hdrs {
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: uid %d gid %d mtime %v, want the canonical 0, 0, epoch", name, h.Uid, h.Gid, h.ModTime)
		}
	}

	// The same .debs give the same layer, whatever their order.
	var again bytes.Buffer
	diffID2, err := packages.BuildDebianLayer(t.Context(), []string{debs[1], debs[0]}, symlinks, files, t.TempDir(), &again)
	if err != nil {
		t.Fatal(err)
	}
	if diffID2 != diffID || !bytes.Equal(again.Bytes(), layer.Bytes()) {
		t.Errorf("rebuilding in another order gave diffID %s, want %s", diffID2, diffID)
	}
}

func TestBuildDebianLayerConflicts(t *testing.T) {
	dir := t.TempDir()
	a := debtest.Build(t, dir, debtest.Package{Name: "a", Version: "1", Files: []debtest.File{{Path: "etc/x", Content: "a"}}})
	b := debtest.Build(t, dir, debtest.Package{Name: "b", Version: "1", Files: []debtest.File{{Path: "etc/x", Content: "b"}}})
	_, err := packages.BuildDebianLayer(t.Context(), []string{a, b}, nil, nil, t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "/etc/x is in both a and b") {
		t.Errorf("two packages writing /etc/x: err = %v", err)
	}
	_, err = packages.BuildDebianLayer(t.Context(), []string{a}, map[string]string{"/etc/x": "y"}, nil, t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "/etc/x is in both a and source.debian.symlinks") {
		t.Errorf("symlink over a package file: err = %v", err)
	}
	_, err = packages.BuildDebianLayer(t.Context(), []string{a, a}, nil, nil, t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "package a given twice") {
		t.Errorf("a package twice: err = %v", err)
	}
	broken := filepath.Join(dir, "broken.deb")
	if err := os.WriteFile(broken, []byte("not a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = packages.BuildDebianLayer(t.Context(), []string{broken}, nil, nil, t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "broken.deb") {
		t.Errorf("broken .deb: err = %v", err)
	}
	if errors.Is(err, os.ErrNotExist) {
		t.Errorf("broken .deb reported as missing: %v", err)
	}
}

// TestLoadRangedRecipes: a recipe with a range of versions loads without a
// version, sorts after the recipes of one version of its name, and must be
// required by name where it is a base.
func TestLoadRangedRecipes(t *testing.T) {
	ranged := strings.Replace(debPHPRecipe, "php8.2-cli=8.2.36-1~deb12u1]", "php8.2-cli]\n    versions: \">=8.2.30 <8.3\"\n    keep: 3", 1)
	recipes, err := packages.LoadRecipes(fstest.MapFS{
		"base/recipe.yaml": {Data: []byte(baseRecipe)},
		"php/8.2.yaml":     {Data: []byte(ranged)},
		"php/8.2.36.yaml":  {Data: []byte(debPHPRecipe)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recipes) != 3 || recipes[1].Version != "8.2.36+1.deb12u1" || !recipes[2].Ranged() || recipes[2].Version != "" {
		t.Fatalf("recipes %+v, want base, php 8.2.36, then the ranged php", recipes)
	}
	if d := recipes[2].Source.Debian; d.Versions != ">=8.2.30 <8.3" || d.Keep != 3 || d.BaseRecipe == nil {
		t.Errorf("ranged recipe's source %+v", d)
	}
	// A ranged base must be required by name.
	_, err = packages.LoadRecipes(fstest.MapFS{
		"base/recipe.yaml":  {Data: []byte(baseRecipe)},
		"php/8.2.yaml":      {Data: []byte(ranged)},
		"composer/2.5.yaml": {Data: []byte("name: composer\nversion: 2.5.5\nplatforms: [linux/amd64]\nsource:\n  debian:\n    packages: [composer]\n    base: ../php/8.2.yaml\n")},
	})
	if err == nil || !strings.Contains(err.Error(), `requires: must include php (source.debian.base php/8.2.yaml), e.g. "php >=8.2.30 <8.3"`) {
		t.Errorf("ranged base not required: err = %v", err)
	}
}
