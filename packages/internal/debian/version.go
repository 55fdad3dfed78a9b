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

// Compare orders Debian versions as dpkg does (deb-version(7)): by epoch
// numerically, then upstream version, then revision, each compared in
// alternating runs of non-digits (where '~' sorts before everything, even
// the end of the string, and letters before other characters) and of
// digits (numerically). It returns -1, 0 or +1.
func Compare(a, b Version) int {
	if c := compareNumeric(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	if c := compareFragment(a.Upstream, b.Upstream); c != 0 {
		return c
	}
	return compareFragment(a.Revision, b.Revision)
}

// compareNumeric compares runs of digits ("" is 0) without overflow.
func compareNumeric(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareFragment is dpkg's verrevcmp.
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ca, cb := order(a), order(b)
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			a, b = a[1:], b[1:]
		}
		i, j := digits(a), digits(b)
		if c := compareNumeric(a[:i], b[:j]); c != 0 {
			return c
		}
		a, b = a[i:], b[j:]
	}
	return 0
}

// order is the weight of the first character of s in a non-digit run:
// '~' lowest, then the end of the run, then letters, then the rest.
func order(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z':
		return int(s[0])
	}
	return int(s[0]) + 256
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
