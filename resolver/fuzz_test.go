package resolver_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// The fuzz targets of the tag and requirement grammars. Seeds are in
// testdata/fuzz/<target>; CI runs each for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzParseTag$' -fuzztime 15s ./resolver
//	go test -run '^$' -fuzz '^FuzzParseRequirement$' -fuzztime 15s ./resolver

// fuzzNames is tagSnapshot's stack names plus names that make the
// name/version split ambiguous: names with '-' and digits.
func fuzzNames() (catalog.Stack, resolver.Names) {
	st := catalog.DefaultStack()
	st.Aliases["js"] = "javascript" // not published: not usable
	st.Aliases["py"] = "python-3"
	snap := catalog.NewSnapshot(1, rels(
		"php 8.2.36", "nodejs 20.17.0", "graphicsmagick 1.3.45", "base 12.0.0", "foo 1.0.0", "foo-bar 1.2.0",
		"python-3 3.12.1", "a.b 1.0.0", "x-1 1.0.0", "x 1.0.0",
	), []catalog.Stack{st})
	st, _ = snap.Stack(st.Name)
	return st, resolver.StackNames(snap, st)
}

// FuzzParseTag checks that ParseTag never panics, reports only its typed
// errors, and that an accepted tag gives a canonical request: names
// canonical and sorted, each range matching the version the tag spells,
// and the same Key for every order of the components.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"php-8.2_node-20", "latest", "foo-bar-1.2", "x-1-1", "py-3.12"} {
		f.Add(s)
	}
	st, names := fuzzNames()
	f.Fuzz(func(t *testing.T, tag string) {
		req, err := resolver.ParseTag(tag, st, names)
		if err != nil {
			var te *resolver.TagError
			if !errors.As(err, &te) && !errors.Is(err, resolver.ErrUnknownPackage) {
				t.Fatalf("ParseTag(%q): untyped error %T: %v", tag, err, err)
			}
			return
		}
		if len(tag) > resolver.MaxTagLength {
			t.Fatalf("ParseTag accepted a tag of %d characters", len(tag))
		}
		key := req.Key()
		if req.Key() != key {
			t.Fatalf("Key is not stable: %q then %q", key, req.Key())
		}
		for i, r := range req.Requirements {
			if canon, ok := names.Canonical(r.Name); !ok || canon != r.Name {
				t.Errorf("requirement %d: name %q is not canonical (%q, %v)", i, r.Name, canon, ok)
			}
			if i > 0 && req.Requirements[i-1].Name >= r.Name {
				t.Errorf("requirements not sorted and unique: %q then %q", req.Requirements[i-1].Name, r.Name)
			}
			if r.Range == nil || r.Spelling == "" {
				t.Fatalf("requirement %d: range %v, spelling %q", i, r.Range, r.Spelling)
			}
			if req.Latest || r.Spelling == "*" {
				continue
			}
			// The tag spells a version: MAJOR[.MINOR[.PATCH[-PRE]]]; the
			// version with the missing parts zero must satisfy the range.
			v := r.Spelling
			if core, _, _ := strings.Cut(v, "-"); strings.Count(core, ".") < 2 {
				v += strings.Repeat(".0", 2-strings.Count(core, "."))
			}
			sv, err := semver.StrictNewVersion(v)
			if err != nil {
				t.Fatalf("requirement %s: spelling %q is not a version: %v", r.Name, r.Spelling, err)
			}
			if !r.Range.Check(sv) {
				t.Errorf("requirement %s: range %q does not match the version %s its tag spells", r.Name, r.Range, sv)
			}
		}
		if tag == resolver.LatestTag {
			return
		}
		comps := strings.Split(tag, "_")
		orders := [][]string{slices.Clone(comps), slices.Clone(comps)}
		slices.Reverse(orders[0])
		if len(comps) > 1 {
			orders[1] = append(comps[1:len(comps):len(comps)], comps[0])
		}
		for _, o := range orders {
			other := strings.Join(o, "_")
			req2, err := resolver.ParseTag(other, st, names)
			if err != nil {
				t.Fatalf("%q parses but its reordering %q does not: %v", tag, other, err)
			}
			if req2.Key() != key {
				t.Fatalf("Key(%q) = %q but Key(%q) = %q", tag, key, other, req2.Key())
			}
		}
	})
}

// FuzzParseRequirement checks that ParseRequirement never panics, that an
// accepted requirement round-trips through NAME=SPELLING, and that two
// requirements give the same Key in either order, with one component
// each (the escaping of ',' and '%' in spellings holds).
func FuzzParseRequirement(f *testing.F) {
	f.Add("php=^8.2", "node=>=18 <21")
	f.Add("php", "gm=8.2, 8.3")
	_, names := fuzzNames()
	f.Fuzz(func(t *testing.T, a, b string) {
		var reqs []resolver.Requirement
		for _, s := range []string{a, b} {
			r, err := resolver.ParseRequirement(s, names)
			if err != nil {
				continue
			}
			if r.Range == nil {
				t.Fatalf("ParseRequirement(%q): nil range", s)
			}
			if canon, ok := names.Canonical(r.Name); !ok || canon != r.Name {
				t.Fatalf("ParseRequirement(%q): name %q is not canonical", s, r.Name)
			}
			again, err := resolver.ParseRequirement(r.Name+"="+r.Spelling, names)
			if err != nil {
				t.Fatalf("ParseRequirement(%q) = %s=%s, which does not parse: %v", s, r.Name, r.Spelling, err)
			}
			if again.Name != r.Name || again.Spelling != r.Spelling || again.Range.String() != r.Range.String() {
				t.Fatalf("round trip of %q: %s=%s (%s), then %s=%s (%s)", s, r.Name, r.Spelling, r.Range, again.Name, again.Spelling, again.Range)
			}
			reqs = append(reqs, r)
		}
		if len(reqs) != 2 || reqs[0].Name == reqs[1].Name {
			return
		}
		req, err := resolver.NewRequest("env", reqs)
		if err != nil {
			t.Fatalf("NewRequest(%q, %q): %v", a, b, err)
		}
		rev, err := resolver.NewRequest("env", []resolver.Requirement{reqs[1], reqs[0]})
		if err != nil {
			t.Fatalf("NewRequest(%q, %q): %v", b, a, err)
		}
		if req.Key() != rev.Key() {
			t.Fatalf("Key depends on the order: %q vs %q", req.Key(), rev.Key())
		}
		_, list, _ := strings.Cut(req.Key(), ":")
		if n := len(strings.Split(list, ",")); n != 2 {
			t.Fatalf("Key %q has %d components, want 2", req.Key(), n)
		}
	})
}
