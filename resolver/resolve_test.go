package resolver_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// rel builds a release from "name version" and options, each one of
//
//	"requires php ^8"   a requirement (catalog.ParseConstraint syntax)
//	"conflicts php <8"  a conflict
//	"on linux/arm64"    a platform (repeatable; default linux/amd64 and linux/arm64)
//	"env K=V"           an environment variable
//	"path /opt/x/bin"   a PATH entry
func rel(id string, opts ...string) catalog.Release {
	name, version, _ := strings.Cut(id, " ")
	r := catalog.Release{Name: name, Version: semver.MustParse(version)}
	var platforms []string
	for _, o := range opts {
		verb, arg, _ := strings.Cut(o, " ")
		switch verb {
		case "requires", "conflicts":
			c, err := catalog.ParseConstraint(arg)
			if err != nil {
				panic(err)
			}
			if verb == "requires" {
				r.Requires = append(r.Requires, c)
			} else {
				r.Conflicts = append(r.Conflicts, c)
			}
		case "on":
			platforms = append(platforms, arg)
		case "env":
			k, v, _ := strings.Cut(arg, "=")
			if r.Env.Vars == nil {
				r.Env.Vars = map[string]string{}
			}
			r.Env.Vars[k] = v
		case "path":
			r.Env.Path = append(r.Env.Path, arg)
		default:
			panic("rel: unknown option " + o)
		}
	}
	if platforms == nil {
		platforms = []string{"linux/amd64", "linux/arm64"}
	}
	for _, s := range platforms {
		p, err := catalog.ParsePlatform(s)
		if err != nil {
			panic(err)
		}
		r.Layers = append(r.Layers, catalog.Layer{
			Platform:  p,
			Digest:    digest.FromString(id + s),
			DiffID:    digest.FromString(id + s + " tar"),
			Size:      1,
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		})
	}
	r.Canonicalize()
	if err := r.Validate(); err != nil {
		panic(err)
	}
	return r
}

var parsedRanges sync.Map // range string -> *semver.Constraints, for the brute-force checks

func mustRange(s string) *semver.Constraints {
	if c, ok := parsedRanges.Load(s); ok {
		return c.(*semver.Constraints)
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		panic(err)
	}
	parsedRanges.Store(s, c)
	return c
}

// rels builds releases without options from ids.
func rels(ids ...string) []catalog.Release {
	out := make([]catalog.Release, len(ids))
	for i, id := range ids {
		out[i] = rel(id)
	}
	return out
}

func cat(groups ...[]catalog.Release) []catalog.Release {
	var out []catalog.Release
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var phps = rels("php 7.4.30", "php 7.4.33", "php 8.1.27", "php 8.2.32", "php 8.2.36", "php 8.3.4", "php 8.4.0-rc1")

const phpAvailable = "7.4.30, 7.4.33, 8.1.27, 8.2.32, 8.2.36, 8.3.4, 8.4.0-rc1"

type resolveCase struct {
	name     string
	releases []catalog.Release
	stack    *catalog.Stack // nil: catalog.DefaultStack()
	tag      string         // parsed with ParseTag…
	reqs     []string       // …or each with ParseRequirement
	request  *resolver.Request

	want      []string // release IDs in layer order
	platforms []string // if set, the expected Platforms
	wantErr   string   // exact Error()
}

func (tc resolveCase) run(t *testing.T) (*resolver.Resolution, error) {
	t.Helper()
	st := catalog.DefaultStack()
	if tc.stack != nil {
		st = *tc.stack
	}
	snap := catalog.NewSnapshot(1, tc.releases, []catalog.Stack{st})
	names := resolver.StackNames(snap, st)
	var req resolver.Request
	switch {
	case tc.request != nil:
		req = *tc.request
	case tc.tag != "":
		var err error
		if req, err = resolver.ParseTag(tc.tag, st, names); err != nil {
			t.Fatalf("ParseTag(%q): %v", tc.tag, err)
		}
	default:
		var list []resolver.Requirement
		for _, s := range tc.reqs {
			r, err := resolver.ParseRequirement(s, names)
			if err != nil {
				t.Fatalf("ParseRequirement(%q): %v", s, err)
			}
			list = append(list, r)
		}
		var err error
		if req, err = resolver.NewRequest(st.Name, list); err != nil {
			t.Fatal(err)
		}
	}
	return resolver.Resolve(snap, st, req)
}

func ids(res *resolver.Resolution) []string {
	var out []string
	for _, r := range res.Releases {
		out = append(out, r.ID())
	}
	return out
}

func TestResolve(t *testing.T) {
	stackWithBase := func(base ...string) *catalog.Stack {
		st := catalog.DefaultStack()
		st.Base = nil
		for _, b := range base {
			c, err := catalog.ParseConstraint(b)
			if err != nil {
				panic(err)
			}
			st.Base = append(st.Base, c)
		}
		return &st
	}
	limited := catalog.DefaultStack()
	limited.MaxLayers = 2
	many := make([]catalog.Release, 0, 25)
	for i := range 25 {
		many = append(many, rel(fmt.Sprintf("tool 1.%d.0", i)))
	}

	for _, tc := range []resolveCase{
		// Choosing versions.
		{name: "newest patch of a minor wins", releases: phps, tag: "php-8.2", want: []string{"php 8.2.36"}},
		{name: "exact pin", releases: phps, tag: "php-8.2.32", want: []string{"php 8.2.32"}},
		{name: "major prefix", releases: phps, tag: "php-7", want: []string{"php 7.4.33"}},
		{name: "major prefix skips pre-release", releases: phps, tag: "php-8", want: []string{"php 8.3.4"}},
		{name: "bare name skips pre-release", releases: phps, tag: "php", want: []string{"php 8.3.4"}},
		{name: "named pre-release", releases: phps, tag: "php-8.4.0-rc1", want: []string{"php 8.4.0-rc1"}},
		{
			name: "minor with only a pre-release", releases: phps, tag: "php-8.4",
			wantErr: "no version of php satisfies 8.4 (available: " + phpAvailable + ")",
		},
		{
			name: "no such major", releases: phps, tag: "php-9",
			wantErr: "no version of php satisfies 9 (available: " + phpAvailable + ")",
		},
		{name: "API range", releases: phps, reqs: []string{"php=>=8.1 <8.3"}, want: []string{"php 8.2.36"}},
		{name: "API caret", releases: phps, reqs: []string{"php=^7"}, want: []string{"php 7.4.33"}},
		{
			name: "more than 20 versions available", releases: many, reqs: []string{"tool=2"},
			wantErr: "no version of tool satisfies 2 (available: 1.5.0, 1.6.0, 1.7.0, 1.8.0, 1.9.0, 1.10.0, 1.11.0, 1.12.0, 1.13.0, 1.14.0, 1.15.0, 1.16.0, 1.17.0, 1.18.0, 1.19.0, 1.20.0, 1.21.0, 1.22.0, 1.23.0, 1.24.0, and 5 older)",
		},
		{
			name:     "requirement on an unpublished package",
			releases: phps,
			request:  &resolver.Request{Stack: "env", Requirements: []resolver.Requirement{{Name: "foo", Range: mustRange("^1"), Spelling: "^1"}}},
			wantErr:  "no version of foo satisfies ^1 (none published)",
		},

		// Requirements of releases.
		{
			name:     "transitive requirement",
			releases: cat(phps, []catalog.Release{rel("composer 2.7.0", "requires php ^8")}),
			tag:      "composer",
			want:     []string{"php 8.3.4", "composer 2.7.0"},
		},
		{
			name:     "transitive requirement combines with the request",
			releases: cat(phps, []catalog.Release{rel("composer 2.7.0", "requires php >=8.1")}),
			tag:      "composer_php-8.2",
			want:     []string{"php 8.2.36", "composer 2.7.0"},
		},
		{
			name: "backtrack: newest candidate requires what does not exist",
			releases: cat(
				rels("lib 1.1.0", "lib 1.2.0"),
				[]catalog.Release{rel("app 2.0.0", "requires lib ^9"), rel("app 1.0.0", "requires lib ^1")},
			),
			tag:  "app",
			want: []string{"lib 1.2.0", "app 1.0.0"},
		},
		{
			name: "backtrack: newest candidate conflicts with the request",
			releases: cat(phps, []catalog.Release{
				rel("composer 2.8.0", "requires php >=8.3"), rel("composer 2.7.0", "requires php >=8.1"),
			}),
			tag:  "composer_php-8.2",
			want: []string{"php 8.2.36", "composer 2.7.0"},
		},
		{
			name: "backtrack: requirer decided after the package it requires",
			releases: cat(phps, []catalog.Release{
				rel("zed 2.0.0", "requires php ^9"), rel("zed 1.5.0", "requires php ^7"), rel("zed 1.0.0", "requires php ^8"),
			}),
			tag:  "php-8.2_zed",
			want: []string{"php 8.2.36", "zed 1.0.0"},
		},
		{
			name: "backtrack: a dependency of the newest candidate cannot be installed",
			releases: cat(phps, []catalog.Release{
				rel("app 2.0.0", "requires lib ^1"), rel("app 1.0.0"), rel("lib 1.0.0", "requires php ^7"),
			}),
			tag:  "app_php-8",
			want: []string{"app 1.0.0", "php 8.3.4"},
		},
		{
			name: "backtrack: conflict declared by a dependency",
			releases: cat(phps, []catalog.Release{
				rel("app 2.0.0", "requires lib ^1"), rel("app 1.0.0"), rel("lib 1.0.0", "conflicts php ^8"),
			}),
			tag:  "app_php-8",
			want: []string{"app 1.0.0", "php 8.3.4"},
		},
		{
			name:     "backtrack: a later requirement changes an earlier choice",
			releases: cat(phps, []catalog.Release{rel("zed 1.0.0", "requires php <8.3")}),
			tag:      "php_zed",
			want:     []string{"php 8.2.36", "zed 1.0.0"},
		},
		{
			name:     "backtrack: a later conflict changes an earlier choice",
			releases: cat(phps, []catalog.Release{rel("zapp 1.0.0", "conflicts php >=8.3")}),
			tag:      "php_zapp",
			want:     []string{"php 8.2.36", "zapp 1.0.0"},
		},
		{
			name: "backtrack: an older candidate is excluded by an earlier choice",
			releases: []catalog.Release{
				rel("a 2.0.0", "requires p !=2.0.0"), rel("a 1.0.0"),
				rel("p 3.0.0", "requires z ^9"), rel("p 2.0.0"),
			},
			tag:  "a_p",
			want: []string{"a 1.0.0", "p 2.0.0"},
		},
		{
			name: "backtrack: a requirement on a selected package that an earlier choice narrowed",
			releases: []catalog.Release{
				rel("a 2.0.0", "requires b <2"), rel("a 1.0.0"),
				rel("b 2.0.0"), rel("b 1.0.0"),
				rel("c 1.0.0", "requires b ^2"),
			},
			tag:  "a_b_c",
			want: []string{"a 1.0.0", "b 2.0.0", "c 1.0.0"},
		},
		{
			name: "backtrack: a conflict with every version of a package an earlier choice brought in",
			releases: []catalog.Release{
				rel("a 2.0.0", "requires q *"), rel("a 1.0.0"),
				rel("b 1.0.0", "requires p *"),
				rel("q 1.0.0"),
				rel("p 1.0.0", "conflicts q *"),
			},
			tag:  "a_b",
			want: []string{"a 1.0.0", "p 1.0.0", "b 1.0.0"},
		},
		{
			name: "backtrack two levels deep",
			releases: cat(phps, []catalog.Release{
				rel("app 2.0.0", "requires lib ^2"), rel("app 1.0.0", "requires lib ^1"),
				rel("lib 2.0.0", "requires php ^9"), rel("lib 1.0.0", "requires php ^8"),
			}),
			tag:  "app",
			want: []string{"php 8.3.4", "lib 1.0.0", "app 1.0.0"},
		},
		{
			name:     "transitive requirement nothing satisfies",
			releases: cat(phps, []catalog.Release{rel("app 1.0.0", "requires php ^9")}),
			tag:      "app",
			wantErr:  "no version of php satisfies ^9 (available: " + phpAvailable + "); required by app 1.0.0",
		},
		{
			name:     "transitive requirement on an unpublished package",
			releases: cat(phps, []catalog.Release{rel("app 1.0.0", "requires libx ^1")}),
			tag:      "app",
			wantErr:  "no version of libx satisfies ^1 (none published); required by app 1.0.0",
		},
		{
			name: "deep transitive requirement nothing satisfies",
			releases: cat(phps, []catalog.Release{
				rel("app 1.0.0", "requires lib ^2"), rel("lib 2.1.0", "requires php ^9"),
			}),
			tag:     "app",
			wantErr: "no version of php satisfies ^9 (available: " + phpAvailable + "); required by lib 2.1.0 (via app 1.0.0)",
		},
		{
			name:     "transitive requirement conflicts with the request",
			releases: cat(phps, []catalog.Release{rel("composer 2.8.0", "requires php >=8.3")}),
			tag:      "composer_php-8.2",
			wantErr:  "conflicting requirements for php: (1) requested php 8.2; (2) requested composer -> composer 2.8.0 requires php >=8.3",
		},
		{
			name:     "transitive requirement conflicts with an earlier selection",
			releases: cat(phps, []catalog.Release{rel("zed 1.0.0", "requires php ^7")}),
			tag:      "php-8.2_zed",
			wantErr:  "conflicting requirements for php: (1) requested php 8.2; (2) requested zed -> zed 1.0.0 requires php ^7",
		},
		{
			name: "two transitive requirements conflict",
			releases: cat(phps, []catalog.Release{
				rel("a 1.0.0", "requires php ^7"), rel("b 1.0.0", "requires php ^8"),
			}),
			tag:     "a_b",
			wantErr: "conflicting requirements for php: (1) requested a -> a 1.0.0 requires php ^7; (2) requested b -> b 1.0.0 requires php ^8",
		},
		{
			name: "requires cycle",
			releases: []catalog.Release{
				rel("a 1.0.0", "requires b ^1"), rel("b 1.0.0", "requires a ^1"), rel("c 1.0.0", "requires a ^1"),
			},
			tag:  "c",
			want: []string{"a 1.0.0", "b 1.0.0", "c 1.0.0"},
		},

		// Conflicts.
		{
			name:     "conflict of the newest candidate: older chosen",
			releases: cat(phps, []catalog.Release{rel("app 2.0.0", "conflicts php <8"), rel("app 1.0.0")}),
			tag:      "app_php-7",
			want:     []string{"app 1.0.0", "php 7.4.33"},
		},
		{
			name:     "conflict with an already selected package: older chosen",
			releases: cat(phps, []catalog.Release{rel("zapp 2.0.0", "conflicts php <8"), rel("zapp 1.0.0")}),
			tag:      "php-7_zapp",
			want:     []string{"php 7.4.33", "zapp 1.0.0"},
		},
		{
			name:     "conflict outside its range is no conflict",
			releases: cat(phps, []catalog.Release{rel("app 2.0.0", "conflicts php <8")}),
			tag:      "app_php-8",
			want:     []string{"app 2.0.0", "php 8.3.4"},
		},
		{
			name:     "conflict excludes the requested versions",
			releases: cat(phps, []catalog.Release{rel("app 1.0.0", "conflicts php <8")}),
			tag:      "app_php-7",
			wantErr:  "conflicting requirements for php: (1) requested app -> app 1.0.0 conflicts with php <8; (2) requested php 7",
		},
		{
			name:     "conflict with the selected version",
			releases: cat(phps, []catalog.Release{rel("zapp 1.0.0", "conflicts php <8")}),
			tag:      "php-7_zapp",
			wantErr:  "conflicting requirements for php: (1) requested zapp -> zapp 1.0.0 conflicts with php <8; (2) requested php 7 -> php 7.4.33 selected",
		},
		{
			name:     "conflict with a transitive choice: newer dependency avoided",
			releases: cat(phps, []catalog.Release{rel("app 1.0.0", "requires php >=7", "conflicts php >=8.3")}),
			tag:      "app",
			want:     []string{"php 8.2.36", "app 1.0.0"},
		},

		// Base packages.
		{
			name:     "base package first",
			releases: cat(phps, rels("base 11.0.0", "base 12.0.0")),
			tag:      "php-8.2",
			want:     []string{"base 12.0.0", "php 8.2.36"},
		},
		{name: "unpublished base package skipped", releases: phps, tag: "php-8.2", want: []string{"php 8.2.36"}},
		{
			name:     "base package also requested: both constraints hold",
			releases: cat(phps, rels("base 11.0.0", "base 12.0.0")),
			tag:      "base-11_php-8.2",
			want:     []string{"base 11.0.0", "php 8.2.36"},
		},
		{
			name:     "base packages in stack order",
			releases: cat(phps, rels("zbase 1.0.0", "abase 1.0.0")),
			stack:    stackWithBase("zbase", "abase", "missing"),
			tag:      "php",
			want:     []string{"zbase 1.0.0", "abase 1.0.0", "php 8.3.4"},
		},
		{
			name:     "base range and request disagree",
			releases: cat(phps, rels("base 11.0.0", "base 12.0.0")),
			stack:    stackWithBase("base ^12"),
			tag:      "base-11",
			wantErr:  "conflicting requirements for base: (1) stack env includes base ^12; (2) requested base 11",
		},
		{
			name:     "base range nothing satisfies",
			releases: cat(phps, rels("base 11.0.0")),
			stack:    stackWithBase("base ^12"),
			tag:      "php",
			wantErr:  "no version of base satisfies ^12 (available: 11.0.0)",
		},
		{name: "only base packages", releases: rels("base 12.0.0"), request: &resolver.Request{Stack: "env"}, want: []string{"base 12.0.0"}},
		{
			name:     "latest",
			releases: cat(phps, rels("nodejs 20.17.0", "nodejs 22.8.0")),
			stack: func() *catalog.Stack {
				st := catalog.DefaultStack()
				st.Latest = []catalog.Constraint{{Name: "php", Range: "^8"}, {Name: "node", Range: "*"}}
				return &st
			}(),
			tag:  "latest",
			want: []string{"nodejs 22.8.0", "php 8.3.4"},
		},

		// Layer order.
		{
			name: "dependencies first, ties by name",
			releases: []catalog.Release{
				rel("alpha 1.0.0", "requires zeta ^1"), rel("zeta 1.0.0"), rel("mid 1.0.0"),
			},
			tag:  "alpha_mid",
			want: []string{"mid 1.0.0", "zeta 1.0.0", "alpha 1.0.0"},
		},
		{
			name: "dependency chain",
			releases: []catalog.Release{
				rel("a 1.0.0", "requires b ^1"), rel("b 1.0.0", "requires c ^1"), rel("c 1.0.0"), rel("d 1.0.0", "requires c ^1"),
			},
			tag:  "a_d",
			want: []string{"c 1.0.0", "b 1.0.0", "a 1.0.0", "d 1.0.0"},
		},

		// Platforms and environment.
		{
			name:      "platforms intersect",
			releases:  []catalog.Release{rel("php 8.2.36"), rel("tool 1.0.0", "on linux/amd64", "on linux/arm/v7")},
			tag:       "php_tool",
			want:      []string{"php 8.2.36", "tool 1.0.0"},
			platforms: []string{"linux/amd64"},
		},
		{
			name:      "all platforms in common, sorted",
			releases:  []catalog.Release{rel("php 8.2.36", "on linux/arm64", "on linux/amd64", "on linux/arm/v7")},
			tag:       "php",
			want:      []string{"php 8.2.36"},
			platforms: []string{"linux/amd64", "linux/arm/v7", "linux/arm64"},
		},
		{
			name:     "no platform in common",
			releases: []catalog.Release{rel("base 1.0.0"), rel("php 8.2.36", "on linux/arm64"), rel("tool 1.0.0", "on linux/amd64")},
			tag:      "php_tool",
			wantErr:  "no platform is common to all selected packages: base 1.0.0 (linux/amd64, linux/arm64), php 8.2.36 (linux/arm64), tool 1.0.0 (linux/amd64)",
		},
		{
			name: "environment variable set twice",
			releases: []catalog.Release{
				rel("php 8.2.36", "env PHP_INI_DIR=/usr/local/etc/php", "env LANG=C"),
				rel("other 1.0.0", "env PHP_INI_DIR=/etc/php", "env LANG=C"),
			},
			tag:     "php_other",
			wantErr: `environment variable PHP_INI_DIR is set to "/etc/php" by other 1.0.0 and to "/usr/local/etc/php" by php 8.2.36`,
		},
		{
			name: "same value and PATH entries do not conflict",
			releases: []catalog.Release{
				rel("php 8.2.36", "env LANG=C", "path /usr/local/bin"),
				rel("other 1.0.0", "env LANG=C", "path /usr/local/bin"),
			},
			tag:  "php_other",
			want: []string{"other 1.0.0", "php 8.2.36"},
		},
		{
			name:     "layer limit",
			releases: cat(phps, rels("base 12.0.0", "tool 1.0.0")),
			stack:    &limited,
			tag:      "php_tool",
			wantErr:  "too many layers: 3 packages selected, stack env allows 2 layers",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.run(t)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve = %v, want error %q", ids(res), tc.wantErr)
				}
				if got := err.Error(); got != tc.wantErr {
					t.Fatalf("Resolve error\n got: %s\nwant: %s", got, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := ids(res); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve = %q, want %q", got, tc.want)
			}
			if tc.platforms != nil {
				var got []string
				for _, p := range res.Platforms {
					got = append(got, p.String())
				}
				if !reflect.DeepEqual(got, tc.platforms) {
					t.Errorf("Platforms = %q, want %q", got, tc.platforms)
				}
			}
		})
	}
}

func TestResolveDeterministic(t *testing.T) {
	releases := cat(phps, rels("base 12.0.0", "nodejs 20.17.0", "nodejs 22.8.0"), []catalog.Release{
		rel("composer 2.8.0", "requires php >=8.3"), rel("composer 2.7.0", "requires php >=8.1"),
		rel("ext 1.0.0", "requires php ^8", "requires composer ^2"), rel("gm 1.3.0", "env MAGICK=1"),
		rel("zz 1.0.0", "requires ext ^1", "requires gm ^1"),
	})
	tc := resolveCase{releases: releases, tag: "zz_php-8.2_node-20_composer"}
	first, err := tc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	// Same input in another order, resolved again.
	for i, j := 0, len(tc.releases)-1; i < j; i, j = i+1, j-1 {
		tc.releases[i], tc.releases[j] = tc.releases[j], tc.releases[i]
	}
	tc.tag = "node-20_composer_php-8.2_zz"
	second, err := tc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("two resolutions differ:\n%v\n%v", ids(first), ids(second))
	}
	want := []string{"base 12.0.0", "gm 1.3.0", "nodejs 20.17.0", "php 8.2.36", "composer 2.7.0", "ext 1.0.0", "zz 1.0.0"}
	if got := ids(first); !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %q, want %q", got, want)
	}
	if got, want := first.Request.Key(), "env:composer@*,nodejs@20,php@8.2,zz@*"; got != want {
		t.Errorf("Resolution.Request.Key() = %q, want %q", got, want)
	}
	if first.Stack.Name != "env" {
		t.Errorf("Resolution.Stack.Name = %q, want env", first.Stack.Name)
	}
}

// TestResolveErrorTypes checks that each failure is a typed error with its
// facts, reachable with errors.As and errors.Is through wrapping.
func TestResolveErrorTypes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("resolving: %w", err) }

	_, err := resolveCase{releases: cat(phps, []catalog.Release{rel("app 1.0.0", "requires lib ^2"), rel("lib 2.1.0", "requires php ^9")}), tag: "app"}.run(t)
	var unsat *resolver.UnsatisfiableError
	if !errors.As(wrap(err), &unsat) {
		t.Fatalf("error %v is not an *UnsatisfiableError", err)
	}
	want := &resolver.UnsatisfiableError{
		Package: "php", Constraint: "^9",
		Available: strings.Split(phpAvailable, ", "),
		Chain:     []string{"app 1.0.0 requires lib ^2", "lib 2.1.0 requires php ^9"},
	}
	if !reflect.DeepEqual(unsat, want) {
		t.Errorf("UnsatisfiableError = %#v, want %#v", unsat, want)
	}

	_, err = resolveCase{releases: cat(phps, []catalog.Release{rel("composer 2.8.0", "requires php >=8.3")}), tag: "composer_php-8.2"}.run(t)
	var conflict *resolver.ConflictError
	if !errors.As(wrap(err), &conflict) {
		t.Fatalf("error %v is not a *ConflictError", err)
	}
	wantConflict := &resolver.ConflictError{Package: "php", Chains: [2][]string{
		{"requested php 8.2"},
		{"requested composer", "composer 2.8.0 requires php >=8.3"},
	}}
	if !reflect.DeepEqual(conflict, wantConflict) {
		t.Errorf("ConflictError = %#v, want %#v", conflict, wantConflict)
	}

	_, err = resolveCase{releases: []catalog.Release{rel("php 8.2.36", "on linux/arm64"), rel("tool 1.0.0", "on linux/amd64")}, tag: "php_tool"}.run(t)
	var noPlatform *resolver.NoPlatformError
	if !errors.As(wrap(err), &noPlatform) {
		t.Fatalf("error %v is not a *NoPlatformError", err)
	}
	wantNoPlatform := &resolver.NoPlatformError{Releases: []resolver.ReleasePlatforms{
		{Release: "php 8.2.36", Platforms: []string{"linux/arm64"}},
		{Release: "tool 1.0.0", Platforms: []string{"linux/amd64"}},
	}}
	if !reflect.DeepEqual(noPlatform, wantNoPlatform) {
		t.Errorf("NoPlatformError = %#v, want %#v", noPlatform, wantNoPlatform)
	}

	_, err = resolveCase{releases: []catalog.Release{rel("a 1.0.0", "env X=1"), rel("b 1.0.0", "env X=2")}, tag: "a_b"}.run(t)
	var envConflict *resolver.EnvConflictError
	if !errors.As(wrap(err), &envConflict) {
		t.Fatalf("error %v is not an *EnvConflictError", err)
	}
	wantEnv := &resolver.EnvConflictError{Variable: "X", Packages: [2]string{"a 1.0.0", "b 1.0.0"}, Values: [2]string{"1", "2"}}
	if !reflect.DeepEqual(envConflict, wantEnv) {
		t.Errorf("EnvConflictError = %#v, want %#v", envConflict, wantEnv)
	}

	limited := catalog.DefaultStack()
	limited.MaxLayers = 1
	_, err = resolveCase{releases: rels("a 1.0.0", "b 1.0.0"), stack: &limited, tag: "a_b"}.run(t)
	if !errors.Is(wrap(err), resolver.ErrTooManyLayers) {
		t.Errorf("error %v is not ErrTooManyLayers", err)
	}
}

func TestResolveEmpty(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "empty request, no base published", releases: phps, request: &resolver.Request{Stack: "env"}},
		{name: "latest of a stack without latest", releases: phps, tag: "latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.run(t)
			if !errors.Is(err, resolver.ErrEmpty) {
				t.Fatalf("Resolve error = %v, want ErrEmpty", err)
			}
			if got, want := err.Error(), "nothing to compose: the request names no package and stack env has no published base package"; got != want {
				t.Errorf("error = %q, want %q", got, want)
			}
		})
	}
}

func TestResolveWrongStack(t *testing.T) {
	_, err := resolveCase{releases: phps, request: &resolver.Request{Stack: "other"}}.run(t)
	if err == nil {
		t.Fatal("Resolve of a request for another stack succeeded")
	}
}

// independent returns n packages p01..pNN with two versions each and no
// requirements: a search that backtracks through them blindly takes 2^n steps.
func independent(n int, opts ...string) ([]catalog.Release, []string) {
	var out []catalog.Release
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("p%02d", i)
		names = append(names, name)
		out = append(out, rel(name+" 2.0.0", opts...), rel(name+" 1.0.0", opts...))
	}
	return out, names
}

// TestResolveBackjump requests 20 unrelated packages and an impossible
// pair decided after all of them. Plain backtracking would try 2^20
// combinations; backjumping goes straight back to the culprit.
func TestResolveBackjump(t *testing.T) {
	releases, names := independent(20)
	releases = append(releases, phps...)
	releases = append(releases, rel("zed 2.0.0", "requires php ^7"), rel("zed 1.0.0", "requires php ^7"))
	tag := strings.Join(names, "_") + "_php-8_zed"
	_, err := resolveCase{releases: releases, tag: tag}.run(t)
	want := "conflicting requirements for php: (1) requested php 8; (2) requested zed -> zed 2.0.0 requires php ^7"
	if err == nil || err.Error() != want {
		t.Fatalf("Resolve error = %v, want %s", err, want)
	}
}

// TestResolveTooComplex builds a problem where every one of 20 choices
// takes part in the failure, so even backjumping must try 2^20
// combinations, and checks that the search stops.
func TestResolveTooComplex(t *testing.T) {
	var releases []catalog.Release
	var names []string
	for i := 1; i <= 20; i++ {
		// Both versions of p<i> exclude z i.0.0; z has 20 versions: every
		// version of z is excluded by exactly one p, whatever is chosen.
		name := fmt.Sprintf("p%02d", i)
		names = append(names, name)
		for _, v := range []string{"2.0.0", "1.0.0"} {
			releases = append(releases, rel(name+" "+v, fmt.Sprintf("requires z !=%d.0.0", i)))
		}
		releases = append(releases, rel(fmt.Sprintf("z %d.0.0", i)))
	}
	_, err := resolveCase{releases: releases, tag: strings.Join(names, "_") + "_z"}.run(t)
	if !errors.Is(err, resolver.ErrTooComplex) {
		t.Fatalf("Resolve error = %v, want ErrTooComplex", err)
	}
}

// randomCatalog publishes releases of names[:published] at some of
// versions, each requiring up to two random packages (possibly
// unpublished, possibly itself) and sometimes conflicting with one, and a
// request for one to three packages.
func randomCatalog(rnd *rand.Rand, names []string, published int, versions, ranges []string) (*catalog.Snapshot, resolver.Request) {
	pick := func(list []string) string { return list[rnd.IntN(len(list))] }
	var releases []catalog.Release
	for _, name := range names[:published] {
		for _, v := range versions {
			if rnd.IntN(3) == 0 {
				continue
			}
			var opts []string
			for range rnd.IntN(3) {
				opts = append(opts, "requires "+pick(names)+" "+pick(ranges))
			}
			if rnd.IntN(4) == 0 {
				opts = append(opts, "conflicts "+pick(names)+" "+pick(ranges))
			}
			releases = append(releases, rel(name+" "+v, opts...))
		}
	}
	var reqs []resolver.Requirement
	seen := map[string]bool{}
	for range 1 + rnd.IntN(3) {
		name, rng := pick(names), pick(ranges)
		if !seen[name] {
			seen[name] = true
			reqs = append(reqs, resolver.Requirement{Name: name, Range: mustRange(rng), Spelling: rng})
		}
	}
	req, err := resolver.NewRequest("env", reqs)
	if err != nil {
		panic(err)
	}
	return catalog.NewSnapshot(1, releases, nil), req
}

// TestResolveAgainstBruteForce resolves many small random catalogs and
// checks every answer against two oracles: trying every combination of
// versions (is there a solution at all?) and plain backtracking (which
// one?). A Resolution must be exactly what plain backtracking chooses,
// satisfy every requirement and conflict, and contain only required
// packages; an explained failure must mean that nothing works.
func TestResolveAgainstBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e", "f"} // f is never published
	versions := []string{"1.0.0", "1.1.0", "2.0.0", "3.0.0"}
	ranges := []string{"^1", "^2", ">=1.1", "<2", "*", "~1.0", "^3", "!=2.0.0"}
	solved, failed := 0, 0
	for n := range 2000 {
		snap, req := randomCatalog(rnd, names, 5, versions, ranges)
		exists := bruteForce(snap, names, req)
		reference, _ := backtrack(snap, req, 0)
		if (exists == nil) != (reference == nil) {
			t.Fatalf("case %d: request %s: brute force found %q, plain backtracking %q", n, req.Key(), exists, reference)
		}
		if checkAgainst(t, n, snap, req, reference) {
			solved++
		} else {
			failed++
		}
	}
	if solved < 200 || failed < 200 {
		t.Errorf("solved %d and failed %d cases: the generator does not exercise both outcomes", solved, failed)
	}
}

// TestResolveAgainstBacktracking does the same on larger catalogs, with
// plain backtracking as the only oracle (cases it cannot finish quickly
// are skipped).
func TestResolveAgainstBacktracking(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} // i is never published
	versions := []string{"0.9.0", "1.0.0", "1.0.1", "1.1.0", "1.2.0-rc1", "1.2.0", "2.0.0", "2.1.0", "3.0.0"}
	ranges := []string{"^1", "^2", ">=1.1", "<2", "*", "~1.0", "^3", "!=2.0.0", "1.2.0-rc1", ">=1.2.0-0 <2", "^0.9"}
	solved, failed := 0, 0
	for n := range 1000 {
		snap, req := randomCatalog(rnd, names, 8, versions, ranges)
		reference, ok := backtrack(snap, req, 20_000)
		if !ok {
			continue
		}
		if checkAgainst(t, n, snap, req, reference) {
			solved++
		} else {
			failed++
		}
	}
	if solved < 100 || failed < 100 {
		t.Errorf("solved %d and failed %d cases: the generator does not exercise both outcomes", solved, failed)
	}
}

// checkAgainst resolves req and compares with the reference answer (nil:
// no solution). It reports whether Resolve found a solution.
func checkAgainst(t *testing.T, n int, snap *catalog.Snapshot, req resolver.Request, reference []string) bool {
	t.Helper()
	res, err := resolver.Resolve(snap, catalog.DefaultStack(), req)
	var unsat *resolver.UnsatisfiableError
	var conflict *resolver.ConflictError
	switch {
	case err == nil:
		if got := slices.Sorted(slices.Values(ids(res))); !reflect.DeepEqual(got, reference) {
			t.Fatalf("case %d: request %s: Resolve = %q, plain backtracking chose %q", n, req.Key(), got, reference)
		}
		if msg := checkResolution(snap, req, res); msg != "" {
			for _, r := range res.Releases {
				t.Logf("%s requires %v conflicts %v", r.ID(), r.Requires, r.Conflicts)
			}
			t.Fatalf("case %d: request %s: Resolve = %q: %s", n, req.Key(), ids(res), msg)
		}
		return true
	case errors.As(err, &unsat) || errors.As(err, &conflict):
		if reference != nil {
			t.Fatalf("case %d: request %s: Resolve failed (%v) but %q is a solution", n, req.Key(), err, reference)
		}
		return false
	default:
		t.Fatalf("case %d: request %s: unexpected error %v", n, req.Key(), err)
		return false
	}
}

// checkResolution returns what is wrong with res, or "".
func checkResolution(snap *catalog.Snapshot, req resolver.Request, res *resolver.Resolution) string {
	sel := map[string]catalog.Release{}
	for _, r := range res.Releases {
		if _, dup := sel[r.Name]; dup {
			return "package selected twice: " + r.Name
		}
		sel[r.Name] = r
	}
	if msg := valid(sel, req); msg != "" {
		return msg
	}
	// Exactly the closure of the request: nothing unrequired.
	reached := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if reached[name] {
			return
		}
		reached[name] = true
		for _, c := range sel[name].Requires {
			visit(c.Name)
		}
	}
	for _, r := range req.Requirements {
		visit(r.Name)
	}
	if len(reached) != len(sel) {
		return fmt.Sprintf("selected %d packages, %d are required", len(sel), len(reached))
	}
	// Layer order: a package after those it requires, except within a
	// requires-cycle, which is broken by name.
	reaches := func(from, to string) bool {
		seen := map[string]bool{}
		var walk func(n string) bool
		walk = func(n string) bool {
			if n == to {
				return true
			}
			if seen[n] {
				return false
			}
			seen[n] = true
			return slices.ContainsFunc(sel[n].Requires, func(c catalog.Constraint) bool { return walk(c.Name) })
		}
		return walk(from)
	}
	pos := map[string]int{}
	for i, r := range res.Releases {
		pos[r.Name] = i
	}
	for _, r := range res.Releases {
		for _, c := range r.Requires {
			if c.Name != r.Name && pos[c.Name] > pos[r.Name] && !reaches(c.Name, r.Name) {
				return fmt.Sprintf("%s is layered before %s, which it requires", r.ID(), c.Name)
			}
		}
	}
	return ""
}

// valid checks a selection against the request and every requirement and
// conflict of the selected releases.
func valid(sel map[string]catalog.Release, req resolver.Request) string {
	for _, r := range req.Requirements {
		got, ok := sel[r.Name]
		if !ok || !r.Range.Check(got.Version) {
			return "request not satisfied: " + r.String()
		}
	}
	for _, r := range sel {
		for _, c := range r.Requires {
			got, ok := sel[c.Name]
			if !ok || !mustRange(c.Range).Check(got.Version) {
				return r.ID() + " requires " + c.String()
			}
		}
		for _, c := range r.Conflicts {
			if got, ok := sel[c.Name]; ok && c.Name != r.Name && mustRange(c.Range).Check(got.Version) {
				return r.ID() + " conflicts with " + c.String()
			}
		}
	}
	return ""
}

// bruteForce tries every combination of versions (or absence) of the named
// packages and returns the IDs of one that is valid, or nil.
func bruteForce(snap *catalog.Snapshot, names []string, req resolver.Request) []string {
	sel := map[string]catalog.Release{}
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(names) {
			return valid(sel, req) == ""
		}
		if try(i + 1) { // absent
			return true
		}
		for _, r := range snap.Releases(names[i]) {
			sel[names[i]] = r
			if try(i + 1) {
				return true
			}
		}
		delete(sel, names[i])
		return false
	}
	if !try(0) {
		return nil
	}
	var out []string
	for _, r := range sel {
		out = append(out, r.ID())
	}
	slices.Sort(out)
	return out
}

// TestResolveFailsFast checks that a conflict at the end of a requires
// chain is explained, not lost in the search: every version of every
// package in the chain leads to the same conflict, which must be learnt
// once rather than retried for each combination (100^4 of them).
func TestResolveFailsFast(t *testing.T) {
	var releases []catalog.Release
	for i := range 5 {
		var opts []string
		if i < 4 {
			opts = append(opts, fmt.Sprintf("requires p%d ^10", i+1))
		}
		for v := range 100 {
			releases = append(releases, rel(fmt.Sprintf("p%d %d.%d.0", i, 1+v/10, v%10), opts...))
		}
	}
	_, err := resolveCase{releases: releases, tag: "p0_p4-1"}.run(t)
	want := "conflicting requirements for p4: (1) requested p4 1; (2) requested p0 -> p0 10.9.0 requires p1 ^10 -> p1 10.9.0 requires p2 ^10 -> p2 10.9.0 requires p3 ^10 -> p3 10.9.0 requires p4 ^10"
	if err == nil || err.Error() != want {
		t.Fatalf("Resolve error = %v\nwant %s", err, want)
	}
}

// backtrack is a reference resolver: plain chronological backtracking,
// newest first, deciding packages in the same agenda order as Resolve
// (requested by name, then in the order releases require them). Resolve
// must choose exactly what it chooses. It returns sorted release IDs, or
// nil; ok is false if it tried more than limit (> 0) candidates.
func backtrack(snap *catalog.Snapshot, req resolver.Request, limit int) (ids []string, ok bool) {
	steps := 0
	type state struct {
		agenda  []string
		sel     map[string]catalog.Release
		reqs    map[string][]*semver.Constraints
		forbids map[string][]*semver.Constraints
	}
	var try func(st state, i int) []string
	try = func(st state, i int) []string {
		if i == len(st.agenda) {
			var out []string
			for _, r := range st.sel {
				out = append(out, r.ID())
			}
			slices.Sort(out)
			return out
		}
		name := st.agenda[i]
	candidates:
		for _, r := range snap.Releases(name) {
			if steps++; limit > 0 && steps > limit {
				return nil
			}
			for _, c := range st.reqs[name] {
				if !c.Check(r.Version) {
					continue candidates
				}
			}
			for _, c := range st.forbids[name] {
				if c.Check(r.Version) {
					continue candidates
				}
			}
			next := state{
				agenda:  slices.Clone(st.agenda),
				sel:     maps.Clone(st.sel),
				reqs:    maps.Clone(st.reqs),
				forbids: maps.Clone(st.forbids),
			}
			next.sel[name] = r
			for _, c := range r.Conflicts {
				if got, ok := next.sel[c.Name]; ok && c.Name != name && mustRange(c.Range).Check(got.Version) {
					continue candidates
				}
				next.forbids[c.Name] = append(slices.Clone(next.forbids[c.Name]), mustRange(c.Range))
			}
			for _, c := range r.Requires {
				if got, ok := next.sel[c.Name]; ok && !mustRange(c.Range).Check(got.Version) {
					continue candidates
				}
				if !slices.Contains(next.agenda, c.Name) {
					next.agenda = append(next.agenda, c.Name)
				}
				next.reqs[c.Name] = append(slices.Clone(next.reqs[c.Name]), mustRange(c.Range))
			}
			if out := try(next, i+1); out != nil {
				return out
			}
		}
		return nil
	}
	st := state{sel: map[string]catalog.Release{}, reqs: map[string][]*semver.Constraints{}, forbids: map[string][]*semver.Constraints{}}
	for _, r := range req.Requirements {
		st.agenda = append(st.agenda, r.Name)
		st.reqs[r.Name] = []*semver.Constraints{r.Range}
	}
	ids = try(st, 0)
	return ids, limit <= 0 || steps <= limit
}
