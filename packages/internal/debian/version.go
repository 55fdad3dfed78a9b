package debian

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Version is a Debian package version, [epoch:]upstream[-revision]
// (deb-version(7)).
type Version struct {
	Epoch    string // "" when the version has none
	Upstream string
	Revision string // "" for a native package
}

// ParseVersion splits a Debian version. The revision is what follows the
// last '-'; the epoch is what precedes the first ':'. The upstream part must
// start with a digit, as Debian policy requires.
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	if e, r, ok := strings.Cut(rest, ":"); ok {
		if e == "" || strings.TrimLeft(e, "0123456789") != "" {
			return Version{}, fmt.Errorf("invalid Debian version %q: epoch %q is not a number", s, e)
		}
		v.Epoch, rest = e, r
	}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Upstream, v.Revision = rest[:i], rest[i+1:]
		if v.Revision == "" || !validChars(v.Revision, "+.~") {
			return Version{}, fmt.Errorf("invalid Debian version %q: bad revision %q", s, v.Revision)
		}
	} else {
		v.Upstream = rest
	}
	if v.Upstream == "" || v.Upstream[0] < '0' || v.Upstream[0] > '9' {
		return Version{}, fmt.Errorf("invalid Debian version %q: upstream version must start with a digit", s)
	}
	if !validChars(v.Upstream, "+.~-:") {
		return Version{}, fmt.Errorf("invalid Debian version %q: upstream version %q has characters outside [A-Za-z0-9.+~-]", s, v.Upstream)
	}
	return v, nil
}

func validChars(s, extra string) bool {
	for _, r := range s {
		if !isAlnum(r) && !strings.ContainsRune(extra, r) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// String returns the version as Debian spells it.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != "" {
		s = v.Epoch + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// Semver derives a semantic version from v. The rules, in order:
//
//   - The epoch is dropped: it only orders versions within Debian.
//   - If the upstream version contains "+really" (the Debian convention for
//     a version that reverts to an older release, e.g. 1.4+really1.3.40),
//     only the part after the last "+really" counts.
//   - MAJOR.MINOR.PATCH are the leading dot-separated numbers of that part;
//     missing ones are 0 and leading zeros are dropped (2026f → 2026.0.0).
//   - Whatever follows the numbers (e.g. "+dfsg") and the Debian revision
//     become the build metadata: each run of characters other than ASCII
//     letters and digits becomes one '.', because '~', '+' and ':' are not
//     allowed there. Build metadata does not take part in semver
//     precedence, so 8.2.36-1~deb12u1 and 8.2.36-2 are the same release
//     version; the exact Debian version is kept in a label by the caller.
//
// Examples: 8.2.36-1~deb12u1 → 8.2.36+1.deb12u1; 1:1.35.0-4 → 1.35.0+4;
// 1.4+really1.3.40-4+deb12u1 → 1.3.40+4.deb12u1;
// 18.20.4+dfsg-1~deb12u3 → 18.20.4+dfsg.1.deb12u3.
func (v Version) Semver() (*semver.Version, error) {
	up := v.Upstream
	if i := strings.LastIndex(up, "+really"); i >= 0 {
		up = up[i+len("+really"):]
	}
	var nums [3]uint64
	rest := up
	for i := range nums {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 0 {
			if i == 0 {
				return nil, fmt.Errorf("Debian version %s: upstream version %q does not start with a number", v, up)
			}
			break
		}
		n, err := strconv.ParseUint(rest[:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("Debian version %s: %w", v, err)
		}
		nums[i], rest = n, rest[j:]
		// Continue only with ".<digit>": "1.2.dfsg" stops after 1.2.
		if i < 2 && len(rest) >= 2 && rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' {
			rest = rest[1:]
			continue
		}
		break
	}
	s := fmt.Sprintf("%d.%d.%d", nums[0], nums[1], nums[2])
	if meta := metadata(rest + "-" + v.Revision); meta != "" {
		s += "+" + meta
	}
	sv, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("Debian version %s: derived %q: %w", v, s, err)
	}
	return sv, nil
}

// metadata turns s into dot-separated semver build identifiers: each run
// of characters other than ASCII letters and digits becomes one '.'.
func metadata(s string) string {
	var b strings.Builder
	sep := false
	for _, r := range s {
		if !isAlnum(r) {
			sep = b.Len() > 0
			continue
		}
		if sep {
			b.WriteByte('.')
			sep = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
