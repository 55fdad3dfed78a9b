package resolver

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// MaxSteps bounds the search: Resolve gives up with an error wrapping
// ErrTooComplex after examining this many candidate releases.
const MaxSteps = 100_000

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
	s := &solver{src: src, pkgs: map[string]*pkgState{}, ranges: map[string]*semver.Constraints{}}

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
			return nil, fmt.Errorf("%w: gave up after examining %d candidate versions; pin versions in the request to narrow the search", ErrTooComplex, MaxSteps)
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
	return res, nil
}

// pkgState is the search state of one package.
type pkgState struct {
	name     string
	releases []catalog.Release // newest first, from Source
	reqs     []*edge           // active requirements; reqs[0] put the package on the agenda
	forbids  []*edge           // active conflicts of selected releases that name this package
	sel      int               // index of the selected release; -1 while undecided
	level    int               // decision level of the selection
	onAgenda bool
	// dead marks releases that are in no solution, whatever else is
	// chosen: their failure did not depend on any other decision. Only
	// grows during a call. Allocated on the first death.
	dead []bool
}

func (p *pkgState) selected() *catalog.Release { return &p.releases[p.sel] }

func (p *pkgState) isDead(i int) bool { return p.dead != nil && p.dead[i] }

func (p *pkgState) kill(i int) {
	if p.dead == nil {
		p.dead = make([]bool, len(p.releases))
	}
	p.dead[i] = true
}

// edge is one requirement (or, with conflict set, one conflict) on pkg,
// either from the request or stack (from == nil) or from a selected release.
type edge struct {
	pkg      string
	rng      *semver.Constraints
	spelling string
	level    int              // decision level that added it; -1 for roots
	from     *catalog.Release // the release that declares it; nil for roots
	why      *edge            // the edge that brought from's package in
	root     string           // for roots: "requested", "stack env includes"
	conflict bool
}

// admits reports whether release r is allowed by e.
func (e *edge) admits(r *catalog.Release) bool { return e.rng.Check(r.Version) != e.conflict }

// solver holds one Resolve call's state. Nothing in it outlives the call.
type solver struct {
	src     Source
	pkgs    map[string]*pkgState
	ranges  map[string]*semver.Constraints // parsed catalog ranges
	ids     map[*semver.Constraints]int    // small numbers for domain keys
	sat     map[satKey]witness             // newest live release satisfying one edge
	domains map[string]*domain             // newest live release allowed by a set of edges
	agenda  []*pkgState                    // packages in decision order; level i decides agenda[i]
	trail   []trailEntry                   // edge pushes, undone in reverse
	steps   int

	failure error // the explanation kept for when the search fails
	rank    int   // 2: a requirement nothing satisfies; 1: a conflict
	err     error // a malformed catalog range: stops the search
}

type satKey struct {
	pkg string
	rng *semver.Constraints
}

// witness caches the answer to "which is the newest live release that
// satisfies this edge": index, or -1 with published telling whether a
// release (since found dead) satisfied it.
type witness struct {
	index     int
	published bool
}

// domain caches the answer to "which is the newest live release that
// every requirement on a package allows, and no conflict forbids", keyed
// by the package and the identities of those ranges. Deaths only remove
// candidates, so a cached index stays a lower bound and a cached "none"
// stays true. core lists positions (in reqs then forbids) of edges that
// exclude every live release on their own: the explanation of "none".
type domain struct {
	index int
	core  []int
}

type trailEntry struct {
	p      *pkgState
	forbid bool
}

func (s *solver) pkg(name string) *pkgState {
	p, ok := s.pkgs[name]
	if !ok {
		p = &pkgState{name: name, releases: s.src.Releases(name), sel: -1}
		s.pkgs[name] = p
	}
	return p
}

func (s *solver) parse(rng string) (*semver.Constraints, error) {
	if c, ok := s.ranges[rng]; ok {
		return c, nil
	}
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return nil, fmt.Errorf("invalid version range %q: %w", rng, err)
	}
	s.ranges[rng] = c
	return c, nil
}

func (s *solver) addRoot(p *pkgState, rng *semver.Constraints, spelling, root string) {
	e := &edge{pkg: p.name, rng: rng, spelling: spelling, level: -1, root: root}
	if !s.satisfiable(p, e).published {
		s.unsatisfiable(p, e)
	}
	p.reqs = append(p.reqs, e)
	if !p.onAgenda {
		p.onAgenda = true
		s.agenda = append(s.agenda, p)
	}
}

// satisfiable finds the newest live release of p that satisfies e on its
// own. It scans newest first, stops at the first match, and is cached per
// call (a cached index is re-checked only if that release has died since).
func (s *solver) satisfiable(p *pkgState, e *edge) witness {
	k := satKey{p.name, e.rng}
	w, hit := s.sat[k]
	if hit && (w.index < 0 || !p.isDead(w.index)) {
		return w
	}
	from := 0
	if hit {
		from = w.index + 1
	}
	w = witness{index: -1, published: hit}
	for i := from; i < len(p.releases); i++ {
		if e.rng.Check(p.releases[i].Version) {
			w.published = true
			if !p.isDead(i) {
				w.index = i
				break
			}
		}
	}
	if s.sat == nil {
		s.sat = map[satKey]witness{}
	}
	s.sat[k] = w
	return w
}

// allowed reports whether every requirement and conflict on p allows r.
func allowed(p *pkgState, r *catalog.Release) bool {
	for _, e := range p.reqs {
		if !e.admits(r) {
			return false
		}
	}
	for _, e := range p.forbids {
		if !e.admits(r) {
			return false
		}
	}
	return true
}

// candidates returns the index of the newest live release of p that all
// requirements and conflicts on p allow, or -1 and the edges that already
// exclude everything. The common case, the newest release, costs no
// allocation; anything else is cached by domain.
func (s *solver) candidates(p *pkgState) (int, []*edge) {
	first := 0
	for first < len(p.releases) && p.isDead(first) {
		first++
	}
	if first < len(p.releases) && allowed(p, &p.releases[first]) {
		return first, nil
	}
	edges := slices.Concat(p.reqs, p.forbids)
	key := s.domainKey(p, edges)
	d, hit := s.domains[key]
	if !hit {
		d = &domain{index: -1}
		if s.domains == nil {
			s.domains = map[string]*domain{}
		}
		s.domains[key] = d
	}
	if d.index >= 0 || !hit {
		from := max(d.index, first)
		d.index = -1
		for i := from; i < len(p.releases); i++ {
			if !p.isDead(i) && allowed(p, &p.releases[i]) {
				d.index = i
				return i, nil
			}
		}
		d.core = s.core(p, edges)
	}
	core := make([]*edge, len(d.core))
	for i, j := range d.core {
		core[i] = edges[j]
	}
	return -1, core
}

// core shrinks edges, deepest first, to a subset that still excludes every
// live release of p: the decisions behind it explain the failure.
func (s *solver) core(p *pkgState, edges []*edge) []int {
	keep := make([]bool, len(edges))
	for i := range keep {
		keep[i] = true
	}
	excludesAll := func() bool {
		for i := range p.releases {
			if p.isDead(i) {
				continue
			}
			ok := true
			for j, e := range edges {
				if keep[j] && !e.admits(&p.releases[i]) {
					ok = false
					break
				}
			}
			if ok {
				return false
			}
		}
		return true
	}
	for j := len(edges) - 1; j >= 0; j-- {
		keep[j] = false
		if !excludesAll() {
			keep[j] = true
		}
	}
	var out []int
	for j, k := range keep {
		if k {
			out = append(out, j)
		}
	}
	return out
}

// domainKey identifies p and the ranges of edges (requirements, then
// conflicts); equal keys allow the same releases.
func (s *solver) domainKey(p *pkgState, edges []*edge) string {
	if s.ids == nil {
		s.ids = map[*semver.Constraints]int{}
	}
	b := append(make([]byte, 0, len(p.name)+1+4*len(edges)), p.name...)
	for _, e := range edges {
		id, ok := s.ids[e.rng]
		if !ok {
			id = len(s.ids)
			s.ids[e.rng] = id
		}
		if e.conflict {
			b = append(b, '!')
		} else {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(id), 36)
	}
	return string(b)
}

// solve decides agenda[i:] by depth-first search, newest version first.
// On failure it returns the conflict set: the decision levels (< i) whose
// choices caused the failure. A caller whose level is not in the set
// returns at once (conflict-directed backjumping): trying its other
// versions cannot help. A release whose failure involved no other
// decision is dead for the rest of the call.
func (s *solver) solve(i int) (bool, levelSet) {
	if i == len(s.agenda) {
		return true, nil
	}
	p := s.agenda[i]
	var cs levelSet
	cs.add(p.reqs[0].level) // p is only needed because of its first requirement
	start, core := s.candidates(p)
	if start < 0 {
		for _, e := range core {
			cs.add(e.level)
		}
		if s.failure == nil {
			s.explain(p)
		}
		return false, cs
	}
	for idx := start; idx < len(p.releases); idx++ {
		if p.isDead(idx) {
			continue
		}
		if s.steps++; s.steps > MaxSteps {
			return false, nil
		}
		if lvl, ok := s.admit(p, idx); !ok {
			if s.err != nil {
				return false, nil
			}
			if lvl < 0 {
				p.kill(idx)
			}
			cs.add(lvl)
			continue
		}
		cp := s.checkpoint()
		if lvl, ok := s.choose(p, idx, i); !ok {
			s.undo(cp, p)
			if s.err != nil {
				return false, nil
			}
			if lvl < 0 {
				p.kill(idx)
			}
			cs.add(lvl)
			continue
		}
		ok, sub := s.solve(i + 1)
		if ok {
			return true, nil
		}
		s.undo(cp, p)
		if s.err != nil || s.steps > MaxSteps {
			return false, nil
		}
		if !sub.has(i) {
			return false, sub // backjump over level i
		}
		sub.remove(i)
		if sub.empty() {
			p.kill(idx)
		}
		cs.union(sub)
	}
	if s.failure == nil {
		s.explain(p)
	}
	return false, cs
}

// admit checks release idx of p against the requirements on p, the
// conflicts of selected releases, and its own conflicts with selected
// packages. On rejection it returns the decision level responsible (-1
// for none).
func (s *solver) admit(p *pkgState, idx int) (int, bool) {
	r := &p.releases[idx]
	for _, e := range p.reqs {
		if !e.admits(r) {
			return e.level, false
		}
	}
	for _, f := range p.forbids {
		if !f.admits(r) {
			return f.level, false
		}
	}
	for _, c := range r.Conflicts {
		q, ok := s.pkgs[c.Name]
		if !ok || q == p || q.sel < 0 {
			continue
		}
		rng, err := s.parse(c.Range)
		if err != nil {
			s.err = fmt.Errorf("release %s: conflict %s: %w", r.ID(), c.Name, err)
			return -1, false
		}
		if rng.Check(q.selected().Version) {
			return q.level, false
		}
	}
	return -1, true
}

// choose selects release idx of p at decision level lvl and adds its
// requirements and conflicts to the packages they name. It fails (with
// the responsible level) when a requirement contradicts an already
// selected release or no release satisfies it at all.
func (s *solver) choose(p *pkgState, idx, lvl int) (int, bool) {
	p.sel, p.level = idx, lvl
	r := &p.releases[idx]
	for _, c := range r.Requires {
		rng, err := s.parse(c.Range)
		if err != nil {
			s.err = fmt.Errorf("release %s: requirement %s: %w", r.ID(), c.Name, err)
			return -1, false
		}
		q := s.pkg(c.Name)
		e := &edge{pkg: c.Name, rng: rng, spelling: c.Range, level: lvl, from: r, why: p.reqs[0]}
		if q.sel >= 0 {
			if !rng.Check(q.selected().Version) {
				if q == p {
					return -1, false // requires another version of itself
				}
				return q.level, false
			}
		} else if w := s.satisfiable(q, e); w.index < 0 {
			if !w.published {
				s.unsatisfiable(q, e)
			} // else: what satisfies it is dead, and its failure was recorded.
			return -1, false
		}
		q.reqs = append(q.reqs, e)
		s.trail = append(s.trail, trailEntry{p: q})
		if !q.onAgenda {
			q.onAgenda = true
			s.agenda = append(s.agenda, q)
		}
	}
	for _, c := range r.Conflicts {
		q := s.pkg(c.Name)
		if q == p || len(q.releases) == 0 {
			continue // a self-conflict means nothing; an unpublished package cannot be selected
		}
		rng, err := s.parse(c.Range)
		if err != nil {
			s.err = fmt.Errorf("release %s: conflict %s: %w", r.ID(), c.Name, err)
			return -1, false
		}
		q.forbids = append(q.forbids, &edge{pkg: c.Name, rng: rng, spelling: c.Range, level: lvl, from: r, why: p.reqs[0], conflict: true})
		s.trail = append(s.trail, trailEntry{p: q, forbid: true})
	}
	return -1, true
}

type checkpoint struct{ trail, agenda int }

func (s *solver) checkpoint() checkpoint { return checkpoint{len(s.trail), len(s.agenda)} }

// undo reverts p's selection and everything choose did since m.
func (s *solver) undo(m checkpoint, p *pkgState) {
	for i := len(s.trail) - 1; i >= m.trail; i-- {
		t := s.trail[i]
		if t.forbid {
			t.p.forbids = t.p.forbids[:len(t.p.forbids)-1]
		} else {
			t.p.reqs = t.p.reqs[:len(t.p.reqs)-1]
		}
	}
	s.trail = s.trail[:m.trail]
	for _, q := range s.agenda[m.agenda:] {
		q.onAgenda = false
	}
	s.agenda = s.agenda[:m.agenda]
	p.sel = -1
}

// layerOrder returns the selected releases: base packages first in stack
// order, then the rest so that each comes after the packages it requires,
// the smallest name first among those that are ready. A requires-cycle is
// broken by taking the smallest remaining name.
func (s *solver) layerOrder(base []string) []catalog.Release {
	out := make([]catalog.Release, 0, len(s.agenda))
	isBase := map[string]bool{}
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
	waiting := make([]int, len(rest))      // unplaced requirements of rest[i]
	dependents := make([][]int, len(rest)) // who requires rest[i]
	for i, p := range rest {
		seen := map[int]bool{}
		for _, c := range p.selected().Requires {
			j, ok := index[c.Name]
			if !ok || j == i || seen[j] {
				continue
			}
			seen[j] = true
			waiting[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	ready := &intHeap{}
	for i := range rest {
		if waiting[i] == 0 {
			heap.Push(ready, i)
		}
	}
	placed := make([]bool, len(rest))
	next := 0 // smallest index that may be unplaced, for breaking cycles
	for n := 0; n < len(rest); n++ {
		var i int
		if ready.Len() > 0 {
			i = heap.Pop(ready).(int)
		} else { // a cycle: take the smallest unplaced name
			for placed[next] {
				next++
			}
			i = next
		}
		placed[i] = true
		out = append(out, *rest[i].selected())
		for _, d := range dependents[i] {
			if waiting[d]--; waiting[d] == 0 && !placed[d] {
				heap.Push(ready, d)
			}
		}
	}
	return out
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
		for _, p := range slices.Compact(r.Platforms()) {
			count[p]++
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

// levelSet is a set of decision levels (a bitset).
type levelSet []uint64

func (l *levelSet) add(lvl int) {
	if lvl < 0 {
		return
	}
	for len(*l) <= lvl/64 {
		*l = append(*l, 0)
	}
	(*l)[lvl/64] |= 1 << (lvl % 64)
}

func (l levelSet) has(lvl int) bool {
	return lvl >= 0 && lvl/64 < len(l) && l[lvl/64]&(1<<(lvl%64)) != 0
}

func (l levelSet) empty() bool { return !slices.ContainsFunc(l, func(w uint64) bool { return w != 0 }) }

func (l levelSet) remove(lvl int) {
	if l.has(lvl) {
		l[lvl/64] &^= 1 << (lvl % 64)
	}
}

func (l *levelSet) union(o levelSet) {
	for len(*l) < len(o) {
		*l = append(*l, 0)
	}
	for i, w := range o {
		(*l)[i] |= w
	}
}
