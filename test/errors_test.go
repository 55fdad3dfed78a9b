package test

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The regressions of issue 16's error model, against the real server.

// TestPushSpecialFileIsInvalid: a package pushed with a block device or a
// FIFO in its layer answered 500 UNKNOWN (after the client retried for
// 5 s): the refusal matched packages.ErrRefused, but the registry looked
// only for *RefusedError. It is 400 MANIFEST_INVALID naming the entry.
func TestPushSpecialFileIsInvalid(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "data"))
	for i, h := range []tar.Header{
		{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8},
		{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o644},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	} {
		t.Run(h.Name, func(t *testing.T) {
			img := layerImage(t, func(tw *tar.Writer) error {
				if err := tw.WriteHeader(&tar.Header{Name: filepath.Dir(h.Name) + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
					return err
				}
				return tw.WriteHeader(&h)
			})
			repo := fmt.Sprintf("packages/special%d", i)
			err := remote.Write(ref(t, s, repo+":1.0.0"), img, remote.WithRetryStatusCodes())
			refusedPush(t, s, repo, "1.0.0", err, h.Name)
		})
	}
}

// TestDotSegmentsAreNotRedirected: the router's path cleaning answered a
// path with dot segments with 301 to another resource. The path as sent
// gets the spec's error for it.
func TestDotSegmentsAreNotRedirected(t *testing.T) {
	s := startServer(t, publishAll(t))
	for _, tc := range []struct{ path, code string }{
		{"/v2/env/blobs/sha256:..%2F..%2Fetc%2Fpasswd", "DIGEST_INVALID"},
		{"/v2/env/manifests/..%2F..%2Fetc%2Fpasswd", "MANIFEST_UNKNOWN"},
		{"/v2/env/blobs/../../../etc/passwd", "NAME_UNKNOWN"},
		{"/v2/env/./manifests/latest", "NAME_UNKNOWN"},
		{"/v2/../v2/env/tags/list", "NAME_UNKNOWN"},
	} {
		// Sent as written: no client-side cleaning.
		conn, err := net.Dial("tcp", s.host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.path, s.host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode/100 != 4 || len(body.Errors) == 0 || body.Errors[0].Code != tc.code {
			t.Errorf("GET %s: %d %v (Location %q), want 4xx %s", tc.path, resp.StatusCode, body.Errors, resp.Header.Get("Location"), tc.code)
		}
	}
}

// TestBackendDownIs503: with the catalog's Redis gone, every /v2/ and
// /api/v1 request answered 500; it is 503 with the spec's UNAVAILABLE
// code (the API's UNAVAILABLE) and Retry-After, and the message gives no
// address away.
func TestBackendDownIs503(t *testing.T) {
	rs := startRemoteStores(t, "down")
	publishAllTo(t, rs.storage)
	s := startServerWith(t, filepath.Join(t.TempDir(), "local"), rs.storage...)
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, body)
	}
	rs.stopRedis()
	// A replica serves its cached catalog for its maximum staleness (three
	// poll intervals) after Redis went away; then every request says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := s.get(t, "/v2/env/tags/list", "")
		if resp.StatusCode != http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tags/list still answered from the catalog 10s after Redis stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, path := range []string{"/v2/env/manifests/php-8.1", "/v2/env/tags/list", "/v2/_catalog", "/api/v1/stacks", "/api/v1/stacks/env"} {
		resp, body := s.get(t, path, "")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(body), `"UNAVAILABLE"`) || strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("GET %s with Redis down: %d, Retry-After %q, %s; want 503 UNAVAILABLE with Retry-After and no address",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}
