package auth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseHtpasswd(t *testing.T) {
	h := bcryptHash(t, "secret") // $2a$
	y := "$2y$" + strings.TrimPrefix(h, "$2a$")
	b := "$2b$" + strings.TrimPrefix(bcryptHash(t, "other"), "$2a$")
	data := "# users\n\n  \nalice:" + h + "\r\n# bob left\nbob:" + y + "\ncarol:" + b + "  \n"
	u, err := parseHtpasswd([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.len(), 3; got != want {
		t.Fatalf("users: got %d, want %d", got, want)
	}
	for _, tc := range []struct {
		user, pw string
		want     bool
	}{
		{"alice", "secret", true},
		{"alice", "Secret", false},
		{"bob", "secret", true}, // $2y$ (Apache htpasswd -B)
		{"carol", "other", true},
		{"carol", "", false},
		{"dave", "secret", false},
		{"# bob left", "secret", false},
	} {
		if got := u.check(tc.user, tc.pw); got != tc.want {
			t.Errorf("check(%q, %q): got %v, want %v", tc.user, tc.pw, got, tc.want)
		}
	}
}

func TestParseHtpasswdRefuses(t *testing.T) {
	good := "alice:" + bcryptHash(t, "pw") + "\n# comment\n"
	for _, tc := range []struct {
		name, line string
		want       []string
	}{
		{"md5", "bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", []string{"line 3", `"bob"`, "MD5", "htpasswd -B"}},
		{"sha", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", []string{"line 3", `"bob"`, "SHA-1", "htpasswd -B"}},
		{"crypt", "bob:rqXexS6ZhobKA", []string{"line 3", `"bob"`, "crypt", "htpasswd -B"}},
		{"plain", "bob:hunter2", []string{"line 3", `"bob"`, "plain", "htpasswd -B"}},
		{"sha512-crypt", "bob:$6$salt$abc", []string{"line 3", "SHA-crypt"}},
		{"malformed bcrypt", "bob:$2y$10$short", []string{"line 3", `"bob"`, "malformed bcrypt"}},
		{"no colon", "bob", []string{"line 3", "user:hash"}},
		{"empty user", ":" + bcryptHash(t, "x"), []string{"line 3", "user:hash"}},
		{"duplicate", "alice:" + bcryptHash(t, "x"), []string{"line 3", `"alice"`, "twice"}},
		{"cost 31", "bob:" + withCost(bcryptHash(t, "x"), 31), []string{"line 3", `"bob"`, "bcrypt cost 31", "at most 14"}},
		{"cost 15", "bob:" + withCost(bcryptHash(t, "x"), 15), []string{"line 3", "bcrypt cost 15"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHtpasswd([]byte(good + tc.line + "\n"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// New names the file.
	p := writeFile(t, "htpasswd", good+"bob:$apr1$x$y\n")
	_, err := New(Config{Htpasswd: p})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("New: got %v, want an error naming %s and line 3", err, p)
	}
	_, err = New(Config{Htpasswd: p + ".missing"})
	if err == nil || !strings.Contains(err.Error(), p+".missing") {
		t.Fatalf("New with a missing file: got %v, want an error naming it", err)
	}
}

func TestBasic(t *testing.T) {
	a := newAuth(t, Config{AnonymousPull: false})
	s := newServer(t, a)
	u := s.URL + "/v2/team/app/manifests/latest"

	r := do(t, http.MethodGet, u, basic("alice", "alice-pw"))
	if r.status != http.StatusOK || r.body != "ok" {
		t.Fatalf("good credentials: status %d, body %s", r.status, r.body)
	}
	if got := a.cache.len(); got != 1 {
		t.Fatalf("cache after a good login: %d entries, want 1", got)
	}
	// Again: served from the cache, same answer.
	if r := do(t, http.MethodPut, u, basic("alice", "alice-pw")); r.status != http.StatusOK {
		t.Fatalf("good credentials again (push, no ACL): status %d, body %s", r.status, r.body)
	}

	for _, tc := range []struct{ name, auth, msg string }{
		{"wrong password", basic("alice", "nope"), "invalid username or password"},
		{"other user's password", basic("alice", "ci-pw"), "invalid username or password"},
		{"unknown user", basic("mallory", "alice-pw"), "invalid username or password"},
		{"empty", basic("", ""), "invalid username or password"},
		{"malformed", "Basic !!!", "malformed basic credentials"},
		{"other scheme", "Digest username=alice", `unsupported authorization scheme "Digest"; use Basic or Bearer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodGet, u, tc.auth)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.status)
			}
			if _, msg := r.errorMessage(t); msg != tc.msg {
				t.Errorf("message %q, want %q", msg, tc.msg)
			}
			if want := `Bearer realm="` + s.URL + `/auth/token",service="envreg",scope="repository:team/app:pull"`; r.challenge != want {
				t.Errorf("challenge %q, want %q", r.challenge, want)
			}
		})
	}
	if got := a.cache.len(); got != 1 {
		t.Fatalf("cache after failed logins: %d entries, want 1 (failures are not cached)", got)
	}
}

func TestCredCacheExpiresAndIsBounded(t *testing.T) {
	clk := newClock()
	c := newCredCache(time.Minute, 3)
	k := c.key("alice", "pw")
	if k == c.key("alice", "pw2") || k == c.key("alic", "epw") {
		t.Fatal("distinct credentials share a cache key")
	}
	c.add(k, clk.Now())
	if !c.hit(k, clk.Now().Add(59*time.Second)) {
		t.Fatal("miss within the TTL")
	}
	if c.hit(k, clk.Now().Add(time.Minute)) {
		t.Fatal("hit after the TTL")
	}
	for i := range 10 {
		c.add(c.key("u", string(rune('a'+i))), clk.Now())
	}
	if got := c.len(); got > 3 {
		t.Fatalf("cache holds %d entries, bound is 3", got)
	}
	if !c.hit(c.key("u", "j"), clk.Now()) {
		t.Fatal("the newest entry was evicted")
	}
}

// withCost rewrites the cost field of a bcrypt hash: a hash of cost 31
// cannot be made in a test's lifetime, and only the field is read when
// the file is loaded.
func withCost(hash string, cost int) string {
	return hash[:4] + fmt.Sprintf("%02d", cost) + hash[6:]
}

func TestParseHtpasswdAcceptsCostUpToMax(t *testing.T) {
	// Second: the dummy hash is made at the first entry's cost.
	u, err := parseHtpasswd([]byte("alice:" + bcryptHash(t, "pw") + "\nbob:" + withCost(bcryptHash(t, "pw"), MaxBcryptCost) + "\n"))
	if err != nil || u.len() != 2 {
		t.Fatalf("cost %d: %v", MaxBcryptCost, err)
	}
}
