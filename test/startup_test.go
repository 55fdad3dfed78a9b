package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestServeRefusesCostlyBcrypt: an htpasswd entry of bcrypt cost 31 hung
// serve at start-up (it hashes a dummy password at the first entry's cost:
// days of work) and SIGTERM did not stop it. It is refused at load, naming
// the line.
func TestServeRefusesCostlyBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	costly := string(h[:4]) + "31" + string(h[6:]) // only the cost field is read at load
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("# users\nroot:"+costly+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := envregResult(t, "serve", "--data", filepath.Join(t.TempDir(), "data"), "--addr", "127.0.0.1:0", "--auth-htpasswd", file)
	if err == nil {
		t.Fatal("serve started with a bcrypt cost of 31")
	}
	for _, want := range []string{file, "line 2", `"root"`, "bcrypt cost 31", "at most 14"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve's error does not say %q:\n%s", want, stderr)
		}
	}
}

// TestServeWarnsACLDoesNotGovernAnonymousPulls: with an ACL and anonymous
// pull on (the default), serve warns at start-up that the ACL does not
// restrict anonymous pulls; with anonymous pull off it does not.
func TestServeWarnsACLDoesNotGovernAnonymousPulls(t *testing.T) {
	pw := htpasswd(t, "ci", "ci-pw")
	acl := filepath.Join(t.TempDir(), "acl.yaml")
	if err := os.WriteFile(acl, []byte("access:\n  - user: ci\n    repositories: [\"team/**\"]\n    actions: [pull, push]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	const warning = "the ACL does not restrict anonymous pulls"

	on := startServer(t, data, "--auth-htpasswd", pw, "--auth-acl", acl)
	on.stop(t)
	if line := grepLines(on.logs(), warning); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "--auth-anonymous-pull=false") {
		t.Errorf("no start-up warning with an ACL and anonymous pull on:\n%s", on.logs())
	}

	off := startServer(t, data, "--auth-htpasswd", pw, "--auth-acl", acl, "--auth-anonymous-pull=false")
	off.stop(t)
	if strings.Contains(off.logs(), warning) {
		t.Errorf("the warning with anonymous pull off:\n%s", off.logs())
	}
}
