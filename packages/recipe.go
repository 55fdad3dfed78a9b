package packages

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/catalog"
)

// Recipe describes one package version for one or more platforms, as a
// YAML file:
//
//	name: php
//	version: 8.2.36
//	platforms: [linux/amd64, linux/arm64]
//	source:
//	  dir: rootfs/{arch}      # or: tar: php-{arch}.tar.gz, or: debian: {...}
//	path: [/usr/local/php/bin]
//	env: {PHP_INI_DIR: /usr/local/etc/php}
//	requires: ["base ^12"]
//	conflicts: []
//	labels: {org.example.note: hi}
//
// Unknown fields are errors, so a typo never silently changes a package.
type Recipe struct {
	Name string `yaml:"name"`
	// Version is a strict semver MAJOR.MINOR.PATCH[+BUILD]. A Debian
	// recipe may leave it out when its first package is pinned: it is then
	// derived from that Debian version (see DebianSource), and the loaders
	// fill it in.
	Version string `yaml:"version"`
	// Platforms lists "os/arch[/variant]"; the recipe is published for
	// each of them.
	Platforms []string          `yaml:"platforms"`
	Source    Source            `yaml:"source"`
	Path      []string          `yaml:"path,omitempty"`
	Env       map[string]string `yaml:"env,omitempty"`
	Requires  []string          `yaml:"requires,omitempty"`
	Conflicts []string          `yaml:"conflicts,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`

	// File is where the recipe was loaded from, for messages.
	File string `yaml:"-"`
	// Dir is the directory of File, which source paths are relative to:
	// slash-separated and relative to the fs.FS for LoadRecipes, an OS path
	// for LoadRecipeFile.
	Dir string `yaml:"-"`

	// labelPlatforms, when set, are the platforms whose Debian closures
	// the release's labels describe, a superset of Platforms: a Syncer
	// that publishes a recipe's platforms in several steps sets it to
	// all of them, so that every step records the same metadata.
	labelPlatforms []string
	// fromRange is the source.debian.versions of the ranged recipe that
	// ExpandRecipe made this one from.
	fromRange string
	// rebuild, set by the Syncer, makes this a rebuild of a present
	// version (see rebuiltVersion).
	rebuild *rebuildOf
}

// Source says where a recipe's content comes from. Exactly one field is
// set; later kinds of source are added as further optional fields, so
// existing recipes keep their meaning.
//
// Paths are slash-separated, relative to the recipe file, and may contain
// the placeholders {os}, {arch} and {variant}, expanded per platform.
type Source struct {
	// Dir is a directory whose tree becomes the layer.
	Dir string `yaml:"dir,omitempty"`
	// Tar is a tar file (gzip-compressed or plain) whose tree becomes the
	// layer.
	Tar string `yaml:"tar,omitempty"`
	// Debian names Debian binary packages whose closure becomes the layer.
	Debian *DebianSource `yaml:"debian,omitempty"`
}

// set lists the fields of s that are set, as "field", template pairs.
func (s Source) set() [][2]string {
	var out [][2]string
	if s.Dir != "" {
		out = append(out, [2]string{"dir", s.Dir})
	}
	if s.Tar != "" {
		out = append(out, [2]string{"tar", s.Tar})
	}
	return out
}

// expand replaces {os}, {arch} and {variant} in tmpl.
func expand(tmpl string, p catalog.Platform) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		if rest[i] == '}' {
			return "", fmt.Errorf("%q: unmatched '}'", tmpl)
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("%q: unclosed '{'", tmpl)
		}
		b.WriteString(rest[:i])
		switch key := rest[i+1 : i+j]; key {
		case "os":
			b.WriteString(p.OS)
		case "arch":
			b.WriteString(p.Architecture)
		case "variant":
			b.WriteString(p.Variant)
		default:
			return "", fmt.Errorf("%q: unknown placeholder {%s} (use {os}, {arch} or {variant})", tmpl, key)
		}
		rest = rest[i+j+1:]
	}
}

// staticDir returns the leading components of a dir source that contain no
// placeholder ("rootfs" for "rootfs/{arch}"), or "" if there are none or
// they do not name a directory below the recipe's.
func (s Source) staticDir() string {
	if s.Dir == "" {
		return ""
	}
	var static []string
	for c := range strings.SplitSeq(s.Dir, "/") {
		if strings.ContainsAny(c, "{}") {
			break
		}
		static = append(static, c)
	}
	d := path.Clean(strings.Join(static, "/"))
	if d == "." || d == ".." || strings.HasPrefix(d, "../") || path.IsAbs(d) {
		return ""
	}
	return d
}

// Validate checks every field and reports all problems at once as a
// *catalog.ValidationError, wrapped with the recipe's file name.
func (rc Recipe) Validate() error {
	_, problems := rc.metadata().Release()
	switch {
	case rc.Ranged() && rc.Version != "":
		problems = slices.DeleteFunc(problems, func(p string) bool { return strings.HasPrefix(p, "version:") })
		problems = append(problems, "version: leave it out: source.debian.versions takes the versions from the archive")
	case rc.Ranged():
		problems = slices.DeleteFunc(problems, func(p string) bool { return strings.HasPrefix(p, "version:") })
	case rc.effectiveVersion() == "" && rc.Source.Debian != nil:
		problems = slices.DeleteFunc(problems, func(p string) bool { return strings.HasPrefix(p, "version:") })
		problems = append(problems, "version: missing; give one, or pin the first source.debian package (name=version) to derive it, or give a range in source.debian.versions")
	}
	if len(rc.Platforms) == 0 {
		problems = append(problems, "platforms: at least one platform is required")
	}
	seen := map[string]bool{}
	for i, s := range rc.Platforms {
		p, err := catalog.ParsePlatform(s)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("platforms[%d]: %v", i, err))
		case seen[p.String()]:
			problems = append(problems, fmt.Sprintf("platforms[%d]: %s is listed twice", i, p))
		}
		seen[p.String()] = true
	}
	set := rc.Source.set()
	switch n := len(set); {
	case rc.Source.Debian != nil && n > 0:
		problems = append(problems, "source: set only one of source.dir, source.tar, source.debian")
	case rc.Source.Debian != nil:
		problems = append(problems, rc.Source.Debian.problems(rc.Labels)...)
		problems = append(problems, checkBase(rc)...)
	case n == 0:
		problems = append(problems, "source: missing; set one of source.dir, source.tar, source.debian")
	case n == 1:
		field, tmpl := set[0][0], set[0][1]
		if path.IsAbs(tmpl) || filepath.IsAbs(tmpl) {
			problems = append(problems, fmt.Sprintf("source.%s: %q must be relative to the recipe file", field, tmpl))
		} else if _, err := expand(tmpl, catalog.Platform{}); err != nil {
			problems = append(problems, fmt.Sprintf("source.%s: %v", field, err))
		}
	default:
		problems = append(problems, "source: set only one of source.dir, source.tar, source.debian")
	}
	if len(problems) > 0 {
		return fmt.Errorf("recipe %s: %w", rc.where(), &catalog.ValidationError{Problems: problems})
	}
	return nil
}

func (rc Recipe) where() string {
	if rc.File != "" {
		return rc.File
	}
	return rc.Name + " " + rc.Version
}

// Ranged reports whether rc names a range of versions
// (source.debian.versions) rather than one version: it is published
// through Publisher.ExpandRecipe, which turns it into one recipe per
// version.
func (rc Recipe) Ranged() bool {
	return rc.Source.Debian != nil && rc.Source.Debian.Versions != ""
}

// effectiveVersion is Version, or the version derived from the main Debian
// package when Version is empty.
func (rc Recipe) effectiveVersion() string {
	if rc.Version == "" && rc.Source.Debian != nil {
		if v, err := rc.Source.Debian.derivedVersion(); err == nil {
			return v
		}
	}
	return rc.Version
}

func (rc Recipe) metadata() catalog.ReleaseSpec {
	return catalog.ReleaseSpec{
		Name: rc.Name, Version: rc.effectiveVersion(), Path: rc.Path, Env: rc.Env, Labels: rc.Labels,
		Requires: rc.Requires, Conflicts: rc.Conflicts,
	}
}

// parseRecipe decodes and validates one recipe file.
func parseRecipe(data []byte, file string) (Recipe, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rc Recipe
	if err := dec.Decode(&rc); err != nil {
		if errors.Is(err, io.EOF) {
			return Recipe{}, fmt.Errorf("recipe %s: empty file", file)
		}
		return Recipe{}, fmt.Errorf("recipe %s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Recipe{}, fmt.Errorf("recipe %s: more than one YAML document", file)
	}
	rc.File = file
	rc.Version = rc.effectiveVersion()
	if err := rc.Validate(); err != nil {
		return Recipe{}, err
	}
	return rc, nil
}

// LoadRecipeFile loads and validates the recipe in the file name. Its Dir
// is filepath.Dir(name). The base recipe of a Debian source is loaded too.
func LoadRecipeFile(name string) (Recipe, error) {
	return loadRecipeFile(name, nil)
}

// loadRecipeFile loads name; chain lists the recipes whose base it is.
func loadRecipeFile(name string, chain []string) (Recipe, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return Recipe{}, fmt.Errorf("loading recipe: %w", err)
	}
	rc, err := parseRecipe(data, name)
	if err != nil {
		return Recipe{}, err
	}
	rc.Dir = filepath.Dir(name)
	if d := rc.Source.Debian; d != nil && d.Base != "" {
		file := filepath.Join(rc.Dir, filepath.FromSlash(d.Base))
		if slices.Contains(chain, filepath.Clean(file)) {
			return Recipe{}, fmt.Errorf("recipe %s: source.debian.base: %s is its own base", name, file)
		}
		base, err := loadRecipeFile(file, append(chain, filepath.Clean(name)))
		if err != nil {
			return Recipe{}, fmt.Errorf("recipe %s: source.debian.base: %w", name, err)
		}
		d.BaseRecipe = &base
		if err := rc.Validate(); err != nil {
			return Recipe{}, err
		}
	}
	return rc, nil
}

// LoadRecipes loads and validates every *.yaml file in fsys, recursively,
// and returns the recipes sorted by name, then version. Hidden directories
// (".git"), directories named testdata and directories starting with '_'
// (the Go tool's conventions, so that the packages/ directory of the
// source tree yields only the bundled recipes) are skipped, and so are
// YAML files inside a recipe's source
// directory (package content such as rootfs/{arch}/etc/app.yaml is not a
// recipe): files are read shallowest first, and the placeholder-free
// leading part of each recipe's source.dir ("rootfs") is excluded from the
// search. Every invalid file is reported, and two recipes for the same name
// and version are an error. The base recipe of a Debian source is read from
// fsys (it need not be below the directory walked, but must be in fsys).
func LoadRecipes(fsys fs.FS) ([]Recipe, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata") {
			return fs.SkipDir
		}
		if !d.IsDir() && path.Ext(p) == ".yaml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading recipes: %w", err)
	}
	slices.SortFunc(files, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "/"), strings.Count(b, "/")), strings.Compare(a, b))
	})

	var (
		recipes []Recipe
		errs    []error
		content []string // source directories of loaded recipes
		byID    = map[string]string{}
	)
	for _, f := range files {
		if slices.ContainsFunc(content, func(dir string) bool { return strings.HasPrefix(f, dir+"/") }) {
			continue
		}
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading recipe: %w", err))
			continue
		}
		rc, err := parseRecipe(data, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rc.Dir = path.Dir(f)
		if d := rc.Source.staticDir(); d != "" {
			content = append(content, path.Join(rc.Dir, d))
		}
		id := recipeID(rc)
		if other, dup := byID[id]; dup {
			errs = append(errs, fmt.Errorf("recipes %s and %s both define %s", other, f, id))
			continue
		}
		byID[id] = f
		recipes = append(recipes, rc)
	}
	if len(errs) == 0 {
		errs = resolveBases(fsys, recipes)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(recipes, compareRecipes)
	return recipes, nil
}

// recipeID names what a recipe defines, for finding two that define the
// same: "name version", or "name versions RANGE from SOURCES" for a
// ranged recipe.
// Build metadata does not make another version (semver precedence ignores
// it): 8.2.36+a and 8.2.36+b are one catalog release.
func recipeID(rc Recipe) string {
	if d := rc.Source.Debian; rc.Ranged() {
		// Two ranges of one name may differ by their sources (composer
		// ^2 from bookworm and from trixie).
		return rc.Name + " versions " + d.Versions + " from " + strings.Join(d.Sources, ", ")
	}
	v, _, _ := strings.Cut(semver.MustParse(rc.Version).String(), "+")
	return rc.Name + " " + v
}

// compareRecipes orders recipes by name, then version; ranged recipes
// after those of one version, by range.
func compareRecipes(a, b Recipe) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	switch {
	case a.Ranged() && b.Ranged():
		return strings.Compare(recipeID(a), recipeID(b))
	case a.Ranged():
		return 1
	case b.Ranged():
		return -1
	}
	return semver.MustParse(a.Version).Compare(semver.MustParse(b.Version))
}

// resolveBases sets the BaseRecipe of every Debian source in recipes, and
// of their bases, reading base files from fsys.
func resolveBases(fsys fs.FS, recipes []Recipe) []error {
	loaded := map[string]*Recipe{}
	for i := range recipes {
		loaded[recipes[i].File] = &recipes[i]
	}
	var resolve func(rc *Recipe, chain []string) error
	resolve = func(rc *Recipe, chain []string) error {
		d := rc.Source.Debian
		if d == nil || d.Base == "" || d.BaseRecipe != nil {
			return nil
		}
		file := path.Join(rc.Dir, d.Base)
		if !fs.ValidPath(file) {
			return fmt.Errorf("recipe %s: source.debian.base: %s is outside the recipe directory", rc.File, d.Base)
		}
		if slices.Contains(chain, file) {
			return fmt.Errorf("recipe %s: source.debian.base: %s is its own base", rc.File, file)
		}
		base, ok := loaded[file]
		if !ok {
			data, err := fs.ReadFile(fsys, file)
			if err != nil {
				return fmt.Errorf("recipe %s: source.debian.base: %w", rc.File, err)
			}
			b, err := parseRecipe(data, file)
			if err != nil {
				return fmt.Errorf("recipe %s: source.debian.base: %w", rc.File, err)
			}
			b.Dir = path.Dir(file)
			base = &b
			loaded[file] = base
		}
		if err := resolve(base, append(chain, rc.File)); err != nil {
			return err
		}
		cp := *base
		d.BaseRecipe = &cp
		return rc.Validate()
	}
	var errs []error
	for i := range recipes {
		if err := resolve(&recipes[i], nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// LoadRecipeDir is LoadRecipes for the OS directory dir, with each
// recipe's Dir made an OS path (dir joined with the recipe's directory), as
// LoadRecipeFile does: its recipes are published with baseDir "".
func LoadRecipeDir(dir string) ([]Recipe, error) {
	recipes, err := LoadRecipes(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("loading recipes from %s: %w", dir, err)
	}
	seen := map[*DebianSource]bool{}
	var osPaths func(rc *Recipe)
	osPaths = func(rc *Recipe) {
		rc.Dir = filepath.Join(dir, filepath.FromSlash(rc.Dir))
		rc.File = filepath.Join(dir, filepath.FromSlash(rc.File))
		if d := rc.Source.Debian; d != nil && d.BaseRecipe != nil && !seen[d] {
			seen[d] = true
			osPaths(d.BaseRecipe)
		}
	}
	for i := range recipes {
		osPaths(&recipes[i])
	}
	return recipes, nil
}

// PublishRecipe publishes rc for every platform it lists. Source paths are
// resolved against filepath.Join(baseDir, rc.Dir): baseDir is the OS
// directory of the fs.FS the recipe was loaded from with LoadRecipes, or ""
// for a recipe from LoadRecipeFile or LoadRecipeDir.
//
// Every platform's source must exist before anything is built; every layer
// is stored before the release is recorded, in one catalog.Publish call
// carrying all platforms' layers. The result has one release per platform,
// in the order of rc.Platforms, each with that platform's layer.
func (p *Publisher) PublishRecipe(ctx context.Context, rc Recipe, baseDir string, force bool) ([]catalog.Release, error) {
	what := fmt.Sprintf("publishing %s %s for %s", rc.Name, rc.effectiveVersion(), platformList(rc.Platforms))
	if rc.Ranged() {
		return nil, fmt.Errorf("publishing %s %s: recipe %s names a range of versions: publish each recipe that ExpandRecipe returns",
			rc.Name, rc.Source.Debian.Versions, rc.where())
	}
	if d := rc.Source.Debian; d != nil && d.Base != "" && d.BaseRecipe == nil {
		file := filepath.Join(baseDir, filepath.FromSlash(rc.Dir), filepath.FromSlash(d.Base))
		base, err := LoadRecipeFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: recipe %s: source.debian.base: %w", what, rc.where(), err)
		}
		dc := *d
		dc.BaseRecipe = &base
		rc.Source.Debian = &dc
	}
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	release, _ := rc.metadata().Release()
	if rc.Source.Debian != nil {
		rels, err := p.publishDebian(ctx, rc, release, force)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return rels, nil
	}
	set := rc.Source.set()[0]
	field, tmpl := set[0], set[1]
	targets := make([]target, 0, len(rc.Platforms))
	for _, s := range rc.Platforms {
		plat, _ := catalog.ParsePlatform(s)
		rel, _ := expand(tmpl, plat)
		if rel == "" {
			return nil, fmt.Errorf("%s: recipe %s: source.%s %q is empty for %s", what, rc.where(), field, tmpl, plat)
		}
		src := filepath.Join(baseDir, filepath.FromSlash(rc.Dir), filepath.FromSlash(rel))
		if err := checkSource(field, src); err != nil {
			return nil, fmt.Errorf("%s: recipe %s: source.%s %q for %s: %w", what, rc.where(), field, rel, plat, err)
		}
		t := target{platform: plat}
		if field == "dir" {
			t.dir = src
		} else {
			t.tar = src
		}
		targets = append(targets, t)
	}
	rels, err := p.publish(ctx, release, targets, force)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return rels, nil
}

// checkSource checks that a dir source is a directory and a tar source a
// regular file.
func checkSource(field, name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	switch {
	case field == "dir" && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", name)
	case field == "tar" && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", name)
	}
	return nil
}
