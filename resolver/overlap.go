package resolver

import (
	"maps"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// checkOverlap refuses a resolution in which two layers of one platform
// disagree about a path. They disagree when both write it with different
// content, and when one writes it as a file or symbolic link while the
// other writes entries beneath it, so needs it to be a directory: in the
// image the upper layer would hide the lower one's whole subtree
// (overlayfs shows an upper symbolic link in place of a lower directory),
// or an extractor would write the upper layer's files through the lower
// one's symbolic link. Base packages are layers like any other, so a
// package cannot replace /etc with a link either.
//
// Directories are not in the file lists (catalog.Layer.Files), but every
// listed path implies its parents, and those are what the second rule
// checks. An empty directory implies nothing and is not checked.
//
// The cost is O(files · depth) map operations per platform, paid once per
// composition (compositions are cached per catalog generation): each
// layer's paths are checked against what the layers below it write, then
// added. Only a layer that clashes is checked again in sorted order, so
// that the reported overlap is deterministic without sorting every list.
func checkOverlap(rels []catalog.Release, platforms []catalog.Platform) error {
	for _, p := range platforms {
		var below *tree
		for i, r := range rels {
			l, _ := r.Layer(p)
			if len(l.Files) == 0 {
				continue
			}
			if below == nil {
				below = newTree(len(l.Files))
			}
			if below.clashesWith(l.Files) {
				for _, path := range slices.Sorted(maps.Keys(l.Files)) {
					if c, ok := below.clash(path, l.Files[path]); ok {
						return &OverlapError{Path: c.path, Platform: p.String(),
							Packages: [2]string{rels[c.lower].ID(), r.ID()}, Entries: c.entries}
					}
				}
			}
			below.add(i, l.Files)
		}
	}
	return nil
}

// tree is what the layers checked so far write on one platform.
type tree struct {
	entries map[string]entryOwner     // path of a file or symbolic link → the lowest layer that writes it
	dirs    map[string]int            // parent directory of an entry → the lowest layer with an entry beneath it
	files   map[int]map[string]string // layer → its entries, to explain a clash
}

type entryOwner struct {
	layer       int
	fingerprint string
}

// clashInfo is one overlap: path, the index of the lower layer, and what
// the lower and the upper layer write there (path itself, or a path
// beneath it).
type clashInfo struct {
	path    string
	lower   int
	entries [2]string
}

func newTree(size int) *tree {
	return &tree{entries: make(map[string]entryOwner, size), dirs: make(map[string]int, size/4), files: map[int]map[string]string{}}
}

// clashesWith reports whether any entry of files clashes with t.
func (t *tree) clashesWith(files map[string]string) bool {
	for path, fp := range files {
		if _, ok := t.clash(path, fp); ok {
			return true
		}
	}
	return false
}

// clash reports how an upper layer that writes path with fingerprint fp
// disagrees with t: path written with other content, path a directory
// below, or a parent of path a file or symbolic link below.
func (t *tree) clash(path, fp string) (clashInfo, bool) {
	if o, ok := t.entries[path]; ok && o.fingerprint != fp {
		return clashInfo{path, o.layer, [2]string{path, path}}, true
	}
	if lower, ok := t.dirs[path]; ok {
		return clashInfo{path, lower, [2]string{t.firstBeneath(lower, path), path}}, true
	}
	for dir := parent(path); dir != ""; dir = parent(dir) {
		if o, ok := t.entries[dir]; ok {
			return clashInfo{dir, o.layer, [2]string{dir, path}}, true
		}
	}
	return clashInfo{}, false
}

// add records the entries of layer i and their parent directories, keeping
// the lowest layer for each. A directory already recorded has all its
// parents recorded, which keeps adding linear in the number of entries
// plus new directories.
func (t *tree) add(i int, files map[string]string) {
	t.files[i] = files
	for path, fp := range files {
		if _, ok := t.entries[path]; !ok {
			t.entries[path] = entryOwner{i, fp}
		}
		for dir := parent(path); dir != ""; dir = parent(dir) {
			if _, ok := t.dirs[dir]; ok {
				break
			}
			t.dirs[dir] = i
		}
	}
}

// firstBeneath returns the smallest path beneath dir in layer i. It sorts
// nothing and runs only to explain a clash.
func (t *tree) firstBeneath(i int, dir string) string {
	first, prefix := "", dir+"/"
	for path := range t.files[i] {
		if strings.HasPrefix(path, prefix) && (first == "" || path < first) {
			first = path
		}
	}
	return first
}

// parent returns the parent directory of a relative path ("usr/bin/php" →
// "usr/bin"), or "" for a top-level one.
func parent(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return ""
	}
	return path[:i]
}
