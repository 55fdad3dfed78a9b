package debian_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages/internal/debian"
)

func TestSemver(t *testing.T) {
	tests := []struct {
		debian, want string
	}{
		{"8.2.36-1~deb12u1", "8.2.36+1.deb12u1"},
		{"8.2.32-1~deb12u1", "8.2.32+1.deb12u1"},
		{"1:1.35.0-4", "1.35.0+4"},                               // epoch dropped
		{"1:1.35.0-4+deb12u1+b1", "1.35.0+4.deb12u1.b1"},         // binNMU
		{"1.4+really1.3.40-4+deb12u1", "1.3.40+4.deb12u1"},       // the +really convention
		{"2:1.0+really0.9.2-1", "0.9.2+1"},                       // epoch and +really
		{"18.20.4+dfsg-1~deb12u3", "18.20.4+dfsg.1.deb12u3"},     // upstream suffix
		{"1:1.2.13.dfsg-1", "1.2.13+dfsg.1"},                     // suffix after a dot
		{"0.5.12-2", "0.5.12+2"},                                 //
		{"9.1-1", "9.1.0+1"},                                     // missing PATCH
		{"12.4+deb12u15", "12.4.0+deb12u15"},                     // native package
		{"2026f-0+deb12u1", "2026.0.0+f.0.deb12u1"},              // letters right after the number
		{"0~20171227-0.3+deb12u1", "0.0.0+20171227.0.3.deb12u1"}, // tilde
		{"3.1-20221030-2", "3.1.0+20221030.2"},                   // '-' inside upstream
		{"1.0.8.7-1", "1.0.8+7.1"},                               // fourth component
		{"08.010.0020-1", "8.10.20+1"},                           // leading zeros
		{"6.4", "6.4.0"},                                         // nothing left over
		{"2.36-9+deb12u14", "2.36.0+9.deb12u14"},                 //
		{"1.3.4.20200120-3.1", "1.3.4+20200120.3.1"},             //
		{"20250419~deb12u2", "20250419.0.0+deb12u2"},             //
		{"1.0.18-1+deb12u1", "1.0.18+1.deb12u1"},                 //
		{"3.0.22-1~deb12u2", "3.0.22+1.deb12u2"},                 //
		{"1:2.5.1-4", "2.5.1+4"},                                 //
		{"2:93", "93.0.0"},                                       //
		{"72.1-3+deb12u1", "72.1.0+3.deb12u1"},                   //
		{"1.0.8-5+b1", "1.0.8+5.b1"},                             //
		{"5.7-0.5~deb12u1", "5.7.0+0.5.deb12u1"},                 //
		{"12.2.0-14+deb12u1", "12.2.0+14.deb12u1"},               //
		{"3.0043+nmu1+deb12u1", "3.43.0+nmu1.deb12u1"},           // leading zeros in MINOR
		{"1.34+dfsg-1.2+deb12u1", "1.34.0+dfsg.1.2.deb12u1"},     //
		{"0.0.17+nmu1", "0.0.17+nmu1"},                           //
		{"10.42-1+deb12u2", "10.42.0+1.deb12u2"},                 //
	}
	for _, tc := range tests {
		t.Run(tc.debian, func(t *testing.T) {
			v, err := debian.ParseVersion(tc.debian)
			if err != nil {
				t.Fatal(err)
			}
			if v.String() != tc.debian {
				t.Errorf("String() = %q, want %q", v.String(), tc.debian)
			}
			sv, err := v.Semver()
			if err != nil {
				t.Fatal(err)
			}
			if sv.String() != tc.want {
				t.Errorf("Semver() = %s, want %s", sv, tc.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	v, err := debian.ParseVersion("1:1.4+really1.3.40-4+deb12u1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (debian.Version{Epoch: "1", Upstream: "1.4+really1.3.40", Revision: "4+deb12u1"}); v != want {
		t.Errorf("ParseVersion = %+v, want %+v", v, want)
	}
	for _, bad := range []string{"", "abc-1", "x:1.0", ":1.0", "1.0-", "1.0-a_b", "1.0 2", "1.0/2", "-1"} {
		if _, err := debian.ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), "Debian version") {
			t.Errorf("ParseVersion(%q): %v does not say what it parsed", bad, err)
		}
	}
	// +really with nothing numeric after it cannot give a version.
	v, _ = debian.ParseVersion("1.0+reallyx-1")
	if _, err := v.Semver(); err == nil {
		t.Error("Semver of 1.0+reallyx-1 succeeded")
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		in, name, version, err string
	}{
		{in: "php8.2-cli=8.2.36-1~deb12u1", name: "php8.2-cli", version: "8.2.36-1~deb12u1"},
		{in: "libstdc++6", name: "libstdc++6"},
		{in: " nodejs ", name: "nodejs"},
		{in: "PHP", err: "invalid Debian package"},
		{in: "a", err: "invalid Debian package"},
		{in: "php=", err: "package php"},
		{in: "php=x1", err: "package php"},
		{in: "php; rm -rf /", err: "invalid Debian package"},
		{in: "-o", err: "invalid Debian package"},
	}
	for _, tc := range tests {
		r, err := debian.ParseRequest(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRequest(%q) = %v, %v; want error containing %q", tc.in, r, err, tc.err)
			}
			continue
		}
		if err != nil || r.Name != tc.name || r.Version != tc.version {
			t.Errorf("ParseRequest(%q) = %+v, %v", tc.in, r, err)
		}
	}
}

// TestCompare checks Compare on known orders and, where dpkg is installed,
// against `dpkg --compare-versions` for every pair.
func TestCompare(t *testing.T) {
	// Ascending.
	ordered := []string{
		"1.0~rc1", "1.0", "1.0-1~deb12u1", "1.0-1", "1.0-1+b1", "1.0-1+deb12u1", "1.0-2",
		"1.0a", "1.0+dfsg-1", "1.0.1", "1.2.40-4+deb12u1", "1.4+really1.3.40-4+deb12u1", "8.2.32-1~deb12u1",
		"8.2.36-1~deb12u1", "8.2.36-1~deb12u2", "8.2.36-1", "8.4.16-1", "18.20.4+dfsg-1~deb12u3",
		"99999999999999999999999", "1:0.1", "2:0.0",
	}
	for i, a := range ordered {
		va, err := debian.ParseVersion(a)
		if err != nil {
			t.Fatal(err)
		}
		for j, b := range ordered {
			vb, _ := debian.ParseVersion(b)
			want := cmpInt(i, j)
			if got := debian.Compare(va, vb); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Logf("dpkg not installed: not cross-checked")
		return
	}
	for _, a := range ordered {
		for _, b := range ordered {
			va, _ := debian.ParseVersion(a)
			vb, _ := debian.ParseVersion(b)
			lt := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil
			eq := exec.Command("dpkg", "--compare-versions", a, "eq", b).Run() == nil
			want := 1
			if lt {
				want = -1
			} else if eq {
				want = 0
			}
			if got := debian.Compare(va, vb); got != want {
				t.Errorf("Compare(%s, %s) = %d, dpkg says %d", a, b, got, want)
			}
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
