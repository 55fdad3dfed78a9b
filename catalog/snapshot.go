package catalog

import (
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Snapshot is an immutable view of the catalog at one generation. Resolution
// runs on a snapshot, so it needs no I/O and a publish in the middle of a
// request cannot mix two generations. Do not modify what it returns.
type Snapshot struct {
	// Generation increases with every change to the catalog.
	Generation uint64

	releases map[string][]Release // newest first
	names    []string             // sorted
	stacks   map[string]Stack
	aliases  map[string]string // package-declared aliases (PackageAliases)
	layers   map[digest.Digest]bool
}

// NewSnapshot indexes releases and stacks. The default stack "env" is added
// when stacks does not define it. Releases are sorted newest first; the
// caller must not modify them afterwards.
func NewSnapshot(generation uint64, releases []Release, stacks []Stack) *Snapshot {
	s := &Snapshot{
		Generation: generation,
		releases:   map[string][]Release{},
		stacks:     map[string]Stack{},
	}
	for _, r := range releases {
		s.releases[r.Name] = append(s.releases[r.Name], r)
	}
	s.layers = map[digest.Digest]bool{}
	for _, r := range releases {
		for _, l := range r.AllLayers() {
			for _, b := range l.Blobs() {
				s.layers[b.Digest] = true
			}
		}
	}
	for name, rs := range s.releases {
		slices.SortStableFunc(rs, func(a, b Release) int { return b.Version.Compare(a.Version) })
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	for _, st := range stacks {
		s.stacks[st.Name] = st
	}
	s.aliases = packageAliases(s.releases)
	if _, ok := s.stacks[DefaultStackName]; !ok {
		s.stacks[DefaultStackName] = DefaultStack()
	}
	return s
}

// packageAliases maps each alias that releases declare to its package. An
// alias that two packages declare, or that is a package name itself, is
// ambiguous and left out.
func packageAliases(releases map[string][]Release) map[string]string {
	var out map[string]string
	ambiguous := map[string]bool{}
	for name, rs := range releases {
		for _, r := range rs {
			for _, a := range r.Aliases {
				if out == nil {
					out = map[string]string{}
				}
				if cur, ok := out[a]; ok && cur != name {
					ambiguous[a] = true
				}
				out[a] = name
			}
		}
	}
	for a := range out {
		if _, isName := releases[a]; isName || ambiguous[a] {
			delete(out, a)
		}
	}
	return out
}

// PackageAliases returns the aliases packages declare (Release.Aliases),
// alias to package name; nil when there are none. A stack's own aliases
// take precedence over them (resolver.StackNames).
func (s *Snapshot) PackageAliases() map[string]string { return s.aliases }

// Releases returns the releases of one package, newest first.
func (s *Snapshot) Releases(name string) []Release { return s.releases[name] }

// Names returns the published package names, sorted.
func (s *Snapshot) Names() []string { return s.names }

// HasLayer reports whether d is a layer blob of some release, yanked ones
// and superseded builds included (environments pinned before the yank or
// the rebuild still pull it), in any form the catalog stores it in.
func (s *Snapshot) HasLayer(d digest.Digest) bool { return s.layers[d] }

// Stack returns the named stack.
func (s *Snapshot) Stack(name string) (Stack, bool) {
	st, ok := s.stacks[name]
	return st, ok
}

// Stacks returns all stacks sorted by name.
func (s *Snapshot) Stacks() []Stack {
	out := make([]Stack, 0, len(s.stacks))
	for _, st := range s.stacks {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Stack) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AllReleases returns every release, by name then newest first.
func (s *Snapshot) AllReleases() []Release {
	var out []Release
	for _, n := range s.names {
		out = append(out, s.releases[n]...)
	}
	return out
}
