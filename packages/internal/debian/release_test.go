package debian

import "testing"

func TestReleaseFields(t *testing.T) {
	signed := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\nVersion: 12\nCodename: bookworm-security\nSHA256:\n 0123 10 main/binary-amd64/Packages\nVersion: 99\n-----BEGIN PGP SIGNATURE-----\n"
	if o, v := releaseFields([]byte(signed)); o != "Debian" || v != "12" {
		t.Errorf("signed Release: origin %q, version %q; want Debian, 12", o, v)
	}
	plain := "Origin: envreg-test\nSuite: bookworm\n"
	if o, v := releaseFields([]byte(plain)); o != "envreg-test" || v != "" {
		t.Errorf("test Release: origin %q, version %q", o, v)
	}
}
