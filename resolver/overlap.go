package resolver

import (
	"maps"
	"slices"

	"github.com/envreg/envreg/catalog"
)

// checkOverlap refuses a resolution in which two layers of one platform
// write the same path with different content. The cost is linear in the
// number of recorded files of the selected layers, paid once per
// composition (compositions are cached per catalog generation). Paths are
// checked in sorted order so the reported overlap is deterministic.
func checkOverlap(rels []catalog.Release, platforms []catalog.Platform) error {
	type owner struct {
		rel         int
		fingerprint string
	}
	for _, p := range platforms {
		var seen map[string]owner
		for i, r := range rels {
			l, _ := r.Layer(p)
			if len(l.Files) == 0 {
				continue
			}
			if seen == nil {
				seen = make(map[string]owner, len(l.Files))
			}
			for _, path := range slices.Sorted(maps.Keys(l.Files)) {
				fp := l.Files[path]
				prev, ok := seen[path]
				if !ok {
					seen[path] = owner{i, fp}
					continue
				}
				if prev.fingerprint != fp {
					return &OverlapError{Path: path, Platform: p.String(), Packages: [2]string{rels[prev.rel].ID(), r.ID()}}
				}
			}
		}
	}
	return nil
}
