package packages_test

import (
	"testing"

	"github.com/envreg/envreg/packages"
)

func TestRebuiltVersion(t *testing.T) {
	for in, want := range map[string]string{
		"8.2.36+1.deb12u1":    "8.2.36+1.deb12u1.r2",
		"8.2.36+1.deb12u1.r2": "8.2.36+1.deb12u1.r3",
		"8.2.36+1.deb12u1.r9": "8.2.36+1.deb12u1.r10",
		"13.8.0":              "13.8.0+r2",
		"13.8.0+r2":           "13.8.0+r3",
		"1.3.45+hg17696.1":    "1.3.45+hg17696.1.r2",
	} {
		if got := packages.RebuiltVersion(in); got != want {
			t.Errorf("RebuiltVersion(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestClosureChanges(t *testing.T) {
	for _, tc := range []struct{ before, now, want string }{
		{"a=1 b=2", "a=1 b=2", ""},
		{"a=1 libssl3=3.0.15-1~deb12u1", "a=1 libssl3=3.0.16-1~deb12u1", "libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1"},
		{"a=1 b:amd64=2 b:arm64=2+b1", "a=1 b:amd64=3 b:arm64=2+b1 c=1", "b:amd64 2 → 3, c (added) 1"},
		{"a=1 old=1", "a=1", "old 1 (removed)"},
		{"", "a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1", "a (added) 1, b (added) 1, c (added) 1, d (added) 1, e (added) 1, f (added) 1, g (added) 1, h (added) 1, and 2 more"},
	} {
		if got := packages.ClosureChanges(tc.before, tc.now); got != tc.want {
			t.Errorf("ClosureChanges(%q, %q) = %q, want %q", tc.before, tc.now, got, tc.want)
		}
	}
}
