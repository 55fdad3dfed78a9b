package resolver

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// Source gives the releases of one package, newest first.
// *catalog.Snapshot satisfies it.
type Source interface {
	Releases(name string) []catalog.Release
}

// Resolve chooses one release per package for req on stack st: the stack's
// published base packages, the requested packages and everything they
// require, each at the newest version that satisfies every requirement on
// it. It is pure and deterministic: the same inputs give the same
// Resolution or the same error.
//
// Errors: *UnsatisfiableError, *ConflictError, *NoPlatformError,
// *EnvConflictError, and errors wrapping ErrEmpty, ErrTooComplex or
// ErrTooManyLayers. See the package documentation for the algorithm.
func Resolve(src Source, st catalog.Stack, req Request) (*Resolution, error) {
	if req.Stack != "" && req.Stack != st.Name {
		return nil, fmt.Errorf("resolving a request for stack %s against stack %s", req.Stack, st.Name)
	}
	s := newSolver(src)

	var base []string
	for _, c := range st.Base {
		p := s.pkg(c.Name)
		if len(p.releases) == 0 {
			continue // not published (yet): skipped
		}
		rng, err := s.parse(c.Range)
		if err != nil {
			return nil, fmt.Errorf("stack %s: base package %s: %w", st.Name, c.Name, err)
		}
		s.addRoot(p, rng, c.Range, "stack "+st.Name+" includes")
		if !slices.Contains(base, c.Name) {
			base = append(base, c.Name)
		}
	}
	for _, r := range req.Requirements {
		rng := r.Range
		if rng == nil {
			rng = anyVersion(r.Name).Range
		}
		s.addRoot(s.pkg(r.Name), rng, r.spelling(), "requested")
	}
	if len(s.agenda) == 0 {
		return nil, fmt.Errorf("%w: the request names no package and stack %s has no published base package", ErrEmpty, st.Name)
	}
	if s.failure != nil { // a requested package has no matching version at all
		return nil, s.failure
	}

	if ok, _ := s.solve(0); !ok {
		switch {
		case s.err != nil:
			return nil, s.err
		case s.steps > MaxSteps:
			return nil, fmt.Errorf("%w: gave up after trying %d candidate versions; pin versions in the request to narrow the search", ErrTooComplex, MaxSteps)
		case s.failure != nil:
			return nil, s.failure
		}
		return nil, fmt.Errorf("resolving %s: no solution", req.Key()) // unreachable: every failure is explained
	}

	res := &Resolution{Stack: st, Request: req, Releases: s.layerOrder(base)}
	if err := checkEnv(res.Releases); err != nil {
		return nil, err
	}
	var err error
	if res.Platforms, err = commonPlatforms(res.Releases); err != nil {
		return nil, err
	}
	if n := len(res.Releases); n > st.Limit() {
		return nil, fmt.Errorf("%w: %d packages selected, stack %s allows %d layers", ErrTooManyLayers, n, st.Name, st.Limit())
	}
	if !st.AllowOverlap {
		if err := checkOverlap(res.Releases, res.Platforms); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// layerOrder returns the selected releases: base packages first in stack
// order, then the rest so that each comes after the packages it requires,
// the smallest name first among those that are ready. The packages of a
// requires-cycle (a strongly connected component) are layered together,
// by name, once everything the cycle requires is placed.
func (s *solver) layerOrder(base []string) []catalog.Release {
	out := make([]catalog.Release, 0, len(s.agenda))
	isBase := make(map[string]bool, len(base))
	for _, b := range base {
		isBase[b] = true
		out = append(out, *s.pkgs[b].selected())
	}
	var rest []*pkgState
	for _, p := range s.agenda {
		if !isBase[p.name] {
			rest = append(rest, p)
		}
	}
	slices.SortFunc(rest, func(a, b *pkgState) int { return strings.Compare(a.name, b.name) })
	index := make(map[string]int, len(rest))
	for i, p := range rest {
		index[p.name] = i
	}
	deps := make([][]int, len(rest)) // indexes of what rest[i] requires
	for i, p := range rest {
		for _, c := range p.selected().Requires {
			if j, ok := index[c.Name]; ok && j != i && !slices.Contains(deps[i], j) {
				deps[i] = append(deps[i], j)
			}
		}
	}
	comp, members := components(deps)

	// Kahn's algorithm on the components, smallest first name first.
	waiting := make([]int, len(members))      // unplaced components comp c requires
	dependents := make([][]int, len(members)) // components that require comp c
	for i, ds := range deps {
		for _, j := range ds {
			if ci, cj := comp[i], comp[j]; ci != cj && !slices.Contains(dependents[cj], ci) {
				dependents[cj] = append(dependents[cj], ci)
				waiting[ci]++
			}
		}
	}
	ready := &intHeap{} // smallest member index of each ready component
	for c, ms := range members {
		if waiting[c] == 0 {
			heap.Push(ready, ms[0])
		}
	}
	for ready.Len() > 0 {
		c := comp[heap.Pop(ready).(int)]
		for _, i := range members[c] {
			out = append(out, *rest[i].selected())
		}
		for _, d := range dependents[c] {
			if waiting[d]--; waiting[d] == 0 {
				heap.Push(ready, members[d][0])
			}
		}
	}
	return out
}

// components finds the strongly connected components of the graph
// i -> deps[i] (Tarjan). comp[i] is i's component; members[c] lists a
// component's nodes in ascending order.
func components(deps [][]int) (comp []int, members [][]int) {
	n := len(deps)
	comp = make([]int, n)
	order := make([]int, n) // discovery order + 1; 0 = unvisited
	low := make([]int, n)
	onStack := make([]bool, n)
	var stack []int
	counter := 0
	var visit func(v int)
	visit = func(v int) {
		counter++
		order[v], low[v] = counter, counter
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps[v] {
			if order[w] == 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], order[w])
			}
		}
		if low[v] == order[v] {
			var ms []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = len(members)
				ms = append(ms, w)
				if w == v {
					break
				}
			}
			slices.Sort(ms)
			members = append(members, ms)
		}
	}
	for v := range n {
		if order[v] == 0 {
			visit(v)
		}
	}
	return comp, members
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// commonPlatforms intersects the platforms of rels.
func commonPlatforms(rels []catalog.Release) ([]catalog.Platform, error) {
	count := map[catalog.Platform]int{}
	for _, r := range rels {
		for i, l := range r.Layers {
			if i == 0 || l.Platform != r.Layers[i-1].Platform { // Layers are sorted; count each platform once
				count[l.Platform]++
			}
		}
	}
	var out []catalog.Platform
	for p, n := range count {
		if n == len(rels) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		e := &NoPlatformError{}
		for _, r := range rels {
			rp := ReleasePlatforms{Release: r.ID()}
			for _, p := range r.Platforms() {
				rp.Platforms = append(rp.Platforms, p.String())
			}
			e.Releases = append(e.Releases, rp)
		}
		return nil, e
	}
	slices.SortFunc(out, func(a, b catalog.Platform) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// checkEnv reports the first variable (in layer order, then by name) that
// two releases set to different values.
func checkEnv(rels []catalog.Release) error {
	type setter struct {
		id, value string
	}
	set := map[string]setter{}
	for _, r := range rels {
		if len(r.Env.Vars) == 0 {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(r.Env.Vars)) {
			v := r.Env.Vars[k]
			if prev, ok := set[k]; ok && prev.value != v {
				return &EnvConflictError{Variable: k, Packages: [2]string{prev.id, r.ID()}, Values: [2]string{prev.value, v}}
			} else if !ok {
				set[k] = setter{r.ID(), v}
			}
		}
	}
	return nil
}
