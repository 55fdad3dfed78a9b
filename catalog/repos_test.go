package catalog

import (
	"strings"
	"testing"
)

// TestValidRepositoryName checks the hand-written scanner against the
// grammar's regular expression on every string of up to 7 characters over
// an alphabet that exercises each rule, and on typical names.
func TestValidRepositoryName(t *testing.T) {
	const alphabet = "a0._-/A"
	n, valid := 0, 0
	var walk func(prefix string)
	walk = func(prefix string) {
		want := RepositoryNamePattern.MatchString(prefix)
		if got := ValidRepositoryName(prefix); got != want {
			t.Errorf("ValidRepositoryName(%q) = %v, the pattern says %v", prefix, got, want)
		}
		n++
		if want {
			valid++
		}
		if len(prefix) == 7 {
			return
		}
		for _, c := range alphabet {
			walk(prefix + string(c))
		}
	}
	walk("")
	if valid == 0 || valid == n {
		t.Fatalf("%d of %d strings valid: the alphabet exercises nothing", valid, n)
	}
	for _, name := range []string{"env", "library/php", "packages/graphicsmagick", "a__b", "a---b/c.d_e",
		"conformance/ci-test-1", strings.Repeat("ab/", 100) + "c"} {
		if !ValidRepositoryName(name) {
			t.Errorf("ValidRepositoryName(%q) = false", name)
		}
	}
	for _, name := range []string{"", "/", "a/", "/a", "a//b", "a___b", "a.-b", "A", "a:b", "-a", "a-", "é"} {
		if ValidRepositoryName(name) {
			t.Errorf("ValidRepositoryName(%q) = true", name)
		}
	}
	if err := ValidateRepository(strings.Repeat("a", MaxRepositoryNameLength+1)); err == nil {
		t.Error("ValidateRepository accepted a name longer than MaxRepositoryNameLength")
	}
}
