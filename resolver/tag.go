package resolver

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// MaxTagLength is the longest tag the OCI distribution spec allows.
const MaxTagLength = 128

// LatestTag is the tag that stands for a stack's Latest requirements.
const LatestTag = "latest"

// ErrUnknownPackage is wrapped by every error about a package name that is
// neither published nor an alias of a published package
// (see UnknownPackageError).
var ErrUnknownPackage = errors.New("unknown package")

// Names maps a package name or alias to the canonical package name. It
// reports false for a name it does not know.
//
// A Names that also has a method Known() []string (the names and aliases
// it accepts, sorted) lets unknown-package errors list the alternatives.
type Names interface {
	Canonical(name string) (string, bool)
}

// StackNames returns the names a tag of stack st may use: every package
// published in snap, plus each alias of st whose target is published. An
// alias takes precedence over a published package of the same name, so
// that publishing a package cannot change what an existing tag means.
//
// Aliases that packages declare (Snapshot.PackageAliases) count too,
// unless the stack maps the same alias itself.
//
// StackNames copies nothing when no package declares an alias: it keeps
// snap's sorted name slice and st's alias map, so building it is O(1) and
// Canonical costs one map lookup and at most two binary searches (O(log n)
// in the number of published names), without allocating. Otherwise it
// merges the two alias maps once. It is meant to be built per request.
func StackNames(snap *catalog.Snapshot, st catalog.Stack) Names {
	aliases := st.Aliases
	if pkg := snap.PackageAliases(); len(pkg) > 0 {
		aliases = make(map[string]string, len(pkg)+len(st.Aliases))
		maps.Copy(aliases, pkg)
		maps.Copy(aliases, st.Aliases) // the stack's own win
	}
	return &stackNames{names: snap.Names(), aliases: aliases}
}

type stackNames struct {
	names   []string // sorted, shared with the snapshot
	aliases map[string]string
}

func (n *stackNames) published(name string) bool {
	_, ok := slices.BinarySearch(n.names, name)
	return ok
}

// Canonical implements Names.
func (n *stackNames) Canonical(name string) (string, bool) {
	if target, ok := n.aliases[name]; ok && n.published(target) {
		return target, true
	}
	if n.published(name) {
		return name, true
	}
	return "", false
}

// Known lists the published names and usable aliases, sorted.
func (n *stackNames) Known() []string {
	out := slices.Clone(n.names)
	for a, target := range n.aliases {
		if n.published(target) && !n.published(a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// maxKnownInError bounds the list of names an UnknownPackageError carries.
const maxKnownInError = 20

// TagError reports a tag that does not follow the tag grammar: too long,
// bad characters, an empty component, a malformed version, a package named
// twice.
type TagError struct {
	Tag    string
	Reason string
}

func (e *TagError) Error() string { return fmt.Sprintf("invalid tag %q: %s", e.Tag, e.Reason) }

// UnknownPackageError reports a package name that is neither published
// nor an alias. errors.Is(err, ErrUnknownPackage) is true for it.
type UnknownPackageError struct {
	Package string
	// Tag and Component locate the name when it came from a tag ("" otherwise).
	Tag, Component string
	// Known lists the accepted names and aliases when there are at most 20
	// of them (nil otherwise, or when the Names cannot list them).
	Known []string
}

func (e *UnknownPackageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown package %q", e.Package)
	if e.Tag != "" {
		fmt.Fprintf(&b, " in tag %q", e.Tag)
	}
	if len(e.Known) > 0 {
		fmt.Fprintf(&b, " (known packages: %s)", strings.Join(e.Known, ", "))
	}
	return b.String()
}

// Unwrap returns ErrUnknownPackage.
func (e *UnknownPackageError) Unwrap() error { return ErrUnknownPackage }

func unknownPackage(name string, names Names) *UnknownPackageError {
	e := &UnknownPackageError{Package: name}
	if l, ok := names.(interface{ Known() []string }); ok {
		if known := l.Known(); len(known) <= maxKnownInError {
			e.Known = known
		}
	}
	return e
}

// ParseTag parses a tag such as "php-8.2_node-20" into the canonical
// Request for stack st. names decides which package names and aliases
// exist (see StackNames). The tag "latest" stands for st.Latest.
//
// Grammar errors are *TagError; a name that names no package is an
// *UnknownPackageError (errors.Is ErrUnknownPackage). See the package
// documentation for the grammar.
func ParseTag(tag string, st catalog.Stack, names Names) (Request, error) {
	if reason := checkTagSyntax(tag); reason != "" {
		return Request{}, &TagError{Tag: tag, Reason: reason}
	}
	if tag == LatestTag {
		return latestRequest(st, names)
	}
	comps := strings.Split(tag, "_")
	reqs := make([]Requirement, 0, len(comps))
	for _, c := range comps {
		if c == "" {
			return Request{}, &TagError{Tag: tag, Reason: "empty component"}
		}
		r, err := parseComponent(c, names)
		if err != nil {
			switch err := err.(type) {
			case *UnknownPackageError:
				err.Tag, err.Component = tag, c
				return Request{}, err
			default:
				return Request{}, &TagError{Tag: tag, Reason: err.Error()}
			}
		}
		reqs = append(reqs, r)
	}
	req, i, j := canonicalRequest(st.Name, reqs)
	if i >= 0 {
		return Request{}, &TagError{Tag: tag, Reason: fmt.Sprintf("%s is requested twice (%q and %q)", reqs[i].Name, comps[i], comps[j])}
	}
	return req, nil
}

// checkTagSyntax checks the OCI tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
// and returns the reason it fails, or "".
func checkTagSyntax(tag string) string {
	if tag == "" {
		return "empty tag"
	}
	if len(tag) > MaxTagLength {
		return fmt.Sprintf("%d characters long, the limit is %d", len(tag), MaxTagLength)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case c == '.' || c == '-':
			if i == 0 {
				return fmt.Sprintf("starts with %q; a tag starts with a letter, digit or '_'", c)
			}
		default:
			return fmt.Sprintf("invalid character %q at offset %d; a tag may contain letters, digits, '_', '.' and '-'", rune(c), i)
		}
	}
	return ""
}

// parseComponent parses name ["-" version]. It returns an
// *UnknownPackageError for an unknown name and a plain error (the reason)
// for a grammar problem.
func parseComponent(c string, names Names) (Requirement, error) {
	// Names may contain '-': try the splits from the right; the first one
	// with a known name on the left and a version on the right wins.
	for i := strings.LastIndexByte(c, '-'); i > 0; i = strings.LastIndexByte(c[:i], '-') {
		name, ver := c[:i], c[i+1:]
		if !isVersionPrefix(ver) {
			continue
		}
		if canon, ok := names.Canonical(name); ok {
			rng, err := semver.NewConstraint(ver)
			if err != nil { // e.g. a number too large for uint64
				return Requirement{}, fmt.Errorf("bad version %q for %s in %q: %v", ver, name, c, err)
			}
			return Requirement{Name: canon, Range: rng, Spelling: ver}, nil
		}
	}
	if canon, ok := names.Canonical(c); ok {
		return anyVersion(canon), nil
	}
	// Explain: a known name followed by something that is not a version…
	for i := strings.LastIndexByte(c, '-'); i > 0; i = strings.LastIndexByte(c[:i], '-') {
		if _, ok := names.Canonical(c[:i]); ok {
			return Requirement{}, fmt.Errorf("bad version %q for %s in %q: want MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE]", c[i+1:], c[:i], c)
		}
	}
	// …or an unknown name, with or without a version.
	name := c
	for i := strings.LastIndexByte(c, '-'); i >= 0; i = strings.LastIndexByte(c[:i], '-') {
		if isVersionPrefix(c[i+1:]) {
			name = c[:i]
			break
		}
	}
	if name == "" {
		return Requirement{}, fmt.Errorf("component %q has no package name", c)
	}
	return Requirement{}, unknownPackage(name, names)
}

// isVersionPrefix reports whether v is MAJOR, MAJOR.MINOR, MAJOR.MINOR.PATCH
// or MAJOR.MINOR.PATCH-PRERELEASE with SemVer 2.0 number rules (no leading
// zeros). It rejects what Masterminds would also accept in a range ("8.x",
// "v8", "~8") because a tag spells a version, not a range.
func isVersionPrefix(v string) bool {
	core, pre, hasPre := strings.Cut(v, "-")
	parts := 0
	for p := range strings.SplitSeq(core, ".") {
		parts++
		if p == "" || parts > 3 || (len(p) > 1 && p[0] == '0') {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	if !hasPre {
		return true
	}
	if parts != 3 || pre == "" {
		return false
	}
	_, err := semver.StrictNewVersion(v)
	return err == nil
}

func anyVersion(name string) Requirement {
	rng, _ := semver.NewConstraint("*")
	return Requirement{Name: name, Range: rng, Spelling: "*"}
}

func latestRequest(st catalog.Stack, names Names) (Request, error) {
	reqs := make([]Requirement, 0, len(st.Latest))
	for _, c := range st.Latest {
		name := c.Name
		if canon, ok := names.Canonical(name); ok {
			name = canon
		} // else: Resolve reports it as "none published".
		rng, err := semver.NewConstraint(c.Range)
		if err != nil {
			return Request{}, fmt.Errorf("stack %s: latest: invalid range %q for %s: %w", st.Name, c.Range, c.Name, err)
		}
		reqs = append(reqs, Requirement{Name: name, Range: rng, Spelling: c.Range})
	}
	req, i, _ := canonicalRequest(st.Name, reqs)
	if i >= 0 {
		return Request{}, fmt.Errorf("stack %s: latest names %s twice", st.Name, reqs[i].Name)
	}
	req.Latest = true
	return req, nil
}

// ParseRequirement parses the CLI/API form of a requirement: "name" (any
// version) or "name=RANGE" with a Masterminds range, e.g. "php=^8.2",
// "nodejs=>=18 <21", "graphicsmagick=*". The name may be an alias; the
// result carries the canonical name and Spelling = RANGE.
func ParseRequirement(s string, names Names) (Requirement, error) {
	name, rng, hasRange := strings.Cut(s, "=")
	name, rng = strings.TrimSpace(name), strings.TrimSpace(rng)
	if name == "" {
		return Requirement{}, fmt.Errorf("invalid requirement %q: no package name", s)
	}
	if hasRange && rng == "" {
		return Requirement{}, fmt.Errorf("invalid requirement %q: empty version range after '='", s)
	}
	canon, ok := names.Canonical(name)
	if !ok {
		return Requirement{}, unknownPackage(name, names)
	}
	if !hasRange {
		return anyVersion(canon), nil
	}
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return Requirement{}, fmt.Errorf("invalid requirement %q: version range %q: %w", s, rng, err)
	}
	return Requirement{Name: canon, Range: c, Spelling: rng}, nil
}

// NewRequest returns the canonical request for stack: requirements sorted
// by name, a nil Range parsed from Spelling (any version if Spelling is
// empty too), an empty Spelling filled in. Names must be valid package
// names (catalog.ValidateName) and already canonical (ParseRequirement
// does that). A package named twice is an error. reqs is
// not modified.
func NewRequest(stack string, reqs []Requirement) (Request, error) {
	reqs = slices.Clone(reqs)
	for i, r := range reqs {
		if err := catalog.ValidateName(r.Name); err != nil {
			return Request{}, fmt.Errorf("requirement: %w", err)
		}
		if r.Range == nil && r.Spelling != "" {
			rng, err := semver.NewConstraint(r.Spelling)
			if err != nil {
				return Request{}, fmt.Errorf("invalid version range %q for %s: %w", r.Spelling, r.Name, err)
			}
			reqs[i].Range = rng
		}
	}
	req, i, j := canonicalRequest(stack, reqs)
	if i >= 0 {
		return Request{}, fmt.Errorf("duplicate requirement for %s: %q and %q", reqs[i].Name, reqs[i].spelling(), reqs[j].spelling())
	}
	return req, nil
}

// canonicalRequest sorts a copy of reqs by name. If a name occurs twice it
// returns the original indexes i < j of the first such pair, else -1, -1.
func canonicalRequest(stack string, reqs []Requirement) (Request, int, int) {
	idx := make([]int, len(reqs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(reqs[a].Name, reqs[b].Name) })
	out := make([]Requirement, len(reqs))
	for k, i := range idx {
		if k > 0 && reqs[idx[k-1]].Name == reqs[i].Name {
			return Request{}, idx[k-1], i
		}
		r := reqs[i]
		if r.Range == nil {
			r = anyVersion(r.Name)
		}
		r.Spelling = r.spelling()
		out[k] = r
	}
	return Request{Stack: stack, Requirements: out}, -1, -1
}

// spelling returns Spelling, or the range as Masterminds prints it.
func (r Requirement) spelling() string {
	switch {
	case r.Spelling != "":
		return r.Spelling
	case r.Range != nil:
		return r.Range.String()
	}
	return "*"
}

// String returns "php 8.2", or just "php" for any version.
func (r Requirement) String() string {
	if s := r.spelling(); s != "*" {
		return r.Name + " " + s
	}
	return r.Name
}

// Key returns the canonical spelling of r, for use in cache keys:
// "env:nodejs@20,php@8.2" for both php-8.2_node-20 and nodejs-20_php-8.2
// (r is canonical, so order and aliases are already gone). The tag latest
// gives "env:latest=nodejs@*,php@^8". Distinct requests give distinct keys:
// names contain no ':', '=', '@' or ',', and '%' and ',' in a spelling are
// escaped as %25 and %2C.
func (r Request) Key() string {
	var b strings.Builder
	b.WriteString(r.Stack)
	b.WriteByte(':')
	if r.Latest {
		b.WriteString("latest=")
	}
	for i, req := range r.Requirements {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(req.Name)
		b.WriteByte('@')
		s := req.spelling()
		if strings.ContainsAny(s, "%,") {
			s = strings.NewReplacer("%", "%25", ",", "%2C").Replace(s)
		}
		b.WriteString(s)
	}
	return b.String()
}
