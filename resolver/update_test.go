package resolver_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

func running(pairs ...string) map[string]*semver.Version {
	out := map[string]*semver.Version{}
	for _, p := range pairs {
		name, v, _ := strings.Cut(p, " ")
		out[name] = semver.MustParse(v)
	}
	return out
}

func TestPolicyRange(t *testing.T) {
	v := semver.MustParse("8.2.32+deb12")
	for policy, want := range map[resolver.Policy]string{
		resolver.PolicyNone:  "=8.2.32",
		resolver.PolicyPatch: ">=8.2.32 <8.3.0",
		resolver.PolicyMinor: ">=8.2.32 <9.0.0",
		resolver.PolicyAll:   "*",
	} {
		if got := resolver.PolicyRange(policy, v); got != want {
			t.Errorf("PolicyRange(%s, %s) = %q, want %q", policy, v, got, want)
		}
	}
}

func TestApplyPolicy(t *testing.T) {
	releases := cat(rels("base 12.0.0", "base 12.1.0", "base 13.0.0", "nodejs 18.20.4", "nodejs 20.12.2"), phps)
	for _, tc := range []struct {
		name    string
		reqs    []string
		running map[string]*semver.Version
		policy  resolver.Policy
		want    []resolver.EffectiveRequirement
		ids     []string // what the effective request resolves to
	}{
		{name: "all, nothing runs", reqs: []string{"php=^8"}, policy: resolver.PolicyAll,
			want: []resolver.EffectiveRequirement{{Name: "php", Constraint: "^8", Effective: "^8"}},
			ids:  []string{"base 13.0.0", "php 8.3.4"}},
		{name: "all leaves what runs alone", reqs: []string{"php=^8"}, running: running("php 8.1.27", "base 12.0.0"), policy: resolver.PolicyAll,
			want: []resolver.EffectiveRequirement{{Name: "php", Constraint: "^8", Effective: "^8"}},
			ids:  []string{"base 13.0.0", "php 8.3.4"}},
		{name: "patch narrows the request and the base", reqs: []string{"php=^8"}, running: running("php 8.2.32", "base 12.0.0"), policy: resolver.PolicyPatch,
			want: []resolver.EffectiveRequirement{
				{Name: "base", Constraint: "*", Effective: ">=12.0.0 <12.1.0", Note: "patch from 12.0.0: >=12.0.0 <12.1.0", Base: true},
				{Name: "php", Constraint: "^8", Effective: "^8, >=8.2.32 <8.3.0", Note: "patch from 8.2.32: >=8.2.32 <8.3.0"}},
			ids: []string{"base 12.0.0", "php 8.2.36"}},
		{name: "minor, an alternative per bound", reqs: []string{"php=^7 || ^8"}, running: running("php 8.1.27"), policy: resolver.PolicyMinor,
			want: []resolver.EffectiveRequirement{{Name: "php", Constraint: "^7 || ^8", Effective: "^7, >=8.1.27 <9.0.0 || ^8, >=8.1.27 <9.0.0", Note: "minor from 8.1.27: >=8.1.27 <9.0.0"}},
			ids:  []string{"base 13.0.0", "php 8.3.4"}},
		{name: "a requirement that excludes what runs is a change on purpose", reqs: []string{"php=^7"}, running: running("php 8.2.32", "nodejs 18.20.4"), policy: resolver.PolicyNone,
			want: []resolver.EffectiveRequirement{{Name: "php", Constraint: "^7", Effective: "^7",
				Note: "none not applied: php 8.2.32 (from) does not satisfy ^7, so the requirement was changed on purpose"}},
			ids: []string{"base 13.0.0", "php 7.4.33"}},
		{name: "a base that runs outside the stack's range is left alone", reqs: []string{"php=8.2"}, running: running("php 8.2.32", "base 11.0.0"), policy: resolver.PolicyNone,
			want: []resolver.EffectiveRequirement{{Name: "php", Constraint: "8.2", Effective: "8.2, =8.2.32", Note: "none from 8.2.32: =8.2.32"}},
			ids:  []string{"base 13.0.0", "php 8.2.32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := catalog.DefaultStack()
			if strings.Contains(tc.name, "outside") {
				st.Base[0].Range = "^12 || ^13"
			}
			snap := catalog.NewSnapshot(1, releases, []catalog.Stack{st})
			var list []resolver.Requirement
			for _, s := range tc.reqs {
				r, err := resolver.ParseRequirement(s, resolver.StackNames(snap, st))
				if err != nil {
					t.Fatal(err)
				}
				list = append(list, r)
			}
			req, err := resolver.NewRequest(st.Name, list)
			if err != nil {
				t.Fatal(err)
			}
			eff, got, err := resolver.ApplyPolicy(req, snap, st, tc.running, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("requirements:\n got %+v\nwant %+v", got, tc.want)
			}
			res, err := resolver.Resolve(snap, st, eff)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !reflect.DeepEqual(got, tc.ids) {
				t.Errorf("resolved %v, want %v", got, tc.ids)
			}
		})
	}
}

func TestCanonicalTag(t *testing.T) {
	st := catalog.DefaultStack()
	resolve := func(t *testing.T, releases []catalog.Release, tag string) (*catalog.Snapshot, *resolver.Resolution) {
		t.Helper()
		snap := catalog.NewSnapshot(1, releases, []catalog.Stack{st})
		req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
		if err != nil {
			t.Fatal(err)
		}
		res, err := resolver.Resolve(snap, st, req)
		if err != nil {
			t.Fatal(err)
		}
		return snap, res
	}
	t.Run("every version", func(t *testing.T) {
		snap, res := resolve(t, cat(rels("base 12.0.0", "nodejs 20.12.2"), phps), "php-8.2_node")
		tag, omitted := resolver.CanonicalTag(snap, st, res)
		if tag != "base-12.0.0_nodejs-20.12.2_php-8.2.36" || omitted != "" {
			t.Errorf("CanonicalTag = %q, %q", tag, omitted)
		}
	})
	t.Run("build metadata", func(t *testing.T) {
		builds := rels("base 12.0.0", "php 8.2.36+deb1", "php 8.2.36+deb2")
		snap, res := resolve(t, builds, "php")
		chosen := res.Releases[1]
		if tag, omitted := resolver.CanonicalTag(snap, st, res); tag != "base-12.0.0_php-8.2.36" || omitted != "" {
			t.Errorf("CanonicalTag of %s = %q, %q", chosen.ID(), tag, omitted)
		}
		// The other build is what a resolution selected (say, a pin): the
		// tag would name the chosen one.
		other := builds[1]
		if other.Version.Equal(chosen.Version) && other.Version.Metadata() == chosen.Version.Metadata() {
			other = builds[2]
		}
		res.Releases[1] = other
		want := "tag base-12.0.0_php-8.2.36 would select base 12.0.0, " + chosen.ID() +
			" (versions that differ only in build metadata cannot be told apart in a tag)"
		if tag, omitted := resolver.CanonicalTag(snap, st, res); tag != "" || omitted != want {
			t.Errorf("CanonicalTag of %s = %q, %q; want omitted %q", other.ID(), tag, omitted, want)
		}
	})
	t.Run("too long", func(t *testing.T) {
		var releases []catalog.Release
		var names []string
		for _, n := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"} {
			releases = append(releases, rel(n+"pkg 1.0.0"))
			names = append(names, n+"pkg")
		}
		snap, res := resolve(t, releases, strings.Join(names, "_"))
		tag, omitted := resolver.CanonicalTag(snap, st, res)
		if tag != "" || !strings.HasPrefix(omitted, "a tag naming the 12 selected versions would be ") {
			t.Errorf("CanonicalTag = %q, %q", tag, omitted)
		}
	})
}

func TestChanges(t *testing.T) {
	got := resolver.Changes(running("php 8.1.27", "nodejs 20.12.2", "gm 1.3.40", "base 12.0.0+deb1", "curl 8.0.0"),
		rels("base 12.0.0+deb2", "php 8.2.36", "nodejs 18.20.4", "git 2.39.0", "curl 8.0.0"))
	want := []resolver.Change{
		{Package: "base", Kind: "rebuilt", From: "12.0.0+deb1", To: "12.0.0+deb2"},
		{Package: "git", Kind: "added", To: "2.39.0"},
		{Package: "gm", Kind: "removed", From: "1.3.40"},
		{Package: "nodejs", Kind: "downgraded", From: "20.12.2", To: "18.20.4"},
		{Package: "php", Kind: "upgraded", From: "8.1.27", To: "8.2.36"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Changes:\n got %+v\nwant %+v", got, want)
	}
	if got := resolver.Changes(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Changes(nil, nil) = %#v, want an empty list", got)
	}
}
