package resolver_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// withFiles sets the file list of every layer of r (path -> fingerprint).
func withFiles(r catalog.Release, files map[string]string) catalog.Release {
	for i := range r.Layers {
		r.Layers[i].Files = files
	}
	return r
}

func TestOverlappingLayers(t *testing.T) {
	base := withFiles(rel("base 12.0.0"), map[string]string{"bin/sh": "sha256:aa 0755", "usr/lib/libc.so.6": "sha256:c1 0644"})
	php := withFiles(rel("php 8.2.36", "requires base *"), map[string]string{"usr/bin/php8.2": "sha256:p 0755", "usr/lib/libxml2.so.2": "sha256:x1 0644"})
	// gm ships the identical libxml2 (fine) but its own, different libc (not fine).
	gmSame := withFiles(rel("graphicsmagick 1.3.40", "requires base *"), map[string]string{"usr/bin/gm": "sha256:g 0755", "usr/lib/libxml2.so.2": "sha256:x1 0644"})
	gmClash := withFiles(rel("graphicsmagick 1.3.42", "requires base *"), map[string]string{"usr/bin/gm": "sha256:g2 0755", "usr/lib/libc.so.6": "sha256:c2 0644"})
	snap := catalog.NewSnapshot(1, []catalog.Release{base, php, gmSame, gmClash}, nil)
	st, _ := snap.Stack("env")

	resolve := func(t *testing.T, st catalog.Stack, tag string) (*resolver.Resolution, error) {
		t.Helper()
		req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
		if err != nil {
			t.Fatal(err)
		}
		return resolver.Resolve(snap, st, req)
	}

	if _, err := resolve(t, st, "php_gm-1.3.40"); err != nil {
		t.Errorf("identical shared file refused: %v", err)
	}
	_, err := resolve(t, st, "php_gm-1.3.42")
	var overlap *resolver.OverlapError
	if !errors.As(err, &overlap) {
		t.Fatalf("php_gm-1.3.42: %v, want *OverlapError", err)
	}
	want := resolver.OverlapError{Path: "usr/lib/libc.so.6", Platform: "linux/amd64", Packages: [2]string{"base 12.0.0", "graphicsmagick 1.3.42"},
		Entries: [2]string{"usr/lib/libc.so.6", "usr/lib/libc.so.6"}}
	if *overlap != want {
		t.Errorf("overlap = %+v, want %+v", *overlap, want)
	}
	if got, wantMsg := err.Error(), "base 12.0.0 and graphicsmagick 1.3.42 both write /usr/lib/libc.so.6 with different content (linux/amd64); the stack does not allow overlapping layers"; got != wantMsg {
		t.Errorf("message %q, want %q", got, wantMsg)
	}

	// A stack may allow overlaps: the upper layer wins.
	st.AllowOverlap = true
	if res, err := resolve(t, st, "php_gm-1.3.42"); err != nil || len(res.Releases) != 3 {
		t.Errorf("with allowOverlap: %v", err)
	}
}

// TestLinkOverDirectory: a file or symbolic link in one layer where
// another layer has entries beneath (a directory) is an overlap, in either
// layer order and against base packages too; a path that merely shares a
// prefix is not.
func TestLinkOverDirectory(t *testing.T) {
	base := withFiles(rel("base 12.0.0"), map[string]string{"etc/os-release": "sha256:os 0644", "usr/bin/env": "sha256:e 0755"})
	php := withFiles(rel("php 8.2.36", "requires base *"), map[string]string{"usr/local/php/bin/php": "sha256:p 0755", "usr/local/bin/php": "-> /usr/local/php/bin/php"})
	// Above php in layer order (a name after "php"): its link hides php's directory.
	shim := withFiles(rel("zzshim 1.0.0", "requires base *"), map[string]string{"usr/local/php": "-> /opt/zz", "opt/zz/bin/php": "sha256:z 0755"})
	// Below php (a name before "php"): php's files would be written through its link.
	under := withFiles(rel("aashim 1.0.0", "requires base *"), map[string]string{"usr/local/php": "-> /opt/zz"})
	// Over base: /etc becomes a link to a directory of its own.
	fakeEtc := withFiles(rel("fake-etc 1.0.0", "requires base *"), map[string]string{"etc": "-> /opt/fake-etc", "opt/fake-etc/os-release": "sha256:f 0644"})
	// A regular file where base has a directory, deeper than the top level.
	usrFile := withFiles(rel("usrfile 1.0.0", "requires base *"), map[string]string{"usr/bin": "sha256:u 0644"})
	// Siblings that share a prefix with php's directory are not under it.
	siblings := withFiles(rel("siblings 1.0.0", "requires base *"), map[string]string{"usr/local/php-fpm": "-> /opt/fpm", "usr/local/ph": "sha256:s 0644", "usr/local/php.d/x": "sha256:s 0644"})
	snap := catalog.NewSnapshot(1, []catalog.Release{base, php, shim, under, fakeEtc, usrFile, siblings}, nil)
	st, _ := snap.Stack("env")

	for _, tc := range []struct {
		tag  string
		want resolver.OverlapError // zero: composes
		msg  string
	}{
		{"php_zzshim", resolver.OverlapError{Path: "usr/local/php", Packages: [2]string{"php 8.2.36", "zzshim 1.0.0"},
			Entries: [2]string{"usr/local/php/bin/php", "usr/local/php"}},
			"php 8.2.36 writes /usr/local/php/bin/php and zzshim 1.0.0 writes /usr/local/php, so /usr/local/php would be both a directory and a file or symbolic link (linux/amd64); the stack does not allow overlapping layers"},
		{"aashim_php", resolver.OverlapError{Path: "usr/local/php", Packages: [2]string{"aashim 1.0.0", "php 8.2.36"},
			Entries: [2]string{"usr/local/php", "usr/local/php/bin/php"}},
			"aashim 1.0.0 writes /usr/local/php and php 8.2.36 writes /usr/local/php/bin/php, so /usr/local/php would be both a directory and a file or symbolic link (linux/amd64); the stack does not allow overlapping layers"},
		{"fake-etc", resolver.OverlapError{Path: "etc", Packages: [2]string{"base 12.0.0", "fake-etc 1.0.0"},
			Entries: [2]string{"etc/os-release", "etc"}}, ""},
		{"usrfile", resolver.OverlapError{Path: "usr/bin", Packages: [2]string{"base 12.0.0", "usrfile 1.0.0"},
			Entries: [2]string{"usr/bin/env", "usr/bin"}}, ""},
		{"php_siblings", resolver.OverlapError{}, ""},
		{"zzshim", resolver.OverlapError{}, ""},
		{"aashim_zzshim", resolver.OverlapError{}, ""}, // the same link twice
	} {
		t.Run(tc.tag, func(t *testing.T) {
			req, err := resolver.ParseTag(tc.tag, st, resolver.StackNames(snap, st))
			if err != nil {
				t.Fatal(err)
			}
			_, err = resolver.Resolve(snap, st, req)
			if tc.want.Path == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var overlap *resolver.OverlapError
			if !errors.As(err, &overlap) {
				t.Fatalf("%v, want *OverlapError", err)
			}
			tc.want.Platform = "linux/amd64"
			if *overlap != tc.want {
				t.Errorf("overlap = %+v, want %+v", *overlap, tc.want)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err.Error(), tc.msg)
			}
			allowed := st
			allowed.AllowOverlap = true
			if _, err := resolver.Resolve(snap, allowed, req); err != nil {
				t.Errorf("with allowOverlap: %v", err)
			}
		})
	}
}

// TestLinkOverDirectoryOnePlatform: the check is per platform, and the
// error names the platform where the layers disagree.
func TestLinkOverDirectoryOnePlatform(t *testing.T) {
	base := withFiles(rel("base 12.0.0"), map[string]string{"etc/os-release": "sha256:os 0644"})
	etc := rel("etc 1.0.0", "requires base *")
	etc.Layers[1].Files = map[string]string{"etc": "-> /opt/etc"} // linux/arm64 only
	snap := catalog.NewSnapshot(1, []catalog.Release{base, etc}, nil)
	st, _ := snap.Stack("env")
	req, err := resolver.ParseTag("etc", st, resolver.StackNames(snap, st))
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolver.Resolve(snap, st, req)
	var overlap *resolver.OverlapError
	if !errors.As(err, &overlap) || overlap.Platform != "linux/arm64" || overlap.Path != "etc" {
		t.Fatalf("%v, want an overlap at /etc on linux/arm64", err)
	}
}

// TestOverlapAgainstPairwise compares the check with the definition, pair
// by pair of entries, on a thousand random small trees, and checks that
// the reported overlap is one the definition finds and is the same on
// every run (the check iterates over maps).
func TestOverlapAgainstPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 5))
	names := []string{"l0", "l1", "l2", "l3"}
	for range 1000 {
		var rels []catalog.Release
		layers := map[string]map[string]string{}
		for _, n := range names {
			files := randomLayer(rng)
			layers[n+" 1.0.0"] = files
			rels = append(rels, withFiles(rel(n+" 1.0.0"), files))
		}
		snap := catalog.NewSnapshot(1, rels, nil)
		st, _ := snap.Stack("env")
		req, err := resolver.ParseTag(strings.Join(names, "_"), st, resolver.StackNames(snap, st))
		if err != nil {
			t.Fatal(err)
		}
		_, err = resolver.Resolve(snap, st, req)
		want := pairwiseOverlap(names, layers)
		var overlap *resolver.OverlapError
		switch {
		case want == "" && err != nil:
			t.Fatalf("layers %v: refused (%v), but no two entries clash", layers, err)
		case want != "" && !errors.As(err, &overlap):
			t.Fatalf("layers %v: %v, want an overlap (%s)", layers, err, want)
		case want != "":
			a, b := layers[overlap.Packages[0]], layers[overlap.Packages[1]]
			if !clashes(overlap.Entries[0], a[overlap.Entries[0]], overlap.Entries[1], b[overlap.Entries[1]]) {
				t.Fatalf("layers %v: reported %+v, which is not a clash", layers, *overlap)
			}
			for range 3 {
				if _, again := resolver.Resolve(snap, st, req); again.Error() != err.Error() {
					t.Fatalf("layers %v: reported %q, then %q", layers, err, again)
				}
			}
		}
	}
}

// randomLayer writes up to 3 entries at depth 1 to 3 over the components
// a to f, as a publishable layer would: nothing beneath its own files.
// About half of the resolutions clash.
func randomLayer(rng *rand.Rand) map[string]string {
	files := map[string]string{}
	for range rng.IntN(4) {
		parts := make([]string, 1+rng.IntN(3))
		for i := range parts {
			parts[i] = string(rune('a' + rng.IntN(6)))
		}
		files[strings.Join(parts, "/")] = []string{"sha256:x 0644", "-> /y"}[rng.IntN(2)]
	}
	for p := range files {
		for q := range files {
			if strings.HasPrefix(p, q+"/") {
				delete(files, p)
			}
		}
	}
	return files
}

// pairwiseOverlap describes the first clash between two layers' entries,
// or returns "".
func pairwiseOverlap(names []string, layers map[string]map[string]string) string {
	for i, lower := range names {
		for _, upper := range names[i+1:] {
			for p, pfp := range layers[lower+" 1.0.0"] {
				for q, qfp := range layers[upper+" 1.0.0"] {
					if clashes(p, pfp, q, qfp) {
						return lower + ":" + p + " " + upper + ":" + q
					}
				}
			}
		}
	}
	return ""
}

// clashes reports whether entry p (fingerprint pfp) of one layer and entry
// q of another disagree: the same path with different content, or one
// beneath the other.
func clashes(p, pfp, q, qfp string) bool {
	return p == q && pfp != qfp || strings.HasPrefix(p, q+"/") || strings.HasPrefix(q, p+"/")
}
