package resolver_test

import (
	"slices"
	"testing"

	"github.com/envreg/envreg/catalog"
)

// yank returns releases with the given IDs marked yanked.
func yank(in []catalog.Release, ids ...string) []catalog.Release {
	out := slices.Clone(in)
	for i := range out {
		if slices.Contains(ids, out[i].ID()) {
			out[i].Yanked = true
		}
	}
	return out
}

func TestResolveSkipsYanked(t *testing.T) {
	base := rels("base 12.0.0")
	for _, tc := range []resolveCase{
		{name: "newest patch yanked: the one before wins", releases: cat(base, yank(phps, "php 8.2.36")),
			tag: "php-8.2", want: []string{"base 12.0.0", "php 8.2.32"}},
		{name: "not yanked: newest", releases: cat(base, phps),
			tag: "php-8.2", want: []string{"base 12.0.0", "php 8.2.36"}},
		{name: "exact pin on a yanked version", releases: cat(base, yank(phps, "php 8.2.36")),
			tag:     "php-8.2.36",
			wantErr: "no version of php satisfies 8.2.36 (available: 7.4.30, 7.4.33, 8.1.27, 8.2.32, 8.3.4, 8.4.0-rc1); yanked: 8.2.36"},
		{name: "every version yanked", releases: cat(base, yank(rels("gm 1.3.40", "gm 1.3.42"), "gm 1.3.40", "gm 1.3.42")),
			tag:     "gm",
			wantErr: "no version of gm satisfies * (every version is yanked: 1.3.40, 1.3.42)"},
		{name: "a requirement skips a yanked dependency", releases: cat(base, yank(phps, "php 8.3.4"), rels("app 1.0.0"),
			[]catalog.Release{rel("composer 2.7.0", "requires php >=8.2")}),
			tag: "composer", want: []string{"base 12.0.0", "php 8.2.36", "composer 2.7.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.run(t)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !slices.Equal(got, tc.want) {
				t.Fatalf("resolved %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPackageAliases(t *testing.T) {
	withAlias := func(r catalog.Release, aliases ...string) catalog.Release {
		r.Aliases = aliases
		return r
	}
	releases := cat(rels("base 12.0.0"),
		[]catalog.Release{withAlias(rel("tool 1.4.2"), "tl"), withAlias(rel("other 1.0.0"), "ot", "dup"),
			withAlias(rel("third 2.0.0"), "dup"), withAlias(rel("shadow 1.0.0"), "base")})
	for _, tc := range []resolveCase{
		{name: "a package alias resolves", releases: releases, tag: "tl-1.4", want: []string{"base 12.0.0", "tool 1.4.2"}},
		{name: "in a stack created later too", releases: releases, stack: &catalog.Stack{Name: "web"},
			tag: "tl", want: []string{"tool 1.4.2"}},
		{name: "the stack's own alias wins", releases: releases,
			stack: &catalog.Stack{Name: "web", Aliases: map[string]string{"tl": "other"}},
			tag:   "tl", want: []string{"other 1.0.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.run(t)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !slices.Equal(got, tc.want) {
				t.Fatalf("resolved %v, want %v", got, tc.want)
			}
		})
	}
	snap := catalog.NewSnapshot(1, releases, nil)
	got := snap.PackageAliases()
	if got["tl"] != "tool" || got["ot"] != "other" || len(got) != 2 {
		t.Fatalf("package aliases %v: want tl and ot only (dup is ambiguous, base is a package name)", got)
	}
}
