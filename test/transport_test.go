package test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Transport limits against the real binary: stalled request bodies, stalled
// downloads and too many connections. The server runs with short timeouts
// (flags) so the tests are quick; they wait for events (the server closing
// a connection, a gauge in /metrics, a log line), never for a fixed time,
// except where noted.

// gauge reads a metric without labels from /metrics.
func gauge(t *testing.T, s *server, c *http.Client, metric string) int {
	t.Helper()
	resp, err := c.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), metric+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %q", metric, v)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", metric)
	return 0
}

// waitUntil polls cond until it holds, failing the test after limit (a
// bound for a hung server, not a timing assertion).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openFiles counts the server process's file descriptors.
func openFiles(t *testing.T, s *server) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		t.Skipf("counting the server's open files: %v", err)
	}
	return len(fds)
}

// stalled is a raw connection that sent part of a request and then
// nothing; done is closed when the server has closed it, with what the
// server sent in answer.
type stalled struct {
	conn   net.Conn
	done   chan struct{}
	answer string
}

func stall(t *testing.T, host, request string) *stalled {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	st := &stalled{conn: c, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		b, _ := io.ReadAll(c) // until the server closes it
		st.answer = string(b)
	}()
	return st
}

// TestSlowLoris opens 300 connections that stall in the middle of a
// request (headers never finished, a body announced and never sent, on
// GET /v2/, the token endpoint, blob uploads and upload chunks), then shows
// that the server still serves other clients and that it answers and
// closes every stalled connection, giving back their file descriptors.
func TestSlowLoris(t *testing.T) {
	pw := htpasswd(t, "ci", "ci-pw")
	s := startServer(t, publishAll(t), "--auth-htpasswd", pw,
		"--read-header-timeout", "2s", "--body-timeout", "2s", "--stall-timeout", "2s")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:ci-pw"))
	mc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	baseline := openFiles(t, s)

	// Upload sessions for the stalled PATCH requests.
	var sessions []string
	for range 60 {
		resp := do(t, "POST", s.url("/v2/team/app/blobs/uploads/"), nil, "Authorization", basic)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("starting an upload: %d", resp.StatusCode)
		}
		sessions = append(sessions, resp.Header.Get("Location"))
	}

	blob := make([]byte, 1000)
	rand.Read(blob)
	kinds := []func(i int) string{
		func(int) string { return "GET /v2/ HTTP/1.1\r\nHost: " + s.host + "\r\n" }, // headers never end
		func(int) string { return "GET /v2/ HTTP/1.1\r\nHost: " + s.host + "\r\nContent-Length: 10\r\n\r\n" },
		func(int) string {
			return "POST /auth/token HTTP/1.1\r\nHost: " + s.host + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=pass"
		},
		func(int) string {
			return "POST /v2/team/app/blobs/uploads/?digest=" + digest.FromBytes(blob).String() + " HTTP/1.1\r\nHost: " + s.host +
				"\r\nAuthorization: " + basic + "\r\nContent-Length: 100000\r\n\r\n" + string(blob)
		},
		func(i int) string { // i/5: a session of its own for each PATCH (the fifth kind)
			return "PATCH " + sessions[(i/5)%len(sessions)] + " HTTP/1.1\r\nHost: " + s.host + "\r\nAuthorization: " + basic +
				"\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n" + string(blob)
		},
	}
	const n = 300
	conns := make([]*stalled, n)
	for i := range n {
		conns[i] = stall(t, s.host, kinds[i%len(kinds)](i))
	}
	waitUntil(t, time.Minute, "the server holding the stalled connections", func() bool {
		return gauge(t, s, mc, "envreg_http_connections_open") >= n
	})

	// Other clients are served meanwhile.
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2_node-20", "application/vnd.oci.image.index.v1+json"); resp.StatusCode != 200 {
		t.Errorf("a pull while %d connections stall: %d %s", n, resp.StatusCode, body)
	}
	if resp := do(t, "POST", s.url("/api/v1/stacks/env/resolve"), []byte(`{"requirements":{"php":"^8.2"}}`),
		"Content-Type", "application/json", "Authorization", basic); resp.StatusCode != 200 {
		t.Errorf("an API call while %d connections stall: %d", n, resp.StatusCode)
	}
	t.Logf("%d connections open at the server after the other clients were served", gauge(t, s, mc, "envreg_http_connections_open"))

	// Every stalled connection is answered and closed by the server.
	for i, c := range conns {
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			t.Fatalf("stalled connection %d (%q…) still open after a minute", i, strings.SplitN(kinds[i%len(kinds)](i), "\r\n", 2)[0])
		}
	}
	answered := map[string]int{}
	for _, c := range conns {
		status, _, _ := strings.Cut(c.answer, "\r\n")
		answered[status]++
	}
	t.Logf("answers to the stalled connections: %v", answered)
	http.DefaultClient.CloseIdleConnections() // the test's own keep-alive connections
	waitUntil(t, time.Minute, "the server's connections back to one", func() bool {
		return gauge(t, s, mc, "envreg_http_connections_open") <= 1
	})
	waitUntil(t, time.Minute, "the server's open files back to the baseline", func() bool {
		return openFiles(t, s) <= baseline+2
	})
	// A client that stalls is the client's fault, not the server's.
	if logs := s.logs(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors logged for stalled clients:\n%s", grepLines(logs, "level=ERROR"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}

// TestMaxConnections: beyond --max-connections, a client waits to be
// accepted until a connection closes.
func TestMaxConnections(t *testing.T) {
	const max = 5
	s := startServer(t, publishAll(t), "--max-connections", strconv.Itoa(max), "--body-timeout", "1h")
	mc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	var held []*stalled
	for range max - 1 { // one slot is the metrics client's
		held = append(held, stall(t, s.host, "GET /v2/ HTTP/1.1\r\nHost: "+s.host+"\r\nContent-Length: 10\r\n\r\n"))
	}
	waitUntil(t, time.Minute, "the server holding the stalled connections", func() bool {
		return gauge(t, s, mc, "envreg_http_connections_open") == max
	})
	if got := gauge(t, s, mc, "envreg_http_connections_max"); got != max {
		t.Errorf("envreg_http_connections_max %d, want %d", got, max)
	}

	extra := stall(t, s.host, "GET /v2/ HTTP/1.1\r\nHost: "+s.host+"\r\nConnection: close\r\n\r\n")
	// A fixed wait, but one that can only miss a broken cap, never fail a
	// working one: the extra client must not be answered while all slots
	// are held.
	select {
	case <-extra.done:
		t.Fatalf("a client beyond --max-connections %d was served: %q", max, extra.answer)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].conn.Close() // a slot frees
	select {
	case <-extra.done:
	case <-time.After(time.Minute):
		t.Fatal("the waiting client was not served after a connection closed")
	}
	if !strings.HasPrefix(extra.answer, "HTTP/1.1 200 ") {
		t.Errorf("the waiting client got %q", extra.answer)
	}
}

// TestStalledDownload: a client that stops reading a blob download is
// dropped after --stall-timeout, with sendfile(2) and with copying.
func TestStalledDownload(t *testing.T) {
	data := publishAll(t)
	blob := make([]byte, 64<<20) // more than loopback socket buffers hold
	rand.Read(blob)
	d := digest.FromBytes(blob)
	for _, mode := range []string{"always", "never"} {
		t.Run("sendfile "+mode, func(t *testing.T) {
			// 3s: a client that reads may pause longer than 1s under the
			// race detector on a loaded machine.
			s := startServer(t, data, "--stall-timeout", "3s", "--sendfile", mode)
			mc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
			if resp := do(t, "POST", s.url("/v2/big/blob/blobs/uploads/?digest="+d.String()), blob); resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload: %d", resp.StatusCode)
			}
			c, err := net.Dial("tcp", s.host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /v2/big/blob/blobs/"+d.String()+" HTTP/1.1\r\nHost: "+s.host+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			http.DefaultClient.CloseIdleConnections() // the upload's
			// Read nothing until the server gives up on the connection.
			waitUntil(t, time.Minute, "the server dropping the stalled download", func() bool {
				return gauge(t, s, mc, "envreg_http_connections_open") <= 1
			})
			n, _ := io.Copy(io.Discard, c)
			if n >= int64(len(blob)) {
				t.Errorf("the stalled client still received %d bytes, the whole blob", n)
			}
			t.Logf("the stalled client received %d of %d bytes before the server closed", n, len(blob))
			// A client that reads gets the whole blob.
			resp, err := http.Get(s.url("/v2/big/blob/blobs/" + d.String()))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := digest.FromReader(resp.Body)
			if resp.StatusCode != 200 || err != nil || got != d {
				t.Errorf("a reading client: %d, %v, digest %s", resp.StatusCode, err, got)
			}
		})
	}
}

// TestClientGoneMidUpload: a client that disconnects in the middle of a
// PATCH is its own failure: an info-level line with a 400, not a 500
// logged as an error.
func TestClientGoneMidUpload(t *testing.T) {
	s := startServer(t, publishAll(t))
	resp := do(t, "POST", s.url("/v2/team/app/blobs/uploads/"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	c, err := net.Dial("tcp", s.host)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	if _, err := io.WriteString(c, "PATCH "+loc+" HTTP/1.1\r\nHost: "+s.host+"\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n"+string(chunk)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !s.waitLog(t, `msg="request failed" method=PATCH `) {
		t.Fatalf("the failed PATCH is not in the log:\n%s", s.logs())
	}
	got := regexp.MustCompile(`(?m)^.*msg="request failed" method=PATCH .*$`).FindString(s.logs())
	for _, want := range []string{"level=INFO", "status=400", "code=BLOB_UPLOAD_INVALID", "closed the connection before the end of the body"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %s", got, want)
		}
	}
	// The session survives, and says how much it holds.
	if resp := do(t, "GET", s.url(loc), nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("upload status after the broken PATCH: %d", resp.StatusCode)
	}
}
