package resolver

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// MaxSteps bounds the search: Resolve gives up with an error wrapping
// ErrTooComplex after this many tentative selections (candidate releases
// that every requirement on their package allows).
const MaxSteps = 100_000

// pkgState is the search state of one package.
type pkgState struct {
	name     string
	releases []catalog.Release // newest first, from Source, without yanked ones
	yanked   []string          // versions of yanked releases, ascending (for errors)
	reqs     []*edge           // active requirements; reqs[0] put the package on the agenda
	forbids  []*edge           // active conflicts of selected releases that name this package
	sel      int               // index of the selected release; -1 while undecided
	level    int               // decision level of the selection
	onAgenda bool
	// dead marks releases that are in no solution whatever else is chosen:
	// their failure involved no other decision. It only grows during a
	// call. Allocated on the first death.
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

// firstLive returns the index of p's newest release that is not dead.
func (p *pkgState) firstLive() int {
	i := 0
	for i < len(p.releases) && p.isDead(i) {
		i++
	}
	return i
}

// edge is one requirement on pkg (or, with conflict set, one conflict:
// pkg must not be in the range), from the request or stack (from == nil)
// or from a selected release.
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

// admits reports whether e allows release r.
func (e *edge) admits(r *catalog.Release) bool { return e.rng.Check(r.Version) != e.conflict }

// excluder returns the first requirement or conflict on p that excludes r.
func excluder(p *pkgState, r *catalog.Release) *edge {
	for _, e := range p.reqs {
		if !e.admits(r) {
			return e
		}
	}
	for _, e := range p.forbids {
		if !e.admits(r) {
			return e
		}
	}
	return nil
}

// solver holds one Resolve call's state. Nothing in it outlives the call.
type solver struct {
	src     Source
	pkgs    map[string]*pkgState
	ranges  map[string]*semver.Constraints // parsed catalog ranges
	ids     map[*semver.Constraints]int    // small numbers for domain keys
	masks   map[satKey][]bool              // which releases of a package a range matches
	sat     map[satKey]witness             // newest live release satisfying one edge
	domains map[string]*domain             // the releases a set of edges allows
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

// witness answers "which is the newest live release that satisfies this
// edge": its index, or -1, with published telling whether any release
// satisfies it at all (dead or not).
type witness struct {
	index     int
	published bool
}

// domain is the set of releases of one package that a set of edges
// allows, keyed by the package and the identities of the edges' ranges.
// core lists positions (in the edge list) of edges that on their own
// exclude every live release not in allowed: the explanation when none of
// allowed works out. Deaths only remove candidates, so a domain stays
// valid; its allowed releases are re-checked for death when used.
type domain struct {
	allowed []int
	core    []int
}

type trailEntry struct {
	p      *pkgState
	forbid bool
}

func newSolver(src Source) *solver {
	return &solver{src: src, pkgs: map[string]*pkgState{}, ranges: map[string]*semver.Constraints{}}
}

func (s *solver) pkg(name string) *pkgState {
	p, ok := s.pkgs[name]
	if !ok {
		rels, yanked := withoutYanked(s.src.Releases(name))
		p = &pkgState{name: name, releases: rels, yanked: yanked, sel: -1}
		s.pkgs[name] = p
	}
	return p
}

// withoutYanked drops yanked releases (never chosen by a resolution) and
// returns their versions ascending. Without yanked releases it returns rels
// itself and allocates nothing.
func withoutYanked(rels []catalog.Release) ([]catalog.Release, []string) {
	if !slices.ContainsFunc(rels, func(r catalog.Release) bool { return r.Yanked }) {
		return rels, nil
	}
	kept := make([]catalog.Release, 0, len(rels))
	var yanked []string
	for i := len(rels) - 1; i >= 0; i-- { // oldest first
		if rels[i].Yanked {
			yanked = append(yanked, rels[i].Version.String())
		}
	}
	for _, r := range rels {
		if !r.Yanked {
			kept = append(kept, r)
		}
	}
	return kept, yanked
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

// addRoot adds a requirement of the stack or the request.
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

// mask returns which releases of p rng matches, computed once per call.
// It is the slow path: the common case checks only the newest release.
func (s *solver) mask(p *pkgState, rng *semver.Constraints) []bool {
	k := satKey{p.name, rng}
	if m, ok := s.masks[k]; ok {
		return m
	}
	m := make([]bool, len(p.releases))
	for i := range p.releases {
		m[i] = rng.Check(p.releases[i].Version)
	}
	if s.masks == nil {
		s.masks = map[satKey][]bool{}
	}
	s.masks[k] = m
	return m
}

// satisfiable finds the newest live release of p that satisfies e on its
// own: the newest live release if it does, else from the cached mask.
func (s *solver) satisfiable(p *pkgState, e *edge) witness {
	first := p.firstLive()
	if first < len(p.releases) && e.rng.Check(p.releases[first].Version) {
		return witness{index: first, published: true}
	}
	k := satKey{p.name, e.rng}
	if w, ok := s.sat[k]; ok && (w.index < 0 || !p.isDead(w.index)) {
		return w
	}
	w := witness{index: -1}
	for i, ok := range s.mask(p, e.rng) {
		if ok {
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

// domain returns the releases of p that all requirements and conflicts on
// p (and extra, if not nil) allow, with the edge list its core indexes.
// Cached per call by domainKey; built from masks, so each range is
// checked against each release at most once per call.
func (s *solver) domain(p *pkgState, extra *edge) (*domain, []*edge) {
	edges := slices.Concat(p.reqs, p.forbids)
	if extra != nil {
		edges = append(edges, extra)
	}
	key := s.domainKey(p, edges)
	if d, ok := s.domains[key]; ok {
		return d, edges
	}
	admits := make([][]bool, len(edges)) // admits[j][i]: edge j allows release i
	for j, e := range edges {
		m := s.mask(p, e.rng)
		if e.conflict {
			m = slices.Clone(m)
			for i := range m {
				m[i] = !m[i]
			}
		}
		admits[j] = m
	}
	allowedBy := func(i int, keep []bool) bool {
		for j := range edges {
			if (keep == nil || keep[j]) && !admits[j][i] {
				return false
			}
		}
		return true
	}
	d := &domain{}
	for i := range p.releases {
		if !p.isDead(i) && allowedBy(i, nil) {
			d.allowed = append(d.allowed, i)
		}
	}
	// The core: drop edges, deepest first, while the rest still exclude
	// every live release outside allowed.
	keep := make([]bool, len(edges))
	for j := range keep {
		keep[j] = true
	}
	excludesRest := func() bool {
		next := 0 // position in d.allowed
		for i := range p.releases {
			if next < len(d.allowed) && d.allowed[next] == i {
				next++
				continue
			}
			if !p.isDead(i) && allowedBy(i, keep) {
				return false
			}
		}
		return true
	}
	for j := len(edges) - 1; j >= 0; j-- {
		keep[j] = false
		if !excludesRest() {
			keep[j] = true
		}
	}
	for j, k := range keep {
		if k {
			d.core = append(d.core, j)
		}
	}
	if s.domains == nil {
		s.domains = map[string]*domain{}
	}
	s.domains[key] = d
	return d, edges
}

// domainKey identifies p and the ranges of edges; equal keys allow the
// same releases.
func (s *solver) domainKey(p *pkgState, edges []*edge) string {
	if s.ids == nil {
		s.ids = map[*semver.Constraints]int{}
	}
	b := append(make([]byte, 0, len(p.name)+4*len(edges)), p.name...)
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

// blameCore adds the levels of d's core edges other than except to cs.
func blameCore(cs *levelSet, d *domain, edges []*edge, except *edge) {
	for _, j := range d.core {
		if edges[j] != except {
			cs.add(edges[j].level)
		}
	}
}

// solve decides agenda[i:] by depth-first search, newest version first.
//
// On failure it returns the conflict set: the decision levels (< i) whose
// choices caused the failure. A caller whose level is not in the set
// returns at once (conflict-directed backjumping): its other versions
// cannot help. A release whose failure involved no other decision is
// dead for the rest of the call, and is never tried again.
//
// The newest live release is tried first if every edge allows it (the
// common case: a few range checks, no allocation); otherwise, or when it
// fails, the candidates come from p's domain.
func (s *solver) solve(i int) (bool, levelSet) {
	if i == len(s.agenda) {
		return true, nil
	}
	p := s.agenda[i]
	var cs levelSet
	cs.add(p.reqs[0].level) // p is only needed because of its first requirement
	var d *domain
	var edges []*edge
	next := 0 // position in d.allowed
	idx := p.firstLive()
	if idx == len(p.releases) || excluder(p, &p.releases[idx]) != nil {
		idx = -1
	}
	tried := -1
	for {
		if idx < 0 {
			if d == nil {
				d, edges = s.domain(p, nil)
			}
			for ; next < len(d.allowed) && idx < 0; next++ {
				if j := d.allowed[next]; j > tried && !p.isDead(j) {
					idx = j
				}
			}
			if idx < 0 {
				break
			}
		}
		tried = idx
		if s.steps++; s.steps > MaxSteps {
			return false, nil
		}
		cp := s.checkpoint()
		why, ok := s.choose(p, idx, i)
		if !ok {
			s.undo(cp, p)
			if s.err != nil {
				return false, nil
			}
			if why.empty() {
				p.kill(idx)
			}
			cs.union(why)
			idx = -1
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
		idx = -1
	}
	blameCore(&cs, d, edges, nil) // what excluded the releases never tried
	if s.failure == nil {
		s.explain(p)
	}
	return false, cs
}

// choose selects release idx of p at decision level lvl and adds its
// requirements and conflicts to the packages they name. It fails when
// the release conflicts with a selected release, requires something a
// selected release does not provide, or requires what no live release
// provides; the levels returned are the decisions responsible (none: the
// release is dead).
func (s *solver) choose(p *pkgState, idx, lvl int) (levelSet, bool) {
	r := &p.releases[idx]
	for _, c := range r.Conflicts {
		q, ok := s.pkgs[c.Name]
		if !ok || q == p || q.sel < 0 {
			continue
		}
		rng, err := s.parse(c.Range)
		if err != nil {
			s.err = fmt.Errorf("release %s: conflict %s: %w", r.ID(), c.Name, err)
			return nil, false
		}
		f := &edge{pkg: q.name, rng: rng, spelling: c.Range, level: lvl, from: r, why: p.reqs[0], conflict: true}
		if !f.admits(q.selected()) {
			return s.incompatible(q, f), false
		}
	}
	p.sel, p.level = idx, lvl
	for _, c := range r.Requires {
		rng, err := s.parse(c.Range)
		if err != nil {
			s.err = fmt.Errorf("release %s: requirement %s: %w", r.ID(), c.Name, err)
			return nil, false
		}
		q := s.pkg(c.Name)
		e := &edge{pkg: c.Name, rng: rng, spelling: c.Range, level: lvl, from: r, why: p.reqs[0]}
		if q.sel >= 0 {
			if !e.admits(q.selected()) {
				if q == p {
					return nil, false // requires another version of itself
				}
				return s.incompatible(q, e), false
			}
		} else if w := s.satisfiable(q, e); w.index < 0 {
			if !w.published {
				s.unsatisfiable(q, e)
			} // else what satisfies it is dead, and why was recorded then
			return nil, false
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
			return nil, false
		}
		q.forbids = append(q.forbids, &edge{pkg: c.Name, rng: rng, spelling: c.Range, level: lvl, from: r, why: p.reqs[0], conflict: true})
		s.trail = append(s.trail, trailEntry{p: q, forbid: true})
	}
	return nil, true
}

// incompatible explains why e, a new requirement or conflict on the
// selected package q, rules out the release declaring it. If another
// version of q would suit e and everything else on q, q's selection is to
// blame; otherwise the edges that, with e, exclude every version of q are
// (and what brought q in).
func (s *solver) incompatible(q *pkgState, e *edge) levelSet {
	var why levelSet
	d, edges := s.domain(q, e)
	if slices.ContainsFunc(d.allowed, func(i int) bool { return !q.isDead(i) }) {
		why.add(q.level)
		return why
	}
	why.add(q.reqs[0].level)
	blameCore(&why, d, edges, e)
	return why
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

// levelSet is a set of decision levels (a bitset). The zero value is empty.
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
