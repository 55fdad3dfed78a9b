package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// A client on another host, without another host: a network namespace
// joined to the root namespace by a veth pair with addresses in
// 10.213.0.0/16. The server listens on the root end's address; the client
// runs inside the namespace (ip netns exec), so the server sees a
// non-loopback peer. The test binary itself is the client
// (ENVREG_TEST_HTTP_CLIENT, see TestMain), so nothing beyond ip is needed.

// netns is a namespace with a veth pair; hostAddr is the root end's
// address, clientAddr the namespace end's.
type netns struct {
	name, hostAddr, clientAddr string
}

var netnsSeq atomic.Int32

// newNetns creates the namespace and the pair, and removes both when the
// test ends. It needs root and iproute2's ip: without them it skips, and
// fails when CI=true.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "a client on another address needs a network namespace, which needs root (run as root, or in CI)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "ip (iproute2) is not installed; .ci/run installs it")
	}
	// A /30 per process and namespace, so that parallel runs do not meet.
	slot := (os.Getpid()*4 + int(netnsSeq.Add(1))) % 16384
	var n netns
	var hostDev string
	for range 16 {
		slot = (slot + 1) % 16384
		prefix := fmt.Sprintf("10.213.%d.%d", slot/64, slot%64*4)
		if out, _ := exec.Command("ip", "-o", "addr", "show", "to", prefix+"/30").Output(); len(bytes.TrimSpace(out)) > 0 {
			continue // taken
		}
		n = netns{name: fmt.Sprintf("envreg-test-%d", slot),
			hostAddr: fmt.Sprintf("10.213.%d.%d", slot/64, slot%64*4+1), clientAddr: fmt.Sprintf("10.213.%d.%d", slot/64, slot%64*4+2)}
		hostDev = fmt.Sprintf("evr%dh", slot) // at most 15 characters
		break
	}
	if n.name == "" {
		t.Fatal("no free /30 in 10.213.0.0/16 after 16 tries")
	}
	clientDev := strings.TrimSuffix(hostDev, "h") + "c"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", n.name)
	t.Cleanup(func() {
		// Deleting one end of the pair deletes the other.
		for _, args := range [][]string{{"link", "del", hostDev}, {"netns", "del", n.name}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
				t.Errorf("cleanup: ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
	ip("link", "add", hostDev, "type", "veth", "peer", "name", clientDev)
	ip("link", "set", clientDev, "netns", n.name)
	ip("addr", "add", n.hostAddr+"/30", "dev", hostDev)
	ip("link", "set", hostDev, "up")
	ip("netns", "exec", n.name, "ip", "addr", "add", n.clientAddr+"/30", "dev", clientDev)
	ip("netns", "exec", n.name, "ip", "link", "set", clientDev, "up")
	ip("netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return &n
}

// clientRequest and clientResponse are what the test binary, run as the
// client inside the namespace, reads on stdin and writes on stdout.
type clientRequest struct {
	Method, URL string
	Header      map[string]string
	Body        string
	BasicUser   string
	BasicPass   string
}

type clientResponse struct {
	Status int
	Header http.Header
	Body   string
	Err    string
}

// runHTTPClient is the client side (TestMain calls it when
// ENVREG_TEST_HTTP_CLIENT is set): one request, the answer as JSON.
func runHTTPClient() int {
	var in clientRequest
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "reading the request:", err)
		return 2
	}
	var out clientResponse
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, in.Method, in.URL, strings.NewReader(in.Body))
	if err == nil {
		for k, v := range in.Header {
			req.Header.Set(k, v)
		}
		if in.BasicUser != "" {
			req.SetBasicAuth(in.BasicUser, in.BasicPass)
		}
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out = clientResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
		}
	}
	if err != nil {
		out.Err = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// do sends one request from inside the namespace.
func (n *netns) do(t *testing.T, in clientRequest) clientResponse {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(in)
	cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", n.name, self)
	cmd.Env = append(os.Environ(), "ENVREG_TEST_HTTP_CLIENT=1")
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("client in %s: %v\n%s", n.name, err, stderr.String())
	}
	var out clientResponse
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("client in %s: %v\n%s\n%s", n.name, err, stdout.String(), stderr.String())
	}
	if out.Err != "" {
		t.Fatalf("%s %s from %s: %s", in.Method, in.URL, n.clientAddr, out.Err)
	}
	return out
}

// run runs a command inside the namespace with extra environment
// variables, and returns its stdout, stderr and exit error.
func (n *netns) run(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestAPIFromAnotherHost: the provisioning API from a client that is not
// on the registry's host. Without authentication it is refused (and so are
// writes), while pulls work; with --auth-htpasswd the registry's users,
// tokens and ACL decide, so a control plane elsewhere can resolve.
func TestAPIFromAnotherHost(t *testing.T) {
	ns := newNetns(t)
	data := publishAll(t)
	resolveBody := `{"requirements":{"php":"^8.2","nodejs":"^20"}}`
	jsonHeader := map[string]string{"Content-Type": "application/json"}

	t.Run("without authentication", func(t *testing.T) {
		s := startServer(t, data, "--addr", ns.hostAddr+":0")
		if !strings.HasPrefix(s.host, ns.hostAddr+":") {
			t.Fatalf("server listens on %s, want %s", s.host, ns.hostAddr)
		}
		r := ns.do(t, clientRequest{Method: "POST", URL: s.url("/api/v1/stacks/env/resolve"), Header: jsonHeader, Body: resolveBody})
		code, msg := errorOf(t, []byte(r.Body))
		if r.Status != 403 || code != "FORBIDDEN" || !strings.Contains(msg, "client address "+ns.clientAddr+":") {
			t.Errorf("resolve from %s without authentication: %d %s %q", ns.clientAddr, r.Status, code, msg)
		}
		r = ns.do(t, clientRequest{Method: "POST", URL: s.url("/v2/team/app/blobs/uploads/")})
		if code, msg := errorOf(t, []byte(r.Body)); r.Status != 403 || code != "DENIED" || !strings.Contains(msg, "is not a loopback address") {
			t.Errorf("upload from %s without authentication: %d %s %q", ns.clientAddr, r.Status, code, msg)
		}
		if r := ns.do(t, clientRequest{Method: "GET", URL: s.url("/v2/env/manifests/php-8.2")}); r.Status != 200 {
			t.Errorf("pull from %s without authentication: %d %s", ns.clientAddr, r.Status, r.Body)
		}
	})

	t.Run("with authentication", func(t *testing.T) {
		dir := t.TempDir()
		var users strings.Builder
		for _, u := range []string{"platform", "other"} {
			h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			users.WriteString(u + ":" + string(h) + "\n")
		}
		acl := "access:\n  - user: platform\n    repositories: [env]\n    actions: [pull]\n  - user: other\n    repositories: [\"other/**\"]\n    actions: [pull, push]\n"
		for name, content := range map[string]string{"htpasswd": users.String(), "acl.yaml": acl} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s := startServer(t, data, "--addr", ns.hostAddr+":0", "--auth-htpasswd", filepath.Join(dir, "htpasswd"),
			"--auth-acl", filepath.Join(dir, "acl.yaml"), "--auth-anonymous-pull=false")
		resolve := func(in clientRequest) clientResponse {
			in.Method, in.URL, in.Header, in.Body = "POST", s.url("/api/v1/stacks/env/resolve"), jsonHeader, resolveBody
			return ns.do(t, in)
		}

		// No credentials: 401 with the challenge that says where to log in.
		r := resolve(clientRequest{})
		challenge := fmt.Sprintf(`Bearer realm="http://%s/auth/token",service="envreg",scope="repository:env:pull"`, s.host)
		if code, _ := errorOf(t, []byte(r.Body)); r.Status != 401 || code != "UNAUTHORIZED" || r.Header.Get("WWW-Authenticate") != challenge {
			t.Errorf("anonymous resolve: %d %s %q, want 401 with %s", r.Status, code, r.Header.Get("WWW-Authenticate"), challenge)
		}

		// Basic credentials of a user the ACL lets pull env.
		r = resolve(clientRequest{BasicUser: "platform", BasicPass: "platform-pw"})
		var out struct{ Reference, Digest string }
		if err := json.Unmarshal([]byte(r.Body), &out); r.Status != 200 || err != nil || out.Reference != s.host+"/env@"+out.Digest {
			t.Fatalf("resolve as platform from %s: %d %v %s", ns.clientAddr, r.Status, err, r.Body)
		}

		// A token from the token endpoint, as docker login gets one.
		tr := ns.do(t, clientRequest{Method: "GET", URL: s.url("/auth/token?service=envreg&scope=" + url.QueryEscape("repository:env:pull")),
			BasicUser: "platform", BasicPass: "platform-pw"})
		var tok struct{ Token string }
		if err := json.Unmarshal([]byte(tr.Body), &tok); tr.Status != 200 || err != nil || tok.Token == "" {
			t.Fatalf("token for platform: %d %s", tr.Status, tr.Body)
		}
		r = ns.do(t, clientRequest{Method: "POST", URL: s.url("/api/v1/stacks/env/resolve"),
			Header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok.Token}, Body: resolveBody})
		var again struct{ Digest string }
		if err := json.Unmarshal([]byte(r.Body), &again); r.Status != 200 || err != nil || again.Digest != out.Digest {
			t.Errorf("resolve with a token: %d %v %s, want digest %s", r.Status, err, r.Body, out.Digest)
		}

		// A user the ACL does not let pull env.
		r = resolve(clientRequest{BasicUser: "other", BasicPass: "other-pw"})
		if code, msg := errorOf(t, []byte(r.Body)); r.Status != 403 || code != "FORBIDDEN" || !strings.Contains(msg, `user "other" may not pull repository "env"`) {
			t.Errorf("resolve as other: %d %s %q", r.Status, code, msg)
		}
		// The catalog routes need only a login.
		if r := ns.do(t, clientRequest{Method: "GET", URL: s.url("/api/v1/stacks"), BasicUser: "other", BasicPass: "other-pw"}); r.Status != 200 {
			t.Errorf("stacks as other: %d %s", r.Status, r.Body)
		}

		// envreg resolve --registry, from there, with the user's password.
		stdout, stderr, err := ns.run(t, []string{"ENVREG_REGISTRY_PASSWORD=platform-pw"}, envregBin,
			"resolve", "--registry", "http://"+s.host, "--registry-user", "platform", "--json", "php=^8.2", "nodejs=^20")
		if err != nil || !strings.Contains(stdout, `"reference": "`+s.host+`/env@`+out.Digest+`"`) {
			t.Errorf("envreg resolve --registry-user platform: %v\n%s\n%s", err, stdout, stderr)
		}
		_, stderr, err = ns.run(t, nil, envregBin, "resolve", "--registry", "http://"+s.host, "php=^8.2")
		if err == nil || !strings.Contains(stderr, "authentication required") {
			t.Errorf("envreg resolve without a user: %v\n%s", err, stderr)
		}

		// What the platform pinned pulls from there, with the same user.
		m := ns.do(t, clientRequest{Method: "GET", URL: s.url("/v2/env/manifests/" + out.Digest), BasicUser: "platform", BasicPass: "platform-pw",
			Header: map[string]string{"Accept": "application/vnd.oci.image.index.v1+json"}})
		if m.Status != 200 || m.Header.Get("Docker-Content-Digest") != out.Digest {
			t.Errorf("pull of the pinned index: %d %s", m.Status, m.Header.Get("Docker-Content-Digest"))
		}
	})
}
