package packages_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer/layertest"
)

const phpRecipe = `name: php
version: 8.2.36
platforms: [linux/amd64, linux/arm64]
source:
  dir: rootfs/{arch}
path: [/usr/local/php/bin]
env: {PHP_INI_DIR: /usr/local/etc/php}
requires: ["base ^12"]
conflicts: []
labels: {org.example.note: hi}
`

func TestLoadRecipes(t *testing.T) {
	fsys := fstest.MapFS{
		"php/recipe.yaml":               {Data: []byte(phpRecipe)},
		"php/8.10.yaml":                 {Data: []byte(strings.Replace(phpRecipe, "8.2.36", "8.10.0", 1))},
		"php/8.9.yaml":                  {Data: []byte(strings.Replace(phpRecipe, "8.2.36", "8.9.1", 1))},
		"base.yaml":                     {Data: []byte("name: base\nversion: 12.0.0\nplatforms: [linux/amd64]\nsource: {tar: \"base-{os}-{arch}.tar.gz\"}\n")},
		"README.md":                     {Data: []byte("not a recipe")},
		".git/config.yaml":              {Data: []byte("not: a recipe")},
		"php/rootfs/amd64/etc/php.yaml": {Data: []byte("package content, not a recipe")},
	}
	recipes, err := packages.LoadRecipes(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rc := range recipes {
		got = append(got, rc.Name+" "+rc.Version+" in "+rc.Dir+" from "+rc.File)
	}
	want := []string{
		"base 12.0.0 in . from base.yaml",
		"php 8.2.36 in php from php/recipe.yaml",
		"php 8.9.1 in php from php/8.9.yaml",
		"php 8.10.0 in php from php/8.10.yaml",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recipes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	php := recipes[1]
	if php.Source.Dir != "rootfs/{arch}" || len(php.Platforms) != 2 || php.Env["PHP_INI_DIR"] != "/usr/local/etc/php" ||
		php.Labels["org.example.note"] != "hi" || php.Requires[0] != "base ^12" {
		t.Errorf("php recipe = %+v", php)
	}
}

func TestLoadRecipesInvalid(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad semver", strings.Replace(phpRecipe, "8.2.36", "8.2", 1), []string{"bad.yaml", `version: "8.2"`}},
		{"bad platform", strings.Replace(phpRecipe, "linux/arm64", "arm64", 1), []string{"bad.yaml", "platforms[1]:", `invalid platform "arm64"`}},
		{"duplicate platform", strings.Replace(phpRecipe, "linux/arm64", "linux/amd64", 1), []string{"platforms[1]: linux/amd64 is listed twice"}},
		{"no platforms", strings.Replace(phpRecipe, "platforms: [linux/amd64, linux/arm64]\n", "", 1), []string{"platforms: at least one"}},
		{"dir and tar", strings.Replace(phpRecipe, "  dir: rootfs/{arch}\n", "  dir: rootfs/{arch}\n  tar: php.tar\n", 1), []string{"bad.yaml", "source: set only one of source.dir, source.tar"}},
		{"missing source", strings.Replace(phpRecipe, "source:\n  dir: rootfs/{arch}\n", "", 1), []string{"bad.yaml", "source: missing"}},
		{"empty source path", strings.Replace(phpRecipe, "dir: rootfs/{arch}", `dir: ""`, 1), []string{"source: missing"}},
		{"absolute source", strings.Replace(phpRecipe, "rootfs/{arch}", "/rootfs/{arch}", 1), []string{"source.dir:", "relative to the recipe file"}},
		{"unknown placeholder", strings.Replace(phpRecipe, "{arch}", "{cpu}", 1), []string{"source.dir:", "unknown placeholder {cpu}"}},
		{"unknown field", phpRecipe + "maintainer: me\n", []string{"bad.yaml", "field maintainer not found"}},
		{"unknown source field", strings.Replace(phpRecipe, "dir: rootfs", "directory: rootfs", 1), []string{"field directory not found"}},
		{"env PATH", strings.Replace(phpRecipe, "PHP_INI_DIR", "PATH", 1), []string{"env: PATH is not allowed"}},
		{"relative path", strings.Replace(phpRecipe, "[/usr/local/php/bin]", "[bin]", 1), []string{`path[0]: "bin"`}},
		{"unclean path", strings.Replace(phpRecipe, "[/usr/local/php/bin]", "[/usr/local/php/bin/]", 1), []string{`path[0]: "/usr/local/php/bin/" is not a clean path`}},
		{"empty path", strings.Replace(phpRecipe, "[/usr/local/php/bin]", `[/usr/local/php/bin, ""]`, 1), []string{"path[1]: empty"}},
		{"newline in env", strings.Replace(phpRecipe, "PHP_INI_DIR: /usr/local/etc/php", `PHP_INI_DIR: "/usr/local/etc/php\nLD_PRELOAD=/tmp/x.so"`, 1), []string{"env: value of PHP_INI_DIR contains the control character U+000A"}},
		{"bad requires", strings.Replace(phpRecipe, "base ^12", "base ^^12", 1), []string{"requires[0]:"}},
		{"empty", "", []string{"bad.yaml: empty file"}},
		{"two documents", phpRecipe + "---\n" + phpRecipe, []string{"more than one YAML document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := packages.LoadRecipes(fstest.MapFS{
				"good.yaml":    {Data: []byte(strings.Replace(phpRecipe, "php", "good", 1))},
				"sub/bad.yaml": {Data: []byte(tc.yaml)},
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "sub/bad.yaml") {
				t.Errorf("err = %q does not name the file", err)
			}
		})
	}
}

func TestLoadRecipesDuplicate(t *testing.T) {
	_, err := packages.LoadRecipes(fstest.MapFS{
		"a.yaml": {Data: []byte(phpRecipe)},
		"b.yaml": {Data: []byte(phpRecipe)},
	})
	if err == nil || !strings.Contains(err.Error(), "a.yaml and b.yaml both define php 8.2.36") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRecipeFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "php.yaml")
	if err := os.WriteFile(file, []byte(phpRecipe), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := packages.LoadRecipeFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Name != "php" || rc.Dir != dir || rc.File != file {
		t.Errorf("recipe = %+v", rc)
	}
	if _, err := packages.LoadRecipeFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// recipeDir writes phpRecipe and an arch-specific tree per platform.
func recipeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "php"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "php", "recipe.yaml"), []byte(phpRecipe), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		root := filepath.Join(dir, "php", "rootfs", arch)
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		layertest.WriteDir(t, root, []layertest.File{
			{Name: "usr", Mode: 0o755 | os.ModeDir, Data: ""},
			{Name: "usr/local", Mode: 0o755 | os.ModeDir, Data: ""},
			{Name: "usr/local/php", Mode: 0o755 | os.ModeDir, Data: ""},
			{Name: "usr/local/php/bin", Mode: 0o755 | os.ModeDir, Data: ""},
			{Name: "usr/local/php/bin/php", Mode: 0o755, Data: "php 8.2.36 " + arch + "\n"},
		})
	}
	return dir
}

func TestPublishRecipe(t *testing.T) {
	dir := recipeDir(t)
	recipes, err := packages.LoadRecipes(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(recipes) != 1 {
		t.Fatalf("loaded %d recipes, want 1", len(recipes))
	}
	pub, blobs, cat := newPublisher(t)
	rels, err := pub.PublishRecipe(t.Context(), recipes[0], dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 || rels[0].Layers[0].Platform.String() != "linux/amd64" || rels[1].Layers[0].Platform.String() != "linux/arm64" {
		t.Fatalf("releases = %+v", rels)
	}
	if rels[0].Layers[0].Digest == rels[1].Layers[0].Digest {
		t.Error("amd64 and arm64 layers have the same digest")
	}
	// By default each layer is stored once, gzip.
	if cat.calls != 1 || len(blobs.blobs) != 2 {
		t.Errorf("%d catalog calls and %d blobs, want 1 and 2", cat.calls, len(blobs.blobs))
	}
	for _, r := range rels {
		if l := r.Layers[0]; l.TarSize != 0 {
			t.Errorf("%s: TarSize %d without Uncompressed", l.Platform, l.TarSize)
		}
	}
	// With Uncompressed, twice: gzip, and the uncompressed tar beside it as
	// the blob diffID (what a stack with layerCompression none serves).
	upub, ublobs, _ := newPublisher(t)
	upub.Uncompressed = true
	urels, err := upub.PublishRecipe(t.Context(), recipes[0], dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ublobs.blobs) != 4 {
		t.Errorf("Uncompressed: %d blobs, want 4", len(ublobs.blobs))
	}
	for i, r := range urels {
		l := r.Layers[0]
		if tar, ok := ublobs.blobs[l.DiffID]; !ok || int64(len(tar)) != l.TarSize || l.TarSize <= l.Size {
			t.Errorf("%s: tar blob %s stored %v, %d bytes, want TarSize %d (> gzip %d)", l.Platform, l.DiffID, ok, len(tar), l.TarSize, l.Size)
		}
		if l.Digest != rels[i].Layers[0].Digest {
			t.Errorf("%s: the gzip layer differs with Uncompressed", l.Platform)
		}
	}
	// With Zstd, twice too: gzip, and the zstd blob beside it, which
	// decompresses to the tar whose digest is the diffID; the same layer
	// gives the same zstd blob.
	var firstZstd []digest.Digest
	for round := range 2 {
		zpub, zblobs, _ := newPublisher(t)
		zpub.Zstd = true
		zrels, err := zpub.PublishRecipe(t.Context(), recipes[0], dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(zblobs.blobs) != 4 {
			t.Errorf("Zstd: %d blobs, want 4", len(zblobs.blobs))
		}
		for i, r := range zrels {
			l := r.Layers[0]
			zst, ok := zblobs.blobs[l.ZstdDigest]
			if !ok || int64(len(zst)) != l.ZstdSize || digest.FromBytes(zst) != l.ZstdDigest || l.TarSize != 0 {
				t.Fatalf("%s: zstd blob %s stored %v, %d bytes, want ZstdSize %d and no tar", l.Platform, l.ZstdDigest, ok, len(zst), l.ZstdSize)
			}
			dec, err := zstd.NewReader(bytes.NewReader(zst))
			if err != nil {
				t.Fatal(err)
			}
			tar, err := io.ReadAll(dec)
			dec.Close()
			if err != nil || digest.FromBytes(tar) != l.DiffID {
				t.Errorf("%s: the zstd blob decompresses to %s (%v), want the diffID %s", l.Platform, digest.FromBytes(tar), err, l.DiffID)
			}
			if l.Digest != rels[i].Layers[0].Digest {
				t.Errorf("%s: the gzip layer differs with Zstd", l.Platform)
			}
			if round == 0 {
				firstZstd = append(firstZstd, l.ZstdDigest)
			} else if l.ZstdDigest != firstZstd[i] {
				t.Errorf("%s: zstd blob %s, then %s: want the same bytes from the same layer", l.Platform, firstZstd[i], l.ZstdDigest)
			}
		}
	}
	stored := cat.get(t, "php", "8.2.36")
	if len(stored.Layers) != 2 || !stored.Layers[0].Equal(rels[0].Layers[0]) || !stored.Layers[1].Equal(rels[1].Layers[0]) {
		t.Errorf("catalog layers = %+v", stored.Layers)
	}
	if got := stored.Requires; len(got) != 1 || got[0] != (catalog.Constraint{Name: "base", Range: "^12"}) {
		t.Errorf("requires = %v", got)
	}

	// The same recipe from LoadRecipeDir or LoadRecipeFile (baseDir "")
	// gives the same layers.
	fromDir, err := packages.LoadRecipeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "php"); len(fromDir) != 1 || fromDir[0].Dir != want {
		t.Fatalf("LoadRecipeDir = %+v, want one recipe in %s", fromDir, want)
	}
	if _, err := pub.PublishRecipe(t.Context(), fromDir[0], "", false); err != nil {
		t.Fatalf("republishing from LoadRecipeDir: %v", err)
	}
	rc, err := packages.LoadRecipeFile(filepath.Join(dir, "php", "recipe.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := pub.PublishRecipe(t.Context(), rc, "", false)
	if err != nil {
		t.Fatalf("republishing: %v", err)
	}
	if !again[1].Layers[0].Equal(rels[1].Layers[0]) {
		t.Errorf("republished layer %+v, want %+v", again[1].Layers[0], rels[1].Layers[0])
	}
}

func TestPublishRecipeMissingSource(t *testing.T) {
	dir := recipeDir(t)
	if err := os.RemoveAll(filepath.Join(dir, "php", "rootfs", "arm64")); err != nil {
		t.Fatal(err)
	}
	rc, err := packages.LoadRecipeFile(filepath.Join(dir, "php", "recipe.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pub, blobs, cat := newPublisher(t)
	_, err = pub.PublishRecipe(t.Context(), rc, "", false)
	if err == nil || !strings.Contains(err.Error(), `source.dir "rootfs/arm64" for linux/arm64`) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if blobs.puts != 0 || cat.calls != 0 {
		t.Errorf("stored %d blobs and %d catalog entries", blobs.puts, cat.calls)
	}
}

func TestPublishRecipeInvalid(t *testing.T) {
	pub, blobs, cat := newPublisher(t)
	rc := packages.Recipe{Name: "php", Version: "8.2", Platforms: []string{"linux/amd64"}, Source: packages.Source{Dir: "x"}}
	_, err := pub.PublishRecipe(t.Context(), rc, t.TempDir(), false)
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	if blobs.puts != 0 || cat.calls != 0 {
		t.Errorf("stored %d blobs and %d catalog entries", blobs.puts, cat.calls)
	}
}
