package resolver

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// Errors that Resolve wraps. Test them with errors.Is.
var (
	// ErrEmpty: the request names no package and the stack has no
	// published base package, so there is nothing to compose.
	ErrEmpty = errors.New("nothing to compose")
	// ErrTooComplex: the search tried MaxSteps candidates without an answer.
	ErrTooComplex = errors.New("requirements too complex to resolve")
	// ErrTooManyLayers: more packages were selected than the stack's
	// MaxLayers allows.
	ErrTooManyLayers = errors.New("too many layers")
)

// maxAvailableInError bounds the versions UnsatisfiableError.Error lists.
const maxAvailableInError = 20

// UnsatisfiableError reports a requirement that no published version of
// Package satisfies.
type UnsatisfiableError struct {
	Package string
	// Constraint is the range as it was written: "9" from a tag, "^9" from
	// a release's requirements.
	Constraint string
	// Available lists every published version of Package, ascending.
	Available []string
	// Yanked lists the yanked versions of Package, ascending: published,
	// but never chosen by a resolution.
	Yanked []string
	// Chain is how the requirement arose when it is transitive, one step
	// per release: ["app 1.0.0 requires lib ^2", "lib 2.1.0 requires php ^9"].
	// It is empty for a requirement of the request or the stack itself.
	Chain []string
}

func (e *UnsatisfiableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no version of %s satisfies %s", e.Package, e.Constraint)
	switch n := len(e.Available); {
	case n == 0 && len(e.Yanked) > 0:
		fmt.Fprintf(&b, " (every version is yanked: %s)", strings.Join(e.Yanked, ", "))
	case n == 0:
		b.WriteString(" (none published)")
	case n <= maxAvailableInError:
		fmt.Fprintf(&b, " (available: %s)", strings.Join(e.Available, ", "))
	default:
		fmt.Fprintf(&b, " (available: %s, and %d older)", strings.Join(e.Available[n-maxAvailableInError:], ", "), n-maxAvailableInError)
	}
	if len(e.Yanked) > 0 && len(e.Available) > 0 {
		fmt.Fprintf(&b, "; yanked: %s", strings.Join(e.Yanked, ", "))
	}
	if len(e.Chain) > 0 {
		by := make([]string, len(e.Chain))
		for i, step := range e.Chain {
			by[i], _, _ = strings.Cut(step, " requires ")
		}
		fmt.Fprintf(&b, "; required by %s", by[len(by)-1])
		if len(by) > 1 {
			fmt.Fprintf(&b, " (via %s)", strings.Join(by[:len(by)-1], " -> "))
		}
	}
	return b.String()
}

// ConflictError reports two requirement chains that cannot both hold for
// Package: two ranges with no common version, or a release's declared
// conflict with a version another chain needs. Each chain starts at the
// request or stack ("requested php 8.2", "stack env includes base") and
// ends with the requirement on Package, e.g.
// ["requested app", "app 1.0.0 requires php ^7"].
type ConflictError struct {
	Package string
	Chains  [2][]string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflicting requirements for %s: (1) %s; (2) %s",
		e.Package, strings.Join(e.Chains[0], " -> "), strings.Join(e.Chains[1], " -> "))
}

// NoPlatformError reports selected releases that share no platform.
type NoPlatformError struct {
	// Releases lists every selected release in layer order with its platforms.
	Releases []ReleasePlatforms
}

// ReleasePlatforms is one release ("php 8.2.36") and the platforms it has
// layers for ("linux/amd64").
type ReleasePlatforms struct {
	Release   string
	Platforms []string
}

func (e *NoPlatformError) Error() string {
	parts := make([]string, len(e.Releases))
	for i, r := range e.Releases {
		parts[i] = fmt.Sprintf("%s (%s)", r.Release, strings.Join(r.Platforms, ", "))
	}
	return "no platform is common to all selected packages: " + strings.Join(parts, ", ")
}

// EnvConflictError reports two selected releases that set the same
// environment variable to different values. PATH entries never conflict.
type EnvConflictError struct {
	Variable string
	Packages [2]string // release IDs in layer order, e.g. "php 8.2.36"
	Values   [2]string
}

func (e *EnvConflictError) Error() string {
	return fmt.Sprintf("environment variable %s is set to %q by %s and to %q by %s",
		e.Variable, e.Values[0], e.Packages[0], e.Values[1], e.Packages[1])
}

// step describes e alone: "requested php 8.2", "stack env includes base",
// "app 1.0.0 requires php ^7", "app 1.0.0 conflicts with php <8".
func (e *edge) step() string {
	if e.from == nil {
		if e.spelling == "*" {
			return e.root + " " + e.pkg
		}
		return e.root + " " + e.pkg + " " + e.spelling
	}
	verb := " requires "
	if e.conflict {
		verb = " conflicts with "
	}
	return e.from.ID() + verb + e.pkg + " " + e.spelling
}

// chain describes how e arose, from the request or stack down to e.
func (e *edge) chain() []string {
	var steps []string
	for x := e; x != nil; x = x.why {
		steps = append(steps, x.step())
	}
	slices.Reverse(steps)
	return steps
}

// transitive is e's chain without the request or stack step; nil for a root.
func (e *edge) transitive() []string {
	if e.from == nil {
		return nil
	}
	return e.chain()[1:]
}

// selectedChain describes why q's selected release is there.
func selectedChain(q *pkgState) []string {
	return append(q.reqs[0].chain(), q.selected().ID()+" selected")
}

func versions(rels []catalog.Release) []string {
	out := make([]string, len(rels))
	for i, r := range rels {
		out[len(rels)-1-i] = r.Version.String() // newest first -> ascending
	}
	return out
}

func (s *solver) record(rank int, err error) {
	if rank > s.rank {
		s.failure, s.rank = err, rank
	}
}

// unsatisfiable records that no release of q satisfies e on its own. Such a
// requirement is the most useful explanation, so it replaces a conflict.
func (s *solver) unsatisfiable(q *pkgState, e *edge) {
	if s.rank >= 2 {
		return
	}
	s.record(2, &UnsatisfiableError{Package: q.name, Constraint: e.spelling, Available: versions(q.releases), Yanked: q.yanked, Chain: e.transitive()})
}

// intersects reports whether some release of p satisfies both a and b.
func (s *solver) intersects(p *pkgState, a, b *edge) bool {
	ma, mb := s.mask(p, a.rng), s.mask(p, b.rng)
	for i := range ma {
		if ma[i] && mb[i] {
			return true
		}
	}
	return false
}

// explain records why no release of p could be selected, when nothing
// explains the failure yet. It only runs on the failure path.
func (s *solver) explain(p *pkgState) {
	// Two requirements with no common version.
	for i, a := range p.reqs {
		for _, b := range p.reqs[i+1:] {
			if !s.intersects(p, a, b) {
				s.record(1, &ConflictError{Package: p.name, Chains: [2][]string{a.chain(), b.chain()}})
				return
			}
		}
	}
	// The newest release that satisfies every requirement, and why it was refused.
	var v *catalog.Release
	for i := range p.releases {
		if !slices.ContainsFunc(p.reqs, func(e *edge) bool { return !s.mask(p, e.rng)[i] }) {
			v = &p.releases[i]
			break
		}
	}
	if v == nil { // pairwise compatible, but not all at once
		spellings := make([]string, len(p.reqs))
		for i, e := range p.reqs {
			spellings[i] = e.spelling
		}
		s.record(1, &UnsatisfiableError{Package: p.name, Constraint: strings.Join(spellings, " and "), Available: versions(p.releases), Yanked: p.yanked, Chain: nil})
		return
	}
	for _, f := range p.forbids {
		if f.rng.Check(v.Version) {
			s.record(1, &ConflictError{Package: p.name, Chains: [2][]string{f.chain(), p.reqs[0].chain()}})
			return
		}
	}
	for _, c := range v.Conflicts {
		q, ok := s.pkgs[c.Name]
		if !ok || q == p || q.sel < 0 {
			continue
		}
		if rng, err := s.parse(c.Range); err == nil && rng.Check(q.selected().Version) {
			e := &edge{pkg: q.name, spelling: c.Range, from: v, why: p.reqs[0], conflict: true}
			s.record(1, &ConflictError{Package: q.name, Chains: [2][]string{e.chain(), selectedChain(q)}})
			return
		}
	}
	for _, c := range v.Requires {
		q, ok := s.pkgs[c.Name]
		rng, err := s.parse(c.Range)
		if !ok || q == p || q.sel < 0 || err != nil || rng.Check(q.selected().Version) {
			continue
		}
		e := &edge{pkg: q.name, rng: rng, spelling: c.Range, from: v, why: p.reqs[0]}
		other := selectedChain(q)
		for _, qe := range q.reqs {
			if !s.intersects(q, qe, e) {
				other = qe.chain()
				break
			}
		}
		s.record(1, &ConflictError{Package: q.name, Chains: [2][]string{other, e.chain()}})
		return
	}
	s.record(1, &UnsatisfiableError{Package: p.name, Constraint: p.reqs[0].spelling, Available: versions(p.releases), Chain: p.reqs[0].transitive()})
}

// OverlapError reports two selected packages whose layers disagree about
// a path on one platform: both write it with different content, or one
// writes it as a file or symbolic link while the other writes entries
// beneath it (so needs it to be a directory) — in an image the upper one
// would hide the lower one's files or have them written through its link.
// Identical entries (the same shared library in two layers) are not an
// overlap. A stack may allow overlaps (catalog.Stack.AllowOverlap); then
// the upper layer wins.
type OverlapError struct {
	Path     string    // e.g. "usr/lib/x86_64-linux-gnu/libxml2.so.2", or "etc" when one package makes /etc a link
	Platform string    // e.g. "linux/amd64"
	Packages [2]string // release IDs in layer order, e.g. "php 8.2.36"
	// Entries are what each package writes, in the order of Packages: Path
	// for both when they write it with different content; Path for one and
	// a path beneath it (e.g. "etc/os-release") for the other when one
	// needs a directory where the other writes a file or link.
	Entries [2]string
}

func (e *OverlapError) Error() string {
	if e.Entries[0] == e.Entries[1] {
		return fmt.Sprintf("%s and %s both write /%s with different content (%s); the stack does not allow overlapping layers",
			e.Packages[0], e.Packages[1], e.Path, e.Platform)
	}
	return fmt.Sprintf("%s writes /%s and %s writes /%s, so /%s would be both a directory and a file or symbolic link (%s); the stack does not allow overlapping layers",
		e.Packages[0], e.Entries[0], e.Packages[1], e.Entries[1], e.Path, e.Platform)
}
