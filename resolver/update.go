package resolver

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// Policy bounds how far a resolve may move the packages of an image that
// runs now (the "from" image of the provisioning API).
type Policy string

// Update policies, relative to the version that runs.
const (
	PolicyAll   Policy = "all"   // any version the requirement allows
	PolicyMinor Policy = "minor" // a newer minor or patch within the running major version
	PolicyPatch Policy = "patch" // a newer patch within the running major.minor
	PolicyNone  Policy = "none"  // the running version, as long as it satisfies the requirement
)

// EffectiveRequirement is one requirement after ApplyPolicy: the
// constraint asked for and the one resolved.
type EffectiveRequirement struct {
	Name string
	// Constraint as requested ("*" for any version, the stack's range for
	// a base package the policy constrains).
	Constraint string
	// Effective is what is resolved: Constraint, narrowed by the policy.
	Effective string
	// Note explains what the policy did to this requirement.
	Note string
	// Base is true for a stack base package added to carry the policy.
	Base bool
}

// ApplyPolicy narrows each requirement of req whose package runs (has a
// version in running) to the versions the policy allows, as long as the
// running version satisfies the requirement: the policy governs updates of
// what runs, and a requirement that excludes what runs is an explicit
// change, resolved as asked. The stack's base packages that run are
// constrained the same way (they are in every image, so a requirement on
// them adds nothing else). Packages that are only pulled in by others'
// requirements are not constrained. running is nil when nothing runs.
//
// It returns the request to resolve and every requirement as narrowed,
// sorted by name.
func ApplyPolicy(req Request, snap *catalog.Snapshot, st catalog.Stack, running map[string]*semver.Version, policy Policy) (Request, []EffectiveRequirement, error) {
	n := narrowing{running: running, policy: policy}
	for _, r := range req.Requirements {
		if err := n.narrow(r, false); err != nil {
			return Request{}, nil, err
		}
	}
	if len(running) > 0 && policy != PolicyAll {
		if err := n.narrowBase(snap, st); err != nil {
			return Request{}, nil, err
		}
	}
	if len(n.reqs) == len(req.Requirements) && policy == PolicyAll {
		return req, n.views, nil
	}
	eff, err := NewRequest(st.Name, n.reqs)
	if err != nil {
		return Request{}, nil, err
	}
	slices.SortFunc(n.views, func(a, b EffectiveRequirement) int { return strings.Compare(a.Name, b.Name) })
	return eff, n.views, nil
}

// narrowing collects the requirements ApplyPolicy narrows.
type narrowing struct {
	running map[string]*semver.Version
	policy  Policy
	reqs    []Requirement
	views   []EffectiveRequirement
}

// narrow adds r, narrowed if its package runs. A base package is added
// only when it runs and the running version satisfies its range.
func (n *narrowing) narrow(r Requirement, base bool) error {
	view := EffectiveRequirement{Name: r.Name, Constraint: r.Spelling, Effective: r.Spelling, Base: base}
	v, runs := n.running[r.Name]
	switch {
	case !runs || n.policy == PolicyAll:
		if base {
			return nil
		}
	case !r.Range.Check(v):
		if base {
			return nil
		}
		view.Note = fmt.Sprintf("%s not applied: %s %s (from) does not satisfy %s, so the requirement was changed on purpose", n.policy, r.Name, v.Original(), r.Spelling)
	default:
		bound := PolicyRange(n.policy, v)
		spelling := and(r.Spelling, bound)
		rng, err := semver.NewConstraint(spelling)
		if err != nil {
			return fmt.Errorf("policy %s for %s: range %q: %w", n.policy, r.Name, spelling, err)
		}
		r = Requirement{Name: r.Name, Range: rng, Spelling: spelling}
		view.Effective = spelling
		view.Note = fmt.Sprintf("%s from %s: %s", n.policy, v.Original(), bound)
	}
	n.reqs = append(n.reqs, r)
	n.views = append(n.views, view)
	return nil
}

// narrowBase adds the stack's published base packages nobody asked for,
// with the stack's range, narrowed.
func (n *narrowing) narrowBase(snap *catalog.Snapshot, st catalog.Stack) error {
	for _, c := range st.Base {
		if len(snap.Releases(c.Name)) == 0 || slices.ContainsFunc(n.reqs, func(r Requirement) bool { return r.Name == c.Name }) {
			continue
		}
		rng, err := semver.NewConstraint(c.Range)
		if err != nil {
			continue // Resolve reports the stack's broken range
		}
		if err := n.narrow(Requirement{Name: c.Name, Range: rng, Spelling: c.Range}, true); err != nil {
			return err
		}
	}
	return nil
}

// PolicyRange is the range policy allows relative to the running version v
// (build metadata dropped):
//
//	none   =8.2.32
//	patch  >=8.2.32 <8.3.0
//	minor  >=8.2.32 <9.0.0
//	all    *
func PolicyRange(policy Policy, v *semver.Version) string {
	core, _ := v.SetMetadata("")
	switch policy {
	case PolicyNone:
		return "=" + core.String()
	case PolicyPatch:
		return fmt.Sprintf(">=%s <%d.%d.0", core.String(), v.Major(), v.Minor()+1)
	case PolicyMinor:
		return fmt.Sprintf(">=%s <%d.0.0", core.String(), v.Major()+1)
	}
	return "*"
}

// and intersects a Masterminds range with bound (an AND of comparisons):
// bound is appended to every "||" alternative, so "^7 || ^8" and
// ">=8.2.32 <8.3.0" give "^7, >=8.2.32 <8.3.0 || ^8, >=8.2.32 <8.3.0".
func and(rng, bound string) string {
	if s := strings.TrimSpace(rng); s == "*" || s == "" {
		return bound
	}
	alts := strings.Split(rng, "||")
	for i, alt := range alts {
		alts[i] = strings.TrimSpace(alt) + ", " + bound
	}
	return strings.Join(alts, " || ")
}

// CanonicalTag returns the tag that names every selected version of res
// exactly (build metadata dropped: tags cannot carry '+'), checked by
// parsing and resolving it against the same snapshot. Pinning every
// package, base and dependencies included, is what makes the tag keep
// meaning the same image after later publishes. When there is no such tag
// it returns the reason instead.
func CanonicalTag(snap *catalog.Snapshot, st catalog.Stack, res *Resolution) (tag, omitted string) {
	rels := slices.Clone(res.Releases)
	slices.SortFunc(rels, func(a, b catalog.Release) int { return strings.Compare(a.Name, b.Name) })
	comps := make([]string, len(rels))
	for i, rel := range rels {
		v, _ := rel.Version.SetMetadata("")
		comps[i] = rel.Name + "-" + v.String()
	}
	tag = strings.Join(comps, "_")
	if len(tag) > MaxTagLength {
		return "", fmt.Sprintf("a tag naming the %d selected versions would be %d characters long; tags are limited to %d", len(rels), len(tag), MaxTagLength)
	}
	req, err := ParseTag(tag, st, StackNames(snap, st))
	if err != nil {
		return "", fmt.Sprintf("the versions cannot be spelled as a tag: %v", err)
	}
	again, err := Resolve(snap, st, req)
	if err != nil {
		return "", fmt.Sprintf("tag %s does not resolve: %v", tag, err)
	}
	if !slices.EqualFunc(again.Releases, res.Releases, func(a, b catalog.Release) bool {
		return a.Name == b.Name && a.Version.String() == b.Version.String()
	}) {
		ids := make([]string, len(again.Releases))
		for i, rel := range again.Releases {
			ids[i] = rel.ID()
		}
		return "", fmt.Sprintf("tag %s would select %s (versions that differ only in build metadata cannot be told apart in a tag)", tag, strings.Join(ids, ", "))
	}
	return tag, ""
}

// Change is one package whose version differs between what runs and a
// resolution.
type Change struct {
	Package string
	// Kind is "upgraded", "downgraded", "added", "removed" or "rebuilt"
	// (same version, other build metadata).
	Kind string
	// From is the running version (as written), To the selected one;
	// either is empty for an added or removed package.
	From, To string
	// Reason, for a rebuild, is what the selected release says changed
	// (its catalog.LabelRebuild label), e.g. "libssl3 3.0.15-1~deb12u1 →
	// 3.0.16-1~deb12u1"; empty when it does not say.
	Reason string
}

// Changes lists the packages whose versions differ between running
// (package -> version) and rels, sorted by name. It is never nil.
func Changes(running map[string]*semver.Version, rels []catalog.Release) []Change {
	now := make(map[string]*semver.Version, len(rels))
	reasons := map[string]string{}
	for _, r := range rels {
		now[r.Name] = r.Version
		reasons[r.Name] = r.Labels[catalog.LabelRebuild]
	}
	names := slices.Sorted(maps.Keys(now))
	for name := range running {
		if _, ok := now[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := []Change{}
	for _, name := range names {
		if c, ok := change(name, running[name], now[name]); ok {
			if c.Kind == "rebuilt" {
				c.Reason = reasons[name]
			}
			out = append(out, c)
		}
	}
	return out
}

// change compares the running version old with cur (either may be nil).
func change(name string, old, cur *semver.Version) (Change, bool) {
	c := Change{Package: name}
	if old != nil {
		c.From = old.Original()
	}
	if cur != nil {
		c.To = cur.String()
	}
	switch {
	case old == nil:
		c.Kind = "added"
	case cur == nil:
		c.Kind = "removed"
	case old.Compare(cur) < 0:
		c.Kind = "upgraded"
	case old.Compare(cur) > 0:
		c.Kind = "downgraded"
	case c.From != c.To:
		c.Kind = "rebuilt"
	default:
		return Change{}, false
	}
	return c, true
}
