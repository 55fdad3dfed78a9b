package packages

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/internal/debian"
)

// RangeError reports a ranged recipe (source.debian.versions) for which
// the sources offer no version in the range on every platform.
type RangeError struct {
	Recipe, Package, Range string
	// Available are the versions of Package each platform's sources
	// offer, newest first.
	Available map[string][]string
}

func (e *RangeError) Error() string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(e.Available)) {
		parts = append(parts, p+": "+cmp.Or(strings.Join(e.Available[p], ", "), "none"))
	}
	return fmt.Sprintf("recipe %s: no version of %s in %q is in the archive for every platform (available: %s)",
		e.Recipe, e.Package, e.Range, strings.Join(parts, "; "))
}

// expansion is what ExpandRecipe found for a ranged recipe.
type expansion struct {
	recipes []Recipe
	// upstream are the Debian versions of the main package that the
	// sources offer on some platform of the recipe (in range or not).
	upstream map[string]bool
	// waiting are versions in the range, newer than the newest chosen,
	// that some platform lacks yet: "8.2.37-1~deb12u1 (not yet for linux/arm/v7)".
	waiting []string
}

// ExpandRecipe returns the recipes rc stands for: rc itself, or, for a
// ranged recipe (source.debian.versions), one recipe per version it
// selects, newest first, each with the main package pinned to its Debian
// version and the semantic version derived from it. The selection:
//
//   - the Debian versions of the main package that the sources offer for
//     every platform of the recipe (a version one architecture lacks yet,
//     as when a security update is built for amd64 first, waits until all
//     have it: a release is published with all its platforms);
//   - whose derived semantic version satisfies the range;
//   - one per semantic version (derived versions that differ only in build
//     metadata, 8.2.36-1~deb12u1 and 8.2.36-1~deb12u2, are one catalog
//     release): the newest Debian version of it;
//   - the Keep newest of those (default 1; fewer when there are fewer).
//
// It refreshes the sources' indexes once per Publisher. No version in
// the range is a *RangeError.
func (p *Publisher) ExpandRecipe(ctx context.Context, rc Recipe) ([]Recipe, error) {
	x, err := p.expandRange(ctx, rc)
	return x.recipes, err
}

func (p *Publisher) expandRange(ctx context.Context, rc Recipe) (expansion, error) {
	if !rc.Ranged() {
		return expansion{recipes: []Recipe{rc}}, nil
	}
	if err := rc.Validate(); err != nil {
		return expansion{}, err
	}
	d := rc.Source.Debian
	cons, _ := semver.NewConstraint(d.Versions) // Validate parsed it
	reqs, _ := d.requests()
	main := reqs[0].Name
	available := map[string][]string{}
	count := map[string]int{}
	for _, s := range rc.Platforms {
		plat, _ := catalog.ParsePlatform(s)
		arch, err := debianArch(plat)
		if err != nil {
			return expansion{}, fmt.Errorf("recipe %s: %w", rc.where(), err)
		}
		a, err := p.apt(arch, d)
		if err != nil {
			return expansion{}, err
		}
		vs, err := a.Versions(ctx, main)
		if err != nil {
			return expansion{}, fmt.Errorf("recipe %s: %s: %w", rc.where(), plat, err)
		}
		available[s] = vs
		for _, v := range vs {
			count[v]++
		}
	}
	x := expansion{upstream: map[string]bool{}}
	for v := range count {
		x.upstream[v] = true
	}
	seen := map[string]bool{} // semver cores chosen
	keep := max(d.Keep, 1)
	for _, v := range available[rc.Platforms[0]] { // newest first
		sv, ok := derive(v)
		if !ok || !cons.Check(sv) || seen[core(sv)] || len(seen) == keep {
			continue
		}
		if count[v] < len(rc.Platforms) {
			if len(seen) == 0 {
				x.waiting = append(x.waiting, fmt.Sprintf("%s (not yet for %s)", v, lacking(available, v)))
			}
			continue
		}
		seen[core(sv)] = true
		x.recipes = append(x.recipes, pinned(rc, main, v, sv))
	}
	if len(x.recipes) == 0 {
		return x, &RangeError{Recipe: rc.where(), Package: main, Range: d.Versions, Available: available}
	}
	return x, nil
}

// derive is the semantic version of a Debian version string.
func derive(s string) (*semver.Version, bool) {
	v, err := debian.ParseVersion(s)
	if err != nil {
		return nil, false
	}
	sv, err := v.Semver()
	return sv, err == nil
}

// core is v without build metadata: what semver precedence compares.
func core(v *semver.Version) string {
	c, _ := v.SetMetadata("")
	return c.String()
}

// lacking lists the platforms whose sources lack version v.
func lacking(available map[string][]string, v string) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(available)) {
		if !slices.Contains(available[p], v) {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

// pinned is rc with the main package pinned to the Debian version v,
// whose semantic version is sv.
func pinned(rc Recipe, main, v string, sv *semver.Version) Recipe {
	d := *rc.Source.Debian
	d.Packages = slices.Clone(d.Packages)
	d.Packages[0] = main + "=" + v
	d.Versions, d.Keep = "", 0
	out := rc
	out.Source.Debian = &d
	out.Version = sv.String()
	out.fromRange = rc.Source.Debian.Versions
	return out
}
