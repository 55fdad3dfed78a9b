package packages

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// Seed publishes the recipes that snap does not have yet, for
// `envreg serve --seed`: a recipe whose name and version (semver
// precedence, so build metadata is ignored) are in snap with every platform
// it lists is skipped; one that is there with some platforms is published
// for the missing ones only. A second start with the same recipes therefore
// publishes nothing and does not touch the network.
//
// Recipes are published bases first (see DebianSource.Base), then in the
// order given; baseDir is as for PublishRecipe. Publisher.Progress, if
// set, gets a RecipeStarted event per recipe. Seed stops at the
// first failure and returns what it published until then along with the
// error; the failed recipe itself is not in the catalog.
func (p *Publisher) Seed(ctx context.Context, recipes []Recipe, baseDir string, snap *catalog.Snapshot) ([]catalog.Release, error) {
	var todo []Recipe
	for _, rc := range recipes {
		missing, err := missingPlatforms(rc, snap)
		if err != nil {
			return nil, err
		}
		if len(missing) == 0 {
			p.log().DebugContext(ctx, "already published", "name", rc.Name, "version", rc.effectiveVersion())
			continue
		}
		rc.Platforms = missing
		todo = append(todo, rc)
	}
	slices.SortStableFunc(todo, func(a, b Recipe) int { return cmp.Compare(baseDepth(a), baseDepth(b)) })
	var published []catalog.Release
	for i, rc := range todo {
		p.report(Event{Kind: RecipeStarted, Index: i + 1, Count: len(todo),
			Subject: fmt.Sprintf("%s %s for %s", rc.Name, rc.effectiveVersion(), platformList(rc.Platforms))})
		rels, err := p.PublishRecipe(ctx, rc, baseDir, false)
		if err != nil {
			return published, err
		}
		published = append(published, rels...)
	}
	if len(todo) > 0 {
		p.log().InfoContext(ctx, "seeded catalog", "published", len(todo), "skipped", len(recipes)-len(todo))
	}
	return published, nil
}

// missingPlatforms lists the platforms of rc that snap has no layer for
// under rc's name and version.
func missingPlatforms(rc Recipe, snap *catalog.Snapshot) ([]string, error) {
	v, err := semver.StrictNewVersion(rc.effectiveVersion())
	if err != nil {
		return nil, fmt.Errorf("seeding: recipe %s: version %q: %w", rc.where(), rc.effectiveVersion(), err)
	}
	var have []catalog.Platform
	if snap != nil {
		for _, r := range snap.Releases(rc.Name) {
			if r.Version.Equal(v) {
				have = r.Platforms()
			}
		}
	}
	var missing []string
	for _, s := range rc.Platforms {
		plat, err := catalog.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("seeding: recipe %s: %w", rc.where(), err)
		}
		if !slices.Contains(have, plat) {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// baseDepth is the length of rc's chain of Debian base recipes.
func baseDepth(rc Recipe) int {
	n := 0
	for d := rc.Source.Debian; d != nil && d.BaseRecipe != nil; d = d.BaseRecipe.Source.Debian {
		n++
	}
	if n == 0 && rc.Source.Debian != nil && strings.TrimSpace(rc.Source.Debian.Base) != "" {
		n = 1 // not loaded yet; PublishRecipe loads it
	}
	return n
}
