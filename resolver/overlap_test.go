package resolver_test

import (
	"errors"
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
	want := resolver.OverlapError{Path: "usr/lib/libc.so.6", Platform: "linux/amd64", Packages: [2]string{"base 12.0.0", "graphicsmagick 1.3.42"}}
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
