package packages

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/internal/debian"
)

// DebianSource makes a recipe's layer from Debian binary packages:
//
//	source:
//	  debian:
//	    packages: [php8.2-cli=8.2.36-1~deb12u1]   # name or name=version
//	    base: ../base/recipe.yaml                  # the recipe this layer is installed on
//	    symlinks: {/usr/bin/php: php8.2}           # what maintainer scripts would have made
//	    files: {/etc/timezone: "Etc/UTC\n"}
//	    sources:                                   # default: the publisher's, else the machine's
//	      - deb http://deb.debian.org/debian bookworm main
//
// The layer holds the dependency closure of Packages minus everything the
// Base recipe (and its own base, recursively) provides, unpacked without
// running maintainer scripts, plus one dpkg status record per package
// under /var/lib/dpkg/status.d. See the package documentation.
type DebianSource struct {
	// Packages are apt requests: "name" (the newest version the sources
	// offer) or "name=version" (exactly that version; it also pins the
	// other binary packages of the same source package to it). The first
	// is the main package: when the recipe has no version, it is derived
	// from the main package's pinned Debian version.
	Packages []string `yaml:"packages"`
	// Base is the recipe (a file, relative to this one) whose Debian
	// packages are already installed below this layer: they are left out
	// of the closure. The recipe must require Base's name with a range
	// that Base's version satisfies. Empty for the stack's base itself.
	Base string `yaml:"base,omitempty"`
	// Symlinks are added to the layer, absolute path → link target, for
	// what maintainer scripts would have done that matters (alternatives
	// such as /usr/bin/php → php8.2, enabled PHP modules). A path that a
	// package already ships is an error.
	Symlinks map[string]string `yaml:"symlinks,omitempty"`
	// Files are small regular files (mode 0644) added to the layer,
	// absolute path → content, e.g. /etc/passwd.
	Files map[string]string `yaml:"files,omitempty"`
	// Sources are one-line apt sources ("deb URI SUITE COMPONENT...")
	// used instead of the Publisher's DebianSources or the machine's apt
	// sources. Options that skip signature checks are refused.
	Sources []string `yaml:"sources,omitempty"`
	// InPlace are patterns (path.Match) of binary packages of the closure
	// that stay at their own paths although the recipe did not request
	// them, e.g. "php-*" for composer's PHP libraries, which it loads from
	// /usr/share/php. Every other dependency of a recipe with a Base goes
	// into the layer's prefix (see relocation).
	InPlace []string `yaml:"inPlace,omitempty"`
	// CarryNewer lets the layer carry, in its prefix, newer versions of
	// packages that its base provides, where its packages need them: a
	// package built against a newer glibc than the base's (nodejs 24 from
	// forky, which needs glibc 2.43, on the trixie base with 2.41) brings
	// that glibc and its loader, and its executables' PT_INTERP points
	// there. Without it (the default), such a closure fails naming the
	// package and both versions. Only in a recipe with a Base.
	CarryNewer bool `yaml:"carryNewer,omitempty"`
	// Carry names packages that the base provides and that the layer
	// carries all the same, because the layer also runs on another
	// release of its base's package that lacks them: npm 9.2.0, built on
	// nodejs 20 (trixie), which carries node-minimatch in place, also runs
	// on nodejs 18 (bookworm), which does not. Each must be provided by
	// the base, and joins the closure as the base has it: the layer then
	// writes the base's files unchanged, which the overlap check admits.
	// Their dependencies do not come along: list them too.
	// Only in a recipe with a base.
	Carry []string `yaml:"carry,omitempty"`
	// Versions, instead of a pin of the main package, is a range of the
	// semantic version derived from its Debian version (Masterminds/semver
	// constraint syntax: ">=8.2.30 <8.3", "~8.2", "^20"): the recipe then
	// stands for the Keep newest versions in the range that the sources
	// offer for every platform of the recipe, each published as if the
	// main package were pinned to it (Publisher.ExpandRecipe). The other
	// packages of the main package's source follow it, as with a pin.
	Versions string `yaml:"versions,omitempty"`
	// Keep is how many of the newest versions in Versions to publish
	// (default 1; fewer when the archive has fewer). Versions published
	// before stay in the catalog when newer ones push them out.
	Keep int `yaml:"keep,omitempty"`
	// Keyring verifies Sources entries that have no signed-by option
	// (default /usr/share/keyrings/debian-archive-keyring.gpg).
	Keyring string `yaml:"keyring,omitempty"`

	// BaseRecipe is Base, loaded, with its own BaseRecipe. The loaders
	// (LoadRecipes, LoadRecipeFile, LoadRecipeDir) set it; PublishRecipe
	// loads it from disk when it is nil.
	BaseRecipe *Recipe `yaml:"-"`
}

// Labels that a Debian recipe's releases carry. Recipes may not set them.
const (
	// LabelDebianPackage is the main package's name, e.g. php8.2-cli.
	LabelDebianPackage = "io.envreg.debian.package"
	// LabelDebianVersion is the main package's exact Debian version, e.g.
	// 8.2.36-1~deb12u1 (the semver build metadata cannot hold '~').
	LabelDebianVersion = "io.envreg.debian.version"
	// LabelDebianPackages lists the layer's packages as name=version,
	// sorted, separated by spaces. A package that is not in every
	// platform's layer with the same version is written name:arch=version.
	LabelDebianPackages = "io.envreg.debian.packages"
)

const debianLabelPrefix = "io.envreg.debian."

// requests parses Packages.
func (d *DebianSource) requests() ([]debian.Request, error) {
	var out []debian.Request
	for _, s := range d.Packages {
		r, err := debian.ParseRequest(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// derivedVersion is the semantic version derived from the main package's
// pinned Debian version, or "" if the main package is not pinned.
func (d *DebianSource) derivedVersion() (string, error) {
	if len(d.Packages) == 0 {
		return "", nil
	}
	r, err := debian.ParseRequest(d.Packages[0])
	if err != nil || r.Version == "" {
		return "", err
	}
	v, _ := debian.ParseVersion(r.Version) // ParseRequest checked it
	sv, err := v.Semver()
	if err != nil {
		return "", err
	}
	return sv.String(), nil
}

// problems validates d without reading files or the network.
func (d *DebianSource) problems(labels map[string]string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(d.Packages) == 0 {
		add("source.debian.packages: at least one package is required")
	}
	seen := map[string]bool{}
	for i, s := range d.Packages {
		r, err := debian.ParseRequest(s)
		switch {
		case err != nil:
			add("source.debian.packages[%d]: %v", i, err)
		case seen[r.Name]:
			add("source.debian.packages[%d]: %s is listed twice", i, r.Name)
		}
		seen[r.Name] = true
	}
	if _, err := d.derivedVersion(); err != nil {
		add("source.debian.packages[0]: %v", err)
	}
	problems = append(problems, d.rangeProblems()...)
	if d.Base != "" && (path.IsAbs(d.Base) || filepath.IsAbs(d.Base) || strings.ContainsAny(d.Base, "{}")) {
		add("source.debian.base: %q must be a recipe file relative to this one, without placeholders", d.Base)
	}
	for _, p := range slices.Sorted(maps.Keys(d.Symlinks)) {
		if err := checkAddedPath(p); err != nil {
			add("source.debian.symlinks: %v", err)
		} else if d.Symlinks[p] == "" {
			add("source.debian.symlinks: %s: empty target", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(d.Files)) {
		if err := checkAddedPath(p); err != nil {
			add("source.debian.files: %v", err)
		} else if _, dup := d.Symlinks[p]; dup {
			add("source.debian.files: %s is also in symlinks", p)
		}
	}
	for i, pat := range d.InPlace {
		if _, err := path.Match(pat, ""); err != nil || d.Base == "" {
			add("source.debian.inPlace[%d]: %q: want a path.Match pattern, in a recipe with a base", i, pat)
		}
	}
	if d.CarryNewer && d.Base == "" {
		add("source.debian.carryNewer: only in a recipe with a base")
	}
	carried := map[string]bool{}
	for i, name := range d.Carry {
		switch {
		case d.Base == "":
			add("source.debian.carry[%d]: %q: only in a recipe with a base", i, name)
		case !validPackageName(name):
			add("source.debian.carry[%d]: %q is not a Debian package name", i, name)
		case carried[name]:
			add("source.debian.carry[%d]: %s is listed twice", i, name)
		case seen[name]:
			add("source.debian.carry[%d]: %s is in packages", i, name)
		}
		carried[name] = true
	}
	switch {
	case d.Keyring != "" && d.Sources == nil:
		add("source.debian.keyring: only used with source.debian.sources")
	case d.Keyring != "" && !path.IsAbs(d.Keyring):
		add("source.debian.keyring: %q is not an absolute path", d.Keyring)
	}
	if d.Sources != nil {
		if err := debian.CheckSources(d.Sources); err != nil {
			add("source.debian.sources: %v", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if strings.HasPrefix(k, debianLabelPrefix) {
			add("labels: %s: the %s* labels are set from the Debian packages", k, debianLabelPrefix)
		}
	}
	return problems
}

// validPackageName reports whether name is a Debian package name, without
// a version.
func validPackageName(name string) bool {
	r, err := debian.ParseRequest(name)
	return err == nil && r.Version == "" && r.Name == name
}

// rangeProblems validates Versions and Keep.
func (d *DebianSource) rangeProblems() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch {
	case d.Versions == "" && d.Keep != 0:
		add("source.debian.keep: only used with source.debian.versions")
	case d.Versions == "":
	case d.Keep < 0:
		add("source.debian.keep: %d: want the number of newest versions to publish (default 1)", d.Keep)
	default:
		if _, err := semver.NewConstraint(d.Versions); err != nil {
			add("source.debian.versions: %q: %v", d.Versions, err)
		}
		if len(d.Packages) > 0 {
			if r, err := debian.ParseRequest(d.Packages[0]); err == nil && r.Version != "" {
				add("source.debian.versions: the main package is pinned (%s); give a pin or a range, not both", d.Packages[0])
			}
		}
	}
	return problems
}

// checkAddedPath checks a symlinks or files key.
func checkAddedPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%q must be a clean absolute path", p)
	}
	if strings.HasPrefix(p, "/var/lib/dpkg/") {
		return fmt.Errorf("%s: /var/lib/dpkg is written from the packages", p)
	}
	return nil
}

// checkBase validates the relation between a recipe and its loaded base.
func checkBase(rc Recipe) []string {
	d := rc.Source.Debian
	if d == nil || d.BaseRecipe == nil {
		return nil
	}
	b := d.BaseRecipe
	if b.Source.Debian == nil {
		return []string{fmt.Sprintf("source.debian.base: %s has no Debian source", b.where())}
	}
	if b.Ranged() {
		// Layers are built on the newest version in the base's range; the
		// resolver sees to it that they are composed with a version the
		// requirement admits.
		for _, s := range rc.Requires {
			if c, err := catalog.ParseConstraint(s); err == nil && c.Name == b.Name {
				return nil
			}
		}
		return []string{fmt.Sprintf("requires: must include %s (source.debian.base %s), e.g. \"%s %s\"", b.Name, b.where(), b.Name, b.Source.Debian.Versions)}
	}
	bv, err := semver.StrictNewVersion(b.effectiveVersion())
	if err != nil {
		return nil // the base's own validation reports it
	}
	for _, s := range rc.Requires {
		c, err := catalog.ParseConstraint(s)
		if err != nil || c.Name != b.Name {
			continue
		}
		if cs, err := c.Constraints(); err == nil && cs.Check(bv) {
			return nil
		}
	}
	return []string{fmt.Sprintf("requires: must include %s with a range that %s %s (source.debian.base) satisfies, e.g. \"%s ^%d\"",
		b.Name, b.Name, bv, b.Name, bv.Major())}
}

// Debian architecture names of OCI platforms.
var debianArchs = map[string]string{
	"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm64/v8": "arm64",
	"linux/arm/v7": "armhf", "linux/arm/v5": "armel", "linux/386": "i386",
	"linux/ppc64le": "ppc64el", "linux/s390x": "s390x", "linux/riscv64": "riscv64",
	"linux/mips64le": "mips64el",
}

func debianArch(p catalog.Platform) (string, error) {
	if a, ok := debianArchs[p.String()]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no Debian architecture for platform %s", p)
}

// debianState is what a Publisher keeps between the recipes of one run:
// one private apt per architecture and sources (so lists are refreshed at
// most once per run) and the resolved closures of base recipes.
type debianState struct {
	mu       sync.Mutex
	apts     map[string]*debian.Apt
	provided map[string][]debian.Package
}

// cacheDir returns the Debian cache directory.
func (p *Publisher) cacheDir() (string, error) {
	dir := p.CacheDir
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory for Debian packages (set $XDG_CACHE_HOME or $HOME, or Publisher.CacheDir): %w", err)
		}
		dir = filepath.Join(c, "envreg")
	}
	return filepath.Join(dir, "debian"), nil
}

// apt returns the private apt for arch and d's sources.
func (p *Publisher) apt(arch string, d *DebianSource) (*debian.Apt, error) {
	sources, keyring := d.Sources, d.Keyring
	if sources == nil {
		sources = p.DebianSources
	}
	key := arch + "\x00" + strings.Join(sources, "\n") + "\x00" + keyring
	p.deb.mu.Lock()
	defer p.deb.mu.Unlock()
	if a, ok := p.deb.apts[key]; ok {
		return a, nil
	}
	dir, err := p.cacheDir()
	if err != nil {
		return nil, err
	}
	a, err := debian.New(debian.Config{
		CacheDir: dir, Arch: arch, Sources: sources, Keyring: keyring,
		TempDir: p.TempDir, Progress: p.aptOutput(), Log: p.log(),
	})
	if err != nil {
		return nil, err
	}
	if p.deb.apts == nil {
		p.deb.apts = map[string]*debian.Apt{}
	}
	p.deb.apts[key] = a
	return a, nil
}

// provided returns every package that base and its own bases provide on
// plat, resolved once per run.
func (p *Publisher) provided(ctx context.Context, base *Recipe, plat catalog.Platform) ([]debian.Package, error) {
	if base == nil {
		return nil, nil
	}
	if base.Ranged() {
		// A ranged base (composer on php 8.2.x) provides what its newest
		// version in range provides.
		versions, err := p.ExpandRecipe(ctx, *base)
		if err != nil {
			return nil, fmt.Errorf("resolving base %s %s: %w", base.Name, base.Source.Debian.Versions, err)
		}
		base = &versions[0]
	}
	key := base.Name + " " + base.effectiveVersion() + " " + plat.String()
	p.deb.mu.Lock()
	got, ok := p.deb.provided[key]
	p.deb.mu.Unlock()
	if ok {
		return got, nil
	}
	_, closure, below, err := p.resolveDebian(ctx, *base, plat)
	if err != nil {
		return nil, fmt.Errorf("resolving base %s %s: %w", base.Name, base.effectiveVersion(), err)
	}
	all := slices.Concat(below, closure)
	p.deb.mu.Lock()
	if p.deb.provided == nil {
		p.deb.provided = map[string][]debian.Package{}
	}
	p.deb.provided[key] = all
	p.deb.mu.Unlock()
	return all, nil
}

// resolveDebian resolves rc's packages on plat: the closure that its layer
// holds and what its base provides.
func (p *Publisher) resolveDebian(ctx context.Context, rc Recipe, plat catalog.Platform) (a *debian.Apt, closure, below []debian.Package, err error) {
	d := rc.Source.Debian
	arch, err := debianArch(plat)
	if err != nil {
		return nil, nil, nil, err
	}
	if d.Base != "" && d.BaseRecipe == nil {
		return nil, nil, nil, fmt.Errorf("recipe %s: base %s is not loaded", rc.where(), d.Base)
	}
	below, err = p.provided(ctx, d.BaseRecipe, plat)
	if err != nil {
		return nil, nil, nil, err
	}
	if a, err = p.apt(arch, d); err != nil {
		return nil, nil, nil, err
	}
	reqs, err := d.requests()
	if err != nil {
		return nil, nil, nil, err
	}
	installed := make([]debian.Paragraph, len(below))
	for i, b := range below {
		installed[i] = b.Installed()
		if crossRelease(d) {
			// A relocated closure shares no file with the base: the
			// base's Conflicts, Breaks and Replaces (trixie's libssl3t64
			// against bookworm's libssl3) do not apply to it. (Within one
			// release the records must stay as the index has them: apt
			// takes a record that differs for another version.)
			installed[i] = installed[i].Without("Conflicts", "Breaks", "Replaces")
		}
	}
	resolve := a.Resolve
	if d.CarryNewer {
		resolve = a.ResolveUpgrading
	}
	closure, err = resolve(ctx, reqs, installed)
	if err != nil {
		return nil, nil, nil, err
	}
	if !slices.ContainsFunc(closure, func(pk debian.Package) bool { return pk.Name == reqs[0].Name }) {
		return nil, nil, nil, fmt.Errorf("main package %s is already provided by the base for %s", reqs[0].Name, arch)
	}
	// The carried packages join the closure as the base has them (apt,
	// seeing them installed, leaves them out): as the nearest layer below
	// has them, where two do (a carryNewer base).
	for _, name := range d.Carry {
		i := len(below) - 1
		for i >= 0 && below[i].Name != name {
			i--
		}
		if i < 0 {
			return nil, nil, nil, fmt.Errorf("source.debian.carry: %s: the base %s does not provide it for %s", name, d.BaseRecipe.Name, arch)
		}
		closure = append(closure, below[i])
	}
	slices.SortFunc(closure, func(x, y debian.Package) int { return strings.Compare(x.Name, y.Name) })
	return a, closure, below, nil
}

// crossRelease reports whether d takes its packages from other sources
// than one of its bases.
func crossRelease(d *DebianSource) bool {
	for b := d.BaseRecipe; b != nil && b.Source.Debian != nil; b = b.Source.Debian.BaseRecipe {
		if !slices.Equal(d.Sources, b.Source.Debian.Sources) {
			return true
		}
	}
	return false
}

// publishDebian resolves the packages of every platform, then downloads
// them, before building any layer, then publishes like any other recipe.
func (p *Publisher) publishDebian(ctx context.Context, rc Recipe, release catalog.Release, force bool) ([]catalog.Release, error) {
	d := rc.Source.Debian
	reqs, _ := d.requests()
	closures := make(map[catalog.Platform][]debian.Package, len(rc.Platforms))
	var resolved []resolution
	for _, s := range rc.Platforms {
		plat, _ := catalog.ParsePlatform(s)
		a, closure, below, err := p.resolveDebian(ctx, rc, plat)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", plat, err)
		}
		resolved = append(resolved, resolution{plat, a, closure, below})
		closures[plat] = closure
	}
	var targets []target
	for _, r := range resolved {
		t, err := p.debianTarget(ctx, rc, r)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if err := p.labelClosures(ctx, rc, closures); err != nil {
		return nil, err
	}
	if release.Labels == nil {
		release.Labels = map[string]string{}
	}
	release.Labels[LabelDebianPackage] = reqs[0].Name
	release.Labels[LabelDebianVersion] = mainVersion(reqs[0].Name, closures)
	release.Labels[LabelDebianPackages] = packageList(closures)
	if rb := rc.rebuild; rb != nil {
		release.Labels[catalog.LabelRebuild] = rb.reason
		release.Yanked = rb.yanked
	}
	p.log().InfoContext(ctx, "resolved Debian packages", "name", rc.Name, "version", release.Version.String(),
		"package", reqs[0].Name, "debianVersion", release.Labels[LabelDebianVersion],
		"packages", len(strings.Fields(release.Labels[LabelDebianPackages])))
	return p.publish(ctx, release, targets, force)
}

// resolution is a recipe's closure on one platform and what its bases
// provide there.
type resolution struct {
	plat           catalog.Platform
	apt            *debian.Apt
	closure, below []debian.Package
}

// debianTarget downloads rc's closure for r.plat and returns the target that
// builds its layer. The errors name the platform.
func (p *Publisher) debianTarget(ctx context.Context, rc Recipe, r resolution) (target, error) {
	d, plat, a, closure := rc.Source.Debian, r.plat, r.apt, r.closure
	if err := a.Fetch(ctx, closure); err != nil {
		return target{}, fmt.Errorf("%s: %w", plat, err)
	}
	l := debianLayer{symlinks: d.Symlinks, files: d.Files, tempDir: p.TempDir, base: r.below}
	for _, pk := range closure {
		l.debs = append(l.debs, pk.File)
	}
	if d.BaseRecipe != nil {
		var err error
		tool, err := p.patchelf(ctx)
		if err != nil {
			return target{}, err
		}
		if l.reloc, err = relocationFor(rc, a.Arch(), closure, tool); err != nil {
			return target{}, fmt.Errorf("%s: %w", plat, err)
		}
	}
	build := func(ctx context.Context, w io.Writer) (digest.Digest, error) {
		dgst, err := buildDebianLayer(ctx, l, w)
		if err != nil {
			return "", fmt.Errorf("building the layer of %s %s for %s: %w", rc.Name, rc.effectiveVersion(), plat, err)
		}
		return dgst, nil
	}
	return target{platform: plat, build: build, distro: a.Distro()}, nil
}

// relocationFor is the relocation of rc's layer: its prefix is
// /opt/envreg/<name>-<version>; the source packages of its requests stay in
// place.
func relocationFor(rc Recipe, arch string, closure []debian.Package, patchelf string) (*relocation, error) {
	d := rc.Source.Debian
	reqs, _ := d.requests()
	var sources []string
	for _, pk := range closure {
		if slices.ContainsFunc(reqs, func(r debian.Request) bool { return r.Name == pk.Name }) {
			sources = append(sources, pk.Source)
		}
	}
	return newRelocation(path.Join(relocationRoot, rc.Name+"-"+rc.effectiveVersion()), arch, sources, d.InPlace, patchelf)
}

// mainVersion is the main package's Debian version, or "arch=version ..."
// if it differs between platforms.
func mainVersion(name string, closures map[catalog.Platform][]debian.Package) string {
	byArch := map[string]string{}
	for _, c := range closures {
		for _, pk := range c {
			if pk.Name == name {
				byArch[pk.Architecture] = pk.Version
			}
		}
	}
	versions := slices.Compact(slices.Sorted(maps.Values(byArch)))
	if len(versions) == 1 {
		return versions[0]
	}
	var out []string
	for _, a := range slices.Sorted(maps.Keys(byArch)) {
		out = append(out, a+"="+byArch[a])
	}
	return strings.Join(out, " ")
}

// packageList formats LabelDebianPackages.
func packageList(closures map[catalog.Platform][]debian.Package) string {
	count := map[string]int{}
	for _, c := range closures {
		for _, pk := range c {
			count[pk.String()]++
		}
	}
	var out []string
	for _, c := range closures {
		for _, pk := range c {
			switch {
			case count[pk.String()] == len(closures):
				out = append(out, pk.String())
			default:
				out = append(out, pk.Name+":"+pk.Architecture+"="+pk.Version)
			}
		}
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), " ")
}

// statusDir is where the dpkg records go, the distroless convention that
// syft, trivy and grype read.
const statusDir = "var/lib/dpkg/status.d"

// debianLayer is what buildDebianLayer builds a layer of.
type debianLayer struct {
	debs            []string          // the .deb files
	symlinks, files map[string]string // source.debian.symlinks and files
	tempDir         string
	reloc           *relocation      // nil: every package at its own paths (a base layer)
	base            []debian.Package // what the layers below provide, checked against (if cached)
}

// pkgDeb is one .deb with its control data.
type pkgDeb struct {
	file string
	deb  *debian.Deb
}

func (pd pkgDeb) name() string { return pd.deb.Control.Get("Package") }

// buildDebianLayer writes the layer of the .deb files l.debs: their
// filesystem trees merged (maintainer scripts are never run), a dpkg status
// record per package in /var/lib/dpkg/status.d/<package> with its md5sums in
// <package>.md5sums, documentation dropped, the CA bundle built if the
// layer has CA certificates, and symlinks and files added. With l.reloc,
// the dependencies move into the layer's prefix and every dynamically
// linked ELF file gets a DT_RPATH pointing there (see relocation). The same
// .debs give the same layer, whatever their order.
func buildDebianLayer(ctx context.Context, l debianLayer, w io.Writer) (digest.Digest, error) {
	spool, err := os.MkdirTemp(l.tempDir, "envreg-deb-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(spool)
	pkgs, err := readDebs(ctx, l.debs)
	if err != nil {
		return "", err
	}
	t := newTree()
	for i, pd := range pkgs {
		if i > 0 && pd.name() == pkgs[i-1].name() {
			return "", fmt.Errorf("package %s given twice", pd.name())
		}
		if err := t.addDeb(ctx, pd, filepath.Join(spool, strconv.Itoa(i)), l.reloc); err != nil {
			return "", err
		}
	}
	if err := t.checkBase(ctx, l.base); err != nil {
		return "", err
	}
	if l.reloc != nil {
		if err := t.setRPaths(ctx, l.reloc, filepath.Join(spool, "elf")); err != nil {
			return "", err
		}
	}
	if err := t.addCABundle(); err != nil {
		return "", err
	}
	if err := t.addRecipeEntries(l.symlinks, l.files); err != nil {
		return "", err
	}
	return writeLayer(ctx, t.entries, w)
}

// readDebs reads the control data of debs, sorted by package name.
func readDebs(ctx context.Context, debs []string) ([]pkgDeb, error) {
	var pkgs []pkgDeb
	for _, f := range debs {
		d, err := debian.ReadDeb(ctx, f)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, pkgDeb{f, d})
	}
	slices.SortFunc(pkgs, func(a, b pkgDeb) int { return strings.Compare(a.name(), b.name()) })
	return pkgs, nil
}

// addDeb unpacks pd into dir and adds its files and dpkg records to t, in
// r's prefix when r relocates it.
func (t *tree) addDeb(ctx context.Context, pd pkgDeb, dir string, r *relocation) error {
	name := pd.name()
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	rd, err := debian.OpenData(ctx, pd.file)
	if err != nil {
		return err
	}
	entries, err := readTar(ctx, rd, dir)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", name, err)
	}
	entries = slices.DeleteFunc(entries, func(e entry) bool { return droppedDoc(e.name) })
	if r != nil {
		entries = usrMerge(entries)
	}
	record, recordName := debian.StatusRecord(pd.deb.Control), name
	if r.moves(pd.deb.Control) {
		t.asBuilt[name] = r.asBuilt(pd.deb.Control)
		entries = r.move(entries)
		record = append(record, debian.Field{Name: "X-Envreg-Prefix", Value: "/" + r.prefix})
		recordName = name + "_" + path.Base(r.prefix)
	}
	for _, e := range entries {
		if err := t.add(e, name); err != nil {
			return err
		}
	}
	if err := t.add(memEntry(path.Join(statusDir, recordName), record.Bytes()), name); err != nil {
		return err
	}
	if pd.deb.MD5Sums == nil {
		return nil
	}
	return t.add(memEntry(path.Join(statusDir, recordName+".md5sums"), pd.deb.MD5Sums), name)
}

// addRecipeEntries adds a recipe's symlinks and files.
func (t *tree) addRecipeEntries(symlinks, files map[string]string) error {
	for _, p := range slices.Sorted(maps.Keys(symlinks)) {
		e := entry{name: strings.TrimPrefix(p, "/"), typ: tar.TypeSymlink, linkname: symlinks[p], mode: symlinkMode}
		if err := t.add(e, "source.debian.symlinks"); err != nil {
			return err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := t.add(memEntry(strings.TrimPrefix(p, "/"), []byte(files[p])), "source.debian.files"); err != nil {
			return err
		}
	}
	return nil
}

// droppedDoc reports whether a package file is documentation that the layer
// leaves out: man and info pages, and /usr/share/doc except each package's
// directory (or symlink) and its copyright file, which license scanners
// read.
func droppedDoc(name string) bool {
	for _, dir := range []string{"usr/share/man", "usr/share/info"} {
		if name == dir || strings.HasPrefix(name, dir+"/") {
			return true
		}
	}
	rest, ok := strings.CutPrefix(name, "usr/share/doc/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return !(len(parts) == 1 || len(parts) == 2 && parts[1] == "copyright")
}

// memEntry is a regular file (0644) with the content b.
func memEntry(name string, b []byte) entry {
	return entry{
		name: name, typ: tar.TypeReg, mode: 0o644, size: int64(len(b)),
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
	}
}

// tree merges the files of several packages, remembering who added what.
type tree struct {
	entries []entry
	index   map[string]int
	owner   map[string]string
	asBuilt map[string]bool // packages whose ELF files are not patched (relocation.asBuilt)
}

func newTree() *tree {
	return &tree{index: map[string]int{}, owner: map[string]string{}, asBuilt: map[string]bool{}}
}

// add adds e on behalf of owner. A path that is already there is fine if
// both are directories or both are the same symlink or file; anything else
// is a conflict naming both owners.
func (t *tree) add(e entry, owner string) error {
	i, ok := t.index[e.name]
	if !ok {
		t.index[e.name] = len(t.entries)
		t.owner[e.name] = owner
		t.entries = append(t.entries, e)
		return nil
	}
	old := t.entries[i]
	same := old.typ == e.typ
	if same {
		switch e.typ {
		case tar.TypeSymlink:
			same = old.linkname == e.linkname
		case tar.TypeReg:
			var err error
			if same, err = sameContent(old, e); err != nil {
				return err
			}
		}
	}
	if !same {
		return fmt.Errorf("/%s is in both %s and %s, with different content", e.name, t.owner[e.name], owner)
	}
	return nil
}

func sameContent(a, b entry) (bool, error) {
	if a.size != b.size || a.mode != b.mode {
		return false, nil
	}
	ha, err := hashEntry(a)
	if err != nil {
		return false, err
	}
	hb, err := hashEntry(b)
	return ha == hb, err
}

func hashEntry(e entry) ([32]byte, error) {
	f, err := e.open()
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, fmt.Errorf("reading %s: %w", e.name, err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// caBundle is what update-ca-certificates (run by the ca-certificates
// maintainer scripts, which are not run here) writes: all certificates of
// /usr/share/ca-certificates, concatenated.
const caBundle = "etc/ssl/certs/ca-certificates.crt"

// addCABundle adds caBundle if the tree has certificates under
// /usr/share/ca-certificates and no bundle. Certificates are concatenated
// in path order, each ending in a newline.
func (t *tree) addCABundle() error {
	if _, ok := t.index[caBundle]; ok {
		return nil
	}
	var certs []entry
	for _, e := range t.entries {
		if e.typ == tar.TypeReg && strings.HasPrefix(e.name, "usr/share/ca-certificates/") && strings.HasSuffix(e.name, ".crt") {
			certs = append(certs, e)
		}
	}
	if len(certs) == 0 {
		return nil
	}
	slices.SortFunc(certs, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	for _, c := range certs {
		f, err := c.open()
		if err != nil {
			return err
		}
		_, err = b.ReadFrom(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.name, err)
		}
		if b.Len() > 0 && b.Bytes()[b.Len()-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return t.add(memEntry(caBundle, b.Bytes()), "the CA certificate bundle")
}
