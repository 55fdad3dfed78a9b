package resolver_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// tagSnapshot publishes php, nodejs, graphicsmagick, base, foo and foo-bar;
// its stack aliases node and gm, and js -> javascript (not published).
func tagSnapshot() (*catalog.Snapshot, catalog.Stack) {
	st := catalog.DefaultStack()
	st.Aliases["js"] = "javascript"
	st.Latest = []catalog.Constraint{{Name: "php", Range: "^8"}, {Name: "node", Range: "*"}}
	snap := catalog.NewSnapshot(1, rels(
		"php 8.2.36", "nodejs 20.17.0", "graphicsmagick 1.3.45", "base 12.0.0", "foo 1.0.0", "foo-bar 1.2.0",
	), []catalog.Stack{st})
	return snap, st
}

const knownNames = "base, foo, foo-bar, gm, graphicsmagick, node, nodejs, php"

func TestParseTag(t *testing.T) {
	snap, st := tagSnapshot()
	names := resolver.StackNames(snap, st)
	long := "php-8.3.0-" + strings.Repeat("x", resolver.MaxTagLength-len("php-8.3.0-"))

	for _, tc := range []struct {
		tag     string
		want    string // Request.Key()
		latest  bool
		wantErr string
	}{
		{tag: "php-8.2", want: "env:php@8.2"},
		{tag: "php-8", want: "env:php@8"},
		{tag: "php-8.2.36", want: "env:php@8.2.36"},
		{tag: "php-0", want: "env:php@0"},
		{tag: "php-8.3.0-rc1", want: "env:php@8.3.0-rc1"},
		{tag: "php-8.3.0-rc.1", want: "env:php@8.3.0-rc.1"},
		{tag: "php-8.3.0-rc-1", want: "env:php@8.3.0-rc-1"},
		{tag: "php", want: "env:php@*"},
		{tag: "php-8.2_node-20", want: "env:nodejs@20,php@8.2"},
		{tag: "node-20_php-8.2", want: "env:nodejs@20,php@8.2"},
		{tag: "nodejs-20_php-8.2", want: "env:nodejs@20,php@8.2"},
		{tag: "gm_php", want: "env:graphicsmagick@*,php@*"},
		{tag: "base-12_php", want: "env:base@12,php@*"},
		{tag: "foo-bar-1.2", want: "env:foo-bar@1.2"},
		{tag: "foo-bar", want: "env:foo-bar@*"},
		{tag: "foo-1", want: "env:foo@1"},
		{tag: "foo_foo-bar-1", want: "env:foo@*,foo-bar@1"},
		{tag: "latest", want: "env:latest=nodejs@*,php@^8", latest: true},
		{tag: long, want: "env:php@" + long[len("php-"):]},

		{tag: "", wantErr: `invalid tag "": empty tag`},
		{tag: long + "x", wantErr: fmt.Sprintf("invalid tag %q: 129 characters long, the limit is 128", long+"x")},
		{tag: "-php", wantErr: `invalid tag "-php": starts with '-'; a tag starts with a letter, digit or '_'`},
		{tag: ".php", wantErr: `invalid tag ".php": starts with '.'; a tag starts with a letter, digit or '_'`},
		{tag: "php/8", wantErr: `invalid tag "php/8": invalid character '/' at offset 3; a tag may contain letters, digits, '_', '.' and '-'`},
		{tag: "php-8.2__node", wantErr: `invalid tag "php-8.2__node": empty component`},
		{tag: "_php", wantErr: `invalid tag "_php": empty component`},
		{tag: "php_", wantErr: `invalid tag "php_": empty component`},
		{tag: "php_-8", wantErr: `invalid tag "php_-8": component "-8" has no package name`},
		{tag: "php-8.x", wantErr: `invalid tag "php-8.x": bad version "8.x" for php in "php-8.x": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-abc", wantErr: `invalid tag "php-abc": bad version "abc" for php in "php-abc": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-", wantErr: `invalid tag "php-": bad version "" for php in "php-": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-08", wantErr: `invalid tag "php-08": bad version "08" for php in "php-08": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-8.2.3.4", wantErr: `invalid tag "php-8.2.3.4": bad version "8.2.3.4" for php in "php-8.2.3.4": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-8.3-rc1", wantErr: `invalid tag "php-8.3-rc1": bad version "8.3-rc1" for php in "php-8.3-rc1": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-8.3.0-01", wantErr: `invalid tag "php-8.3.0-01": bad version "8.3.0-01" for php in "php-8.3.0-01": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-v8", wantErr: `invalid tag "php-v8": bad version "v8" for php in "php-v8": want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]`},
		{tag: "php-99999999999999999999", wantErr: `invalid tag "php-99999999999999999999": bad version "99999999999999999999" for php in "php-99999999999999999999": `},
		{tag: "node-20_nodejs-18", wantErr: `invalid tag "node-20_nodejs-18": nodejs is requested twice ("node-20" and "nodejs-18")`},
		{tag: "php-8_node_php-7", wantErr: `invalid tag "php-8_node_php-7": php is requested twice ("php-8" and "php-7")`},
		{tag: "ruby-3_php-8.2", wantErr: `unknown package "ruby" in tag "ruby-3_php-8.2" (known packages: ` + knownNames + ")"},
		{tag: "php_ruby", wantErr: `unknown package "ruby" in tag "php_ruby" (known packages: ` + knownNames + ")"},
		{tag: "ruby-on-rails-7.1", wantErr: `unknown package "ruby-on-rails" in tag "ruby-on-rails-7.1" (known packages: ` + knownNames + ")"},
		{tag: "js-1", wantErr: `unknown package "js" in tag "js-1" (known packages: ` + knownNames + ")"},
		{tag: "PHP-8", wantErr: `unknown package "PHP" in tag "PHP-8" (known packages: ` + knownNames + ")"},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			req, err := resolver.ParseTag(tc.tag, st, names)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseTag = %s, want error %q", req.Key(), tc.wantErr)
				}
				if got := err.Error(); !strings.HasPrefix(got, tc.wantErr) || (!strings.HasSuffix(tc.wantErr, ": ") && got != tc.wantErr) {
					t.Fatalf("ParseTag error\n got: %s\nwant: %s", got, tc.wantErr)
				}
				var tagErr *resolver.TagError
				unknown := errors.Is(err, resolver.ErrUnknownPackage)
				if isTagErr := errors.As(err, &tagErr); isTagErr == unknown {
					t.Errorf("ParseTag error %v: *TagError %v, ErrUnknownPackage %v; want exactly one", err, isTagErr, unknown)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTag: %v", err)
			}
			if got := req.Key(); got != tc.want {
				t.Errorf("Key() = %q, want %q", got, tc.want)
			}
			if req.Latest != tc.latest {
				t.Errorf("Latest = %v, want %v", req.Latest, tc.latest)
			}
			if req.Stack != "env" {
				t.Errorf("Stack = %q, want env", req.Stack)
			}
		})
	}
}

// TestParseTagRanges checks what each tag version matches.
func TestParseTagRanges(t *testing.T) {
	snap, st := tagSnapshot()
	names := resolver.StackNames(snap, st)
	for _, tc := range []struct {
		tag          string
		match, no    []string
		wantSpelling string
	}{
		{tag: "php-8", match: []string{"8.0.0", "8.2.36", "8.99.1"}, no: []string{"7.4.33", "9.0.0", "8.3.0-rc1"}, wantSpelling: "8"},
		{tag: "php-8.2", match: []string{"8.2.0", "8.2.36"}, no: []string{"8.1.27", "8.3.0", "8.2.37-rc1"}, wantSpelling: "8.2"},
		{tag: "php-8.2.36", match: []string{"8.2.36"}, no: []string{"8.2.35", "8.2.37", "8.2.36-rc1"}, wantSpelling: "8.2.36"},
		{tag: "php-8.3.0-rc1", match: []string{"8.3.0-rc1"}, no: []string{"8.3.0", "8.3.0-rc2", "8.2.36"}, wantSpelling: "8.3.0-rc1"},
		{tag: "php", match: []string{"0.1.0", "8.2.36", "100.0.0"}, no: []string{"8.3.0-rc1"}, wantSpelling: "*"},
		{tag: "php-0", match: []string{"0.0.1", "0.9.0"}, no: []string{"1.0.0"}, wantSpelling: "0"},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			req, err := resolver.ParseTag(tc.tag, st, names)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Requirements) != 1 {
				t.Fatalf("Requirements = %v, want one", req.Requirements)
			}
			r := req.Requirements[0]
			if r.Name != "php" || r.Spelling != tc.wantSpelling {
				t.Errorf("Requirement = %s %q, want php %q", r.Name, r.Spelling, tc.wantSpelling)
			}
			for _, v := range tc.match {
				if !r.Range.Check(semver.MustParse(v)) {
					t.Errorf("%s does not match %s", tc.tag, v)
				}
			}
			for _, v := range tc.no {
				if r.Range.Check(semver.MustParse(v)) {
					t.Errorf("%s matches %s", tc.tag, v)
				}
			}
		})
	}
}

// TestParseTagSplit checks that the known names decide where the version
// starts when names contain '-'.
func TestParseTagSplit(t *testing.T) {
	st := catalog.DefaultStack()
	snap := catalog.NewSnapshot(1, rels("lib 1.0.0", "lib-2 1.0.0", "x-1-y 1.0.0"), nil)
	names := resolver.StackNames(snap, st)
	for tag, want := range map[string]string{
		"lib-2":       "env:lib@2", // the split wins over the whole component
		"lib-2-1.0":   "env:lib-2@1.0",
		"lib-2-1":     "env:lib-2@1",
		"x-1-y":       "env:x-1-y@*", // "y" is no version, so no split
		"x-1-y-3.1.4": "env:x-1-y@3.1.4",
	} {
		req, err := resolver.ParseTag(tag, st, names)
		if err != nil {
			t.Errorf("ParseTag(%q): %v", tag, err)
			continue
		}
		if got := req.Key(); got != want {
			t.Errorf("ParseTag(%q).Key() = %q, want %q", tag, got, want)
		}
	}
}

func TestUnknownPackageFacts(t *testing.T) {
	snap, st := tagSnapshot()
	_, err := resolver.ParseTag("ruby-3_php-8.2", st, resolver.StackNames(snap, st))
	var unknown *resolver.UnknownPackageError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &unknown) {
		t.Fatalf("error %v is not an *UnknownPackageError", err)
	}
	want := &resolver.UnknownPackageError{
		Package: "ruby", Tag: "ruby-3_php-8.2", Component: "ruby-3",
		Known: strings.Split(knownNames, ", "),
	}
	if !reflect.DeepEqual(unknown, want) {
		t.Errorf("UnknownPackageError = %#v, want %#v", unknown, want)
	}

	// More than 20 names: none listed.
	var many []string
	for i := range 21 {
		many = append(many, fmt.Sprintf("p%02d 1.0.0", i))
	}
	st = catalog.Stack{Name: "bare"}
	snap = catalog.NewSnapshot(1, rels(many...), []catalog.Stack{st})
	_, err = resolver.ParseTag("ruby", st, resolver.StackNames(snap, st))
	if got, want := fmt.Sprint(err), `unknown package "ruby" in tag "ruby"`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestStackNames(t *testing.T) {
	st := catalog.DefaultStack()
	st.Aliases["php"] = "php-fpm" // an alias wins over a published name…
	st.Aliases["js"] = "javascript"
	snap := catalog.NewSnapshot(1, rels("php 8.2.36", "php-fpm 8.2.36", "nodejs 20.17.0", "gm 1.0.0"), nil)
	names := resolver.StackNames(snap, st)
	for name, want := range map[string]string{
		"php":     "php-fpm",
		"php-fpm": "php-fpm",
		"node":    "nodejs",
		"nodejs":  "nodejs",
		"gm":      "gm", // …but only when its target is published
		"js":      "",
		"ruby":    "",
	} {
		got, ok := names.Canonical(name)
		if ok != (want != "") || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestRequestKey(t *testing.T) {
	snap, st := tagSnapshot()
	names := resolver.StackNames(snap, st)
	key := func(tag string) string {
		t.Helper()
		req, err := resolver.ParseTag(tag, st, names)
		if err != nil {
			t.Fatal(err)
		}
		return req.Key()
	}
	same := []string{"node-20_php-8.2", "php-8.2_node-20", "nodejs-20_php-8.2", "php-8.2_nodejs-20"}
	for _, tag := range same[1:] {
		if key(tag) != key(same[0]) {
			t.Errorf("Key(%s) = %q, Key(%s) = %q; want equal", tag, key(tag), same[0], key(same[0]))
		}
	}
	distinct := []string{"php-8.2", "php-8", "php-8.2.0", "php", "php_node", "php-8.2_node", "node", "latest", "base"}
	seen := map[string]string{}
	for _, tag := range distinct {
		k := key(tag)
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%s) = Key(%s) = %q", tag, prev, k)
		}
		seen[k] = tag
	}

	// API spellings that contain the separators still give distinct keys.
	any := mustRange("*")
	a := resolver.Request{Stack: "env", Requirements: []resolver.Requirement{{Name: "a", Range: any, Spelling: "1,b@2"}}}
	b := resolver.Request{Stack: "env", Requirements: []resolver.Requirement{{Name: "a", Range: any, Spelling: "1"}, {Name: "b", Range: any, Spelling: "2"}}}
	c := resolver.Request{Stack: "env", Requirements: []resolver.Requirement{{Name: "a", Range: any, Spelling: "1%2Cb@2"}}}
	if a.Key() == b.Key() || a.Key() == c.Key() || b.Key() == c.Key() {
		t.Errorf("keys collide: %q, %q, %q", a.Key(), b.Key(), c.Key())
	}
	if got, want := a.Key(), "env:a@1%2Cb@2"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
}

func TestParseRequirement(t *testing.T) {
	snap, st := tagSnapshot()
	names := resolver.StackNames(snap, st)
	for _, tc := range []struct {
		in, name, spelling string
		wantErr            string
	}{
		{in: "php=^8.2", name: "php", spelling: "^8.2"},
		{in: "php", name: "php", spelling: "*"},
		{in: "node=>=18 <21", name: "nodejs", spelling: ">=18 <21"},
		{in: "graphicsmagick=*", name: "graphicsmagick", spelling: "*"},
		{in: " gm = 1.3 ", name: "graphicsmagick", spelling: "1.3"},
		{in: "php=", wantErr: `invalid requirement "php=": empty version range after '='`},
		{in: "=^8", wantErr: `invalid requirement "=^8": no package name`},
		{in: "php=abc", wantErr: `invalid requirement "php=abc": version range "abc": improper constraint: "abc"`},
		{in: "ruby=3", wantErr: `unknown package "ruby" (known packages: ` + knownNames + ")"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := resolver.ParseRequirement(tc.in, names)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseRequirement error = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != tc.name || r.Spelling != tc.spelling || r.Range == nil {
				t.Errorf("ParseRequirement = %+v, want name %q spelling %q", r, tc.name, tc.spelling)
			}
		})
	}
	if _, err := resolver.ParseRequirement("ruby", names); !errors.Is(err, resolver.ErrUnknownPackage) {
		t.Errorf("unknown package error %v is not ErrUnknownPackage", err)
	}
}

func TestNewRequest(t *testing.T) {
	in := []resolver.Requirement{
		{Name: "php", Range: mustRange("^8.2"), Spelling: "^8.2"},
		{Name: "nodejs"},
		{Name: "gm", Range: mustRange("~1.3")},
	}
	orig := slices.Clone(in)
	req, err := resolver.NewRequest("env", in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := req.Key(), "env:gm@~1.3,nodejs@*,php@^8.2"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(in, orig) {
		t.Errorf("NewRequest modified its argument: %v", in)
	}
	if req.Requirements[1].Range == nil || !req.Requirements[1].Range.Check(semver.MustParse("1.0.0")) {
		t.Errorf("a nil Range did not become any version")
	}

	_, err = resolver.NewRequest("env", []resolver.Requirement{{Name: "php", Spelling: "8"}, {Name: "nodejs"}, {Name: "php", Range: mustRange("^7"), Spelling: "^7"}})
	if got, want := fmt.Sprint(err), `duplicate requirement for php: "8" and "^7"`; got != want {
		t.Errorf("NewRequest error = %q, want %q", got, want)
	}
	req, err = resolver.NewRequest("env", []resolver.Requirement{{Name: "php", Spelling: "^8"}})
	if err != nil || req.Key() != "env:php@^8" || req.Requirements[0].Range.Check(semver.MustParse("7.4.33")) {
		t.Errorf("NewRequest with a Spelling and no Range = %s, %v; want php ^8", req.Key(), err)
	}
	if _, err := resolver.NewRequest("env", []resolver.Requirement{{Name: "php", Spelling: "abc"}}); err == nil {
		t.Errorf("NewRequest accepted an invalid Spelling")
	}
	if _, err := resolver.NewRequest("env", []resolver.Requirement{{}}); err == nil {
		t.Errorf("NewRequest accepted a requirement without a name")
	}
}
