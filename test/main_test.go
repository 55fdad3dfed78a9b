package test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/test/fixtures"
)

// envregBin is the binary under test, built once by TestMain.
var envregBin string

func TestMain(m *testing.M) {
	if os.Getenv("ENVREG_TEST_HTTP_CLIENT") != "" {
		// This process is a client in another network namespace (netns_test.go).
		os.Exit(runHTTPClient())
	}
	dir, err := os.MkdirTemp("", "envreg-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	envregBin = filepath.Join(dir, "envreg")
	build := exec.Command("go", "build", "-o", envregBin, "../cmd/envreg")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building envreg:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// envreg runs the binary and returns its stdout; it fails the test on a
// non-zero exit.
func envreg(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := envregResult(t, args...)
	if err != nil {
		t.Fatalf("envreg %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// envregResult runs the binary and returns stdout, stderr and the exit error.
func envregResult(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, envregBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// publishFixture publishes one fixture package for both platforms into the
// embedded store under data, with the public flag form of "envreg publish".
func publishFixture(t *testing.T, data string, p fixtures.Package) {
	t.Helper()
	publishFixtureTo(t, []string{"--data", data}, p)
}

// publishFixtureTo publishes into the store that the storage flags name
// (--data DIR, or --catalog URL --blobs URL).
func publishFixtureTo(t *testing.T, storage []string, p fixtures.Package) {
	t.Helper()
	for _, plat := range fixturePlatforms {
		root := filepath.Join(t.TempDir(), "rootfs")
		if err := fixtures.WriteTree(root, p, plat); err != nil {
			t.Fatal(err)
		}
		envreg(t, publishArgs(storage, p, plat, root)...)
	}
}

// publishArgs is the "envreg publish" command line for one fixture
// package and platform, with every metadata flag of the public form.
func publishArgs(storage []string, p fixtures.Package, plat catalog.Platform, root string) []string {
	args := append(append([]string{"publish"}, storage...), "--name", p.Name, "--version", p.Version,
		"--platform", plat.String(), "--from-dir", root)
	for _, path := range p.Path {
		args = append(args, "--path", path)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		args = append(args, "--env", k+"="+p.Env[k])
	}
	for _, r := range p.Requires {
		args = append(args, "--requires", r)
	}
	return args
}

var fixturePlatforms = []catalog.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// publishAll publishes every fixture package into a new data directory.
func publishAll(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	for _, p := range fixtures.All() {
		publishFixture(t, data, p)
	}
	return data
}

// server is a running "envreg serve".
type server struct {
	data   string // the data directory
	host   string // 127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startServer runs "envreg serve" on a free loopback port over data and
// stops it (SIGTERM, expecting a clean exit) when the test ends.
func startServer(t *testing.T, data string, extra ...string) *server {
	t.Helper()
	return startServerWith(t, data, append([]string{"--data", data}, extra...)...)
}

// startServerWith runs "envreg serve" with the given storage flags.
func startServerWith(t testing.TB, data string, storage ...string) *server {
	t.Helper()
	if !slices.Contains(storage, "--data") {
		// A replica on only one remote store keeps upload sessions under
		// --data (on Redis + S3 they are shared): never under the test's
		// working directory.
		storage = append(slices.Clone(storage), "--data", data)
	}
	if slices.Contains(storage, "--seed") && !slices.ContainsFunc(storage, func(a string) bool { return strings.HasPrefix(a, "--seed-wait") }) {
		// A test that seeds expects the store complete once the server
		// listens, unless it asks for background seeding (--seed-wait=false).
		storage = append(slices.Clone(storage), "--seed-wait")
	}
	addrFile := filepath.Join(t.TempDir(), "addr")
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--log-level", "debug"}, storage...)
	cmd := exec.Command(envregBin, args...)
	s := &server{data: data, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{w: s.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	// Seeding with --seed-wait publishes real packages before listening
	// (about a minute here).
	wait := 30 * time.Second
	if slices.Contains(storage, "--seed-wait") {
		wait = 10 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			s.host = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("envreg serve exited before listening: %v\n%s", err, s.logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("envreg serve did not start listening within %s\n%s", wait, s.logs())
		}
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) logs() string {
	lw := s.cmd.Stderr.(*lockedWriter)
	return lw.String()
}

// waitLog reports whether the server logs a line containing text within
// 30 s; its stderr reaches the test through a pipe, so a line can come
// after the response it describes.
func (s *server) waitLog(t *testing.T, text string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return s.cmd.Stderr.(*lockedWriter).waitFor(ctx, func(log []byte) bool { return bytes.Contains(log, []byte(text)) }) == nil
}

// stop sends SIGTERM and expects a clean exit within 30s. It is safe to
// call more than once.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("envreg serve exited with %v after SIGTERM\n%s", err, s.logs())
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("envreg serve did not exit within 30s of SIGTERM\n%s", s.logs())
	}
}

// dataDir returns the server's data directory.
func (s *server) dataDir(*testing.T) string { return s.data }

// url returns http://host + path.
func (s *server) url(path string) string { return "http://" + s.host + path }

// get performs a GET with optional Accept header.
func (s *server) get(t *testing.T, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, buf.Bytes()
}

// remoteStores are a redis-server and an S3 server of the test's own, with
// the storage flags that name them (the S3 credentials are set in the
// environment, where envreg reads them).
type remoteStores struct {
	storage   []string
	stopRedis func()
	s3        *testservers.S3
}

// startRemoteStores starts them; prefix separates the blobs of tests that
// share nothing anyway.
func startRemoteStores(t testing.TB, prefix string) remoteStores {
	t.Helper()
	redisURL, stop := testservers.RedisServer(t)
	s3 := testservers.StartS3(t)
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return remoteStores{storage: []string{"--catalog", redisURL, "--blobs", s3.URL(prefix)}, stopRedis: stop, s3: s3}
}

// publishAllTo publishes every fixture package into the stores storage names.
func publishAllTo(t *testing.T, storage []string) {
	t.Helper()
	for _, p := range fixtures.All() {
		publishFixtureTo(t, storage, p)
	}
}
