package debian

import "testing"

func TestReleaseFields(t *testing.T) {
	signed := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\nVersion: 12\nCodename: bookworm-security\nSHA256:\n 0123 10 main/binary-amd64/Packages\nVersion: 99\n-----BEGIN PGP SIGNATURE-----\n"
	if o, v, c := releaseFields([]byte(signed)); o != "Debian" || v != "12" || c != "bookworm-security" {
		t.Errorf("signed Release: origin %q, version %q, codename %q; want Debian, 12, bookworm-security", o, v, c)
	}
	plain := "Origin: envreg-test\nSuite: bookworm\n"
	if o, v, _ := releaseFields([]byte(plain)); o != "envreg-test" || v != "" {
		t.Errorf("test Release: origin %q, version %q", o, v)
	}
	for _, tc := range []struct{ data, want string }{
		{signed, "12"},
		{"Origin: Debian\nVersion: 13.8\nCodename: trixie\n", "13"},
		// testing has no version yet: its codename.
		{"Origin: Debian\nSuite: testing\nCodename: forky\n", "forky"},
		{"Origin: Debian\nSuite: testing-security\nCodename: forky-security\n", "forky"},
		{plain, ""},
		{"Origin: Debian\nSuite: testing\n", ""},
		{"Origin: Debian\nVersion: twelve\n", ""},
	} {
		if got := releaseOf([]byte(tc.data)); got != tc.want {
			t.Errorf("releaseOf(%q) = %q, want %q", tc.data, got, tc.want)
		}
	}
}
