package test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestServeWarnsFileLimit: a --max-connections the open-file limit cannot
// hold (each connection a descriptor, a blob download two) is said at
// start-up; the default is not.
func TestServeWarnsFileLimit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const warning = "--max-connections is above what the open-file limit allows"
	s := startServer(t, data, "--max-connections", "100000000")
	s.stop(t)
	if line := grepLines(s.logs(), warning); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "max_connections=100000000") {
		t.Errorf("no warning for --max-connections 100000000:\n%s", s.logs())
	}
	s = startServer(t, data)
	s.stop(t)
	if limit := openFileLimitOf(t); limit >= 2*4096+64 && strings.Contains(s.logs(), warning) {
		t.Errorf("a warning with the default --max-connections and an open-file limit of %d:\n%s", limit, s.logs())
	}
}

// openFileLimitOf is the hard open-file limit, which the server raises
// its own to.
func openFileLimitOf(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	return lim.Max
}
