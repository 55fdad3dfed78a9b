package packages

import (
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// missingPlatforms lists the platforms of rc that snap has no layer for
// under rc's name and version.
func missingPlatforms(rc Recipe, snap *catalog.Snapshot) ([]string, error) {
	v, err := semver.StrictNewVersion(rc.effectiveVersion())
	if err != nil {
		return nil, fmt.Errorf("recipe %s: version %q: %w", rc.where(), rc.effectiveVersion(), err)
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
			return nil, fmt.Errorf("recipe %s: %w", rc.where(), err)
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
