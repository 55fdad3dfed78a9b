package packages

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

	"github.com/envreg/envreg/catalog"
)

// Input is one package version for one platform, as given to
// `envreg publish`: exactly one of Dir and Tar names the content.
type Input struct {
	Name     string           // package name, e.g. "php"
	Version  string           // strict semver MAJOR.MINOR.PATCH, e.g. "8.2.36"
	Platform catalog.Platform // e.g. linux/amd64
	// Dir is a directory whose tree becomes the layer.
	Dir string
	// Tar is a tar file (gzip-compressed or plain) whose tree becomes the
	// layer, normalized as NormalizeTar does.
	Tar string
	// Path lists absolute directories to prepend to PATH, in order.
	Path []string
	// Env are other environment variables; PATH is not allowed here.
	Env map[string]string
	// Requires and Conflicts are constraints such as "base ^12".
	Requires, Conflicts []string
	Labels              map[string]string
	// Force replaces an existing layer or metadata with different content
	// instead of failing with catalog.ErrExists.
	Force bool
}

// ValidationError lists every problem found in an Input or a Recipe, each
// as "field: reason". Nothing is built or stored for invalid input.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

// metadata is what an Input and a Recipe share: everything of a release but
// its layers and publish time.
type metadata struct {
	name, version       string
	path                []string
	env, labels         map[string]string
	requires, conflicts []string
}

// release validates m and returns the release it describes (without layers
// and publish time), or the problems found.
func (m metadata) release() (catalog.Release, []string) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	r := catalog.Release{Name: m.name}
	if err := catalog.ValidateName(m.name); err != nil {
		add("name: %v", err)
	}
	v, err := semver.StrictNewVersion(m.version)
	if err != nil {
		add("version: %q is not a strict semantic version (want MAJOR.MINOR.PATCH, e.g. 8.2.36)", m.version)
	}
	r.Version = v

	for i, p := range m.path {
		if reason := pathEntryProblem(p); reason != "" {
			add("path[%d]: %s", i, reason)
			continue
		}
		r.Env.Path = append(r.Env.Path, p)
	}
	for _, k := range slices.Sorted(maps.Keys(m.env)) {
		switch {
		case k == "PATH":
			add("env: PATH is not allowed here; list its directories in path")
		case !validEnvName(k):
			add("env: invalid variable name %q (use letters, digits and '_', not starting with a digit)", k)
		default:
			if reason := textProblem(m.env[k]); reason != "" {
				add("env: value of %s %s", k, reason)
			}
		}
	}
	if len(m.env) > 0 {
		r.Env.Vars = maps.Clone(m.env)
	}
	r.Requires, problems = constraints("requires", m.requires, problems)
	r.Conflicts, problems = constraints("conflicts", m.conflicts, problems)
	for _, k := range slices.Sorted(maps.Keys(m.labels)) {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			add("labels: invalid label key %q", k)
		}
	}
	if len(m.labels) > 0 {
		r.Labels = maps.Clone(m.labels)
	}
	return r, problems
}

// constraints parses requirement strings into a canonical list: sorted by
// name and range, exact duplicates dropped (constraints are a conjunction,
// so order carries no meaning and must not make two publishes differ).
func constraints(field string, in []string, problems []string) ([]catalog.Constraint, []string) {
	var out []catalog.Constraint
	for i, s := range in {
		c, err := catalog.ParseConstraint(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s[%d]: %v", field, i, err))
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b catalog.Constraint) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Range, b.Range))
	})
	return slices.Compact(out), problems
}

// Everything a release's Env says ends up in the config of every image
// that contains the package, pushed or published, so its checks are here,
// in the one validation Input, Recipe and push labels share.

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

// validatePlatform checks that p is what catalog.ParsePlatform accepts.
func validatePlatform(field string, p catalog.Platform) []string {
	parsed, err := catalog.ParsePlatform(p.String())
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", field, err)}
	}
	if parsed != p {
		return []string{fmt.Sprintf("%s: invalid platform %q", field, p)}
	}
	return nil
}

// validate checks the whole input and returns the release it describes.
func (in Input) validate() (catalog.Release, error) {
	m := metadata{
		name: in.Name, version: in.Version, path: in.Path, env: in.Env, labels: in.Labels,
		requires: in.Requires, conflicts: in.Conflicts,
	}
	r, problems := m.release()
	problems = append(problems, validatePlatform("platform", in.Platform)...)
	switch {
	case in.Dir != "" && in.Tar != "":
		problems = append(problems, "source: give a directory or a tar file, not both")
	case in.Dir == "" && in.Tar == "":
		problems = append(problems, "source: a directory or a tar file is required")
	}
	if len(problems) > 0 {
		return catalog.Release{}, &ValidationError{Problems: problems}
	}
	return r, nil
}
