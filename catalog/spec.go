package catalog

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
)

// ReleaseSpec is a release's metadata as people write it: the flags of
// `envreg publish`, a recipe's YAML, the labels of a pushed package. It is
// everything of a Release but its layers and publish time, in text, not
// yet checked. Release checks it and returns the Release it describes.
//
// Its checks are stricter than Release.Validate, which decodes stored
// releases and must keep accepting those stored before a rule was added
// (see the Env rules below): a spec is new input, a stored release is not.
type ReleaseSpec struct {
	Name    string // package name, e.g. "php"
	Version string // strict semver MAJOR.MINOR.PATCH[+BUILD], e.g. "8.2.36"
	// Path lists absolute directories to prepend to PATH, in order.
	Path []string
	// Env are other environment variables; PATH is not allowed here.
	Env map[string]string
	// Requires and Conflicts are constraints such as "base ^12".
	Requires, Conflicts []string
	Labels              map[string]string
}

// ValidationError lists every problem found in a release's description
// (a ReleaseSpec, a recipe, a push), each as "field: reason". Nothing is
// built, stored or registered for invalid input.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

// Release checks every field of s and returns the release it describes
// (without layers and publish time) and the problems found, each as
// "field: reason"; the release is meaningful only when there are none.
// Requires and Conflicts come out sorted by name and range, without
// duplicates, so that the order people wrote them in never makes two
// publishes of the same package differ.
func (s ReleaseSpec) Release() (Release, []string) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	r := Release{Name: s.Name}
	if err := ValidateName(s.Name); err != nil {
		add("name: %v", err)
	}
	v, err := semver.StrictNewVersion(s.Version)
	if err != nil {
		add("version: %q is not a strict semantic version (want MAJOR.MINOR.PATCH, e.g. 8.2.36)", s.Version)
	}
	r.Version = v

	for i, p := range s.Path {
		if reason := pathEntryProblem(p); reason != "" {
			add("path[%d]: %s", i, reason)
			continue
		}
		r.Env.Path = append(r.Env.Path, p)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		switch {
		case k == "PATH":
			add("env: PATH is not allowed here; list its directories in path")
		case !validEnvName(k):
			add("env: invalid variable name %q (use letters, digits and '_', not starting with a digit)", k)
		default:
			if reason := textProblem(s.Env[k]); reason != "" {
				add("env: value of %s %s", k, reason)
			}
		}
	}
	if len(s.Env) > 0 {
		r.Env.Vars = maps.Clone(s.Env)
	}
	r.Requires, problems = constraints("requires", s.Requires, problems)
	r.Conflicts, problems = constraints("conflicts", s.Conflicts, problems)
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			add("labels: invalid label key %q", k)
		}
	}
	if len(s.Labels) > 0 {
		r.Labels = maps.Clone(s.Labels)
	}
	return r, problems
}

// constraints parses requirement strings into a canonical list: sorted by
// name and range, exact duplicates dropped (constraints are a conjunction,
// so order carries no meaning and must not make two publishes differ).
func constraints(field string, in []string, problems []string) ([]Constraint, []string) {
	var out []Constraint
	for i, s := range in {
		c, err := ParseConstraint(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s[%d]: %v", field, i, err))
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Constraint) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Range, b.Range))
	})
	return slices.Compact(out), problems
}

// Everything a release's Env says ends up in the config of every image
// that contains the package, pushed or published, so its checks are here,
// in the one validation that publish flags, recipes and push labels share.
// They are not in Release.Validate: releases stored before them must keep
// loading (SECURITY.md says they are not re-checked).

// pathEntryProblem says what is wrong with a directory to prepend to
// PATH, or "". An empty entry (or a relative one) would put the working
// directory, or a directory below it, in every image's PATH; an unclean
// one ("/opt/x/../bin", "/opt/x/") is refused rather than rewritten, so
// that the release says what its publisher wrote.
func pathEntryProblem(p string) string {
	switch {
	case p == "":
		return "empty (an empty PATH entry means the working directory)"
	case textProblem(p) != "":
		return fmt.Sprintf("%q %s", p, textProblem(p))
	case !path.IsAbs(p):
		return fmt.Sprintf("%q is not an absolute path", p)
	case strings.Contains(p, ":"):
		return fmt.Sprintf("%q contains ':', the PATH separator", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not a clean path (write %q)", p, path.Clean(p))
	}
	return ""
}

// textProblem says why s cannot be (part of) an environment value in an
// image config, or "": control characters (a newline would split the
// variable in every tool that writes the environment out as lines, such
// as env files and docker inspect templates), Unicode line separators and
// invalid UTF-8 (which JSON would silently replace).
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("contains the control character %U at byte %d", r, i)
		}
	}
	return ""
}

// validEnvName reports whether k is a portable environment variable name.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		ok := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
