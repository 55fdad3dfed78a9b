package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostileRequests sends traversal-shaped names and digests, unknown
// algorithms, malformed ranges, enormous headers and bodies, invalid JSON
// and a slow-loris client to the real server. Every answer is a client
// error (never 200 with foreign content, never 5xx), no file outside the
// data directory is read, and the server stays healthy.
func TestHostileRequests(t *testing.T) {
	data := publishAll(t)
	// A secret next to the data directory that traversal would reach.
	secret := "envreg-secret-" + filepath.Base(t.TempDir())
	if err := os.WriteFile(filepath.Join(filepath.Dir(data), "secret"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, data, "--read-header-timeout", "1s")

	raw := func(t *testing.T, request string) (int, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		// Write while reading: the server may answer (413) and close before
		// it has read an enormous request, and the rest of the write then
		// meets a reset. The answer is what is checked.
		wrote := make(chan error, 1)
		go func() { _, err := io.WriteString(c, request); wrote <- err }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading the answer to %q: %v (writing it: %v)", request[:min(len(request), 80)], err, <-wrote)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" }

	cases := []struct{ name, request string }{
		{"dotdot name", get("/v2/../../secret/manifests/latest")},
		{"encoded dotdot name", get("/v2/%2e%2e/%2e%2e/secret/manifests/latest")},
		{"encoded slash digest", get("/v2/env/blobs/sha256:..%2F..%2F..%2Fsecret")},
		{"dotdot digest", get("/v2/env/blobs/sha256:../../secret")},
		{"dotdot manifest digest", get("/v2/env/manifests/sha256:../../../secret")},
		{"unknown algorithm", get("/v2/env/blobs/md5:d41d8cd98f00b204e9800998ecf8427e")},
		{"sha256 too short", get("/v2/env/blobs/sha256:abc")},
		{"uppercase hex", get("/v2/env/blobs/sha256:" + strings.Repeat("A", 64))},
		{"traversal tag", get("/v2/env/manifests/..%2F..%2Fsecret")},
		{"huge tag", get("/v2/env/manifests/" + strings.Repeat("php-8_", 2000))},
		{"nul in tag", get("/v2/env/manifests/php%00")},
		{"bad range", "GET /v2/env/blobs/sha256:" + strings.Repeat("0", 64) + " HTTP/1.1\r\nHost: x\r\nRange: bytes=abc-\r\nConnection: close\r\n\r\n"},
		{"enormous header", "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\nConnection: close\r\n\r\n"},
		{"invalid JSON", "POST /api/v1/stacks/env/resolve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"req\": ["},
		{"enormous body", "POST /api/v1/stacks/env/resolve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + itoa(2<<20) + "\r\nConnection: close\r\n\r\n{\"requirements\": {\"php\": \"" + strings.Repeat("9", 2<<20-len(`{"requirements": {"php": ""}}`)) + "\"}}"},
		{"push", "PUT /v2/env/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := raw(t, tc.request)
			if code < 300 || code >= 500 {
				t.Errorf("status %d, want a redirect or client error; body %.200s", code, body)
			}
			if strings.Contains(body, secret) {
				t.Errorf("the answer contains a file outside the data directory")
			}
		})
	}

	// Slow loris: a client that never finishes its headers is cut off by
	// the read-header timeout instead of holding a connection forever.
	c, err := net.Dial("tcp", s.host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(c) // returns when the server closes the connection
	if waited := time.Since(start); err != nil || waited > 10*time.Second {
		t.Errorf("slow client held the connection %s (err %v); want it closed after the 1s header timeout", waited, err)
	}

	// Still healthy.
	if resp, _ := s.get(t, "/v2/", ""); resp.StatusCode != 200 {
		t.Errorf("GET /v2/ after the hostile requests: %d", resp.StatusCode)
	}
}
