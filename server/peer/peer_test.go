package peer

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for remote, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9:1": true, "[::1]:443": true, "[::ffff:127.0.0.1]:80": true,
		"::1": true, "127.0.0.1": true,
		"10.0.0.1:5000": false, "[2001:db8::1]:443": false, "[::ffff:10.0.0.1]:80": false,
		"localhost:5000": false, "": false, "@": false,
	} {
		if got := Loopback(remote); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", remote, got, want)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.0.0.1": true, "127.1.2.3:80": true, "[::1]:5000": true, "[::1]": true, "::1": true,
		"localhost:5000": true, "localhost": true, "LocalHost:1": true, "[::ffff:127.0.0.1]:5000": true,
		"attacker.example:5000": false, "attacker.example": false, "localhost.attacker.example": false,
		"127.0.0.1.nip.io:5000": false, "10.0.0.1:5000": false, "[2001:db8::1]:5000": false, "": false,
		"localhost.:5000": false, "evil-localhost": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestLocalAndSameOrigin(t *testing.T) {
	req := func(remote, host string, header ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v2/x/blobs/uploads/", nil)
		r.RemoteAddr, r.Host = remote, host
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	for _, tc := range []struct {
		name       string
		r          *http.Request
		local      string // "" allowed, else a fragment of the reason
		sameOrigin string
	}{
		{"curl", req("127.0.0.1:4000", "127.0.0.1:5000"), "", ""},
		{"localhost", req("[::1]:4000", "localhost:5000"), "", ""},
		{"same-origin page", req("127.0.0.1:4000", "127.0.0.1:5000", "Origin", "http://127.0.0.1:5000", "Sec-Fetch-Site", "same-origin"), "", ""},
		{"typed address", req("127.0.0.1:4000", "localhost:5000", "Sec-Fetch-Site", "none"), "", ""},
		{"remote peer", req("203.0.113.7:4000", "127.0.0.1:5000"), "client address 203.0.113.7:4000 is not a loopback address", ""},
		{"X-Forwarded-For", req("203.0.113.7:4000", "127.0.0.1:5000", "X-Forwarded-For", "127.0.0.1"), "not a loopback address", ""},
		{"DNS rebinding", req("127.0.0.1:4000", "attacker.example:5000", "Origin", "http://attacker.example:5000", "Sec-Fetch-Site", "same-origin"),
			`host "attacker.example:5000", which is not a loopback address or localhost`, ""},
		{"cross-site text/plain POST", req("127.0.0.1:4000", "127.0.0.1:5000", "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"),
			"", "another site (Sec-Fetch-Site: cross-site)"},
		{"other port on localhost", req("127.0.0.1:4000", "localhost:5000", "Origin", "http://localhost:8080", "Sec-Fetch-Site", "same-site"),
			"", "another site (Sec-Fetch-Site: same-site)"},
		{"Origin without Sec-Fetch-Site", req("127.0.0.1:4000", "127.0.0.1:5000", "Origin", "https://attacker.example"),
			"", "another origin (Origin: https://attacker.example)"},
		{"opaque origin", req("127.0.0.1:4000", "127.0.0.1:5000", "Origin", "null"), "", "another origin (Origin: null)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				what string
				err  error
				want string
			}{{"Local", Local(tc.r), tc.local}, {"SameOrigin", SameOrigin(tc.r), tc.sameOrigin}} {
				var nl *NotLocalError
				switch {
				case c.want == "" && c.err != nil:
					t.Errorf("%s: %v, want nil", c.what, c.err)
				case c.want != "" && (!errors.As(c.err, &nl) || !strings.Contains(nl.Reason, c.want)):
					t.Errorf("%s: %v, want a *NotLocalError saying %q", c.what, c.err, c.want)
				}
			}
		})
	}
}
