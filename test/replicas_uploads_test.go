package test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

// sharedReplicas starts n "envreg serve" replicas on one Redis and one S3
// server, with the fixture packages published when publish is set. Each
// replica has a data directory of its own, which must stay unused.
func sharedReplicas(t *testing.T, prefix string, n int, publish bool) []*server {
	t.Helper()
	storage := startRemoteStores(t, prefix).storage
	if publish {
		publishAllTo(t, storage)
	}
	var rs []*server
	for i := range n {
		data := filepath.Join(t.TempDir(), fmt.Sprintf("unused-%d", i))
		rs = append(rs, startServerWith(t, data, storage...))
	}
	return rs
}

// noLocalUploads checks that a replica kept no upload session on its disk.
func noLocalUploads(t *testing.T, s *server) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(s.data, "uploads")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("replica %s has a local upload directory (%v): sessions must be in the shared stores", s.host, err)
	}
}

// TestReplicasChunkedUpload: a chunked upload whose requests alternate
// between two replicas on Redis + S3 (no session affinity): the POST on a,
// the chunks on b and a, the status and an out-of-order chunk on b, the
// PUT on a. Once with chunks of the size the replicas ask for
// (OCI-Chunk-Min-Length, committed server-side), once with small chunks
// (streamed through the blob store's check).
func TestReplicasChunkedUpload(t *testing.T) {
	rs := sharedReplicas(t, "chunked", 2, false)
	a, b := rs[0], rs[1]
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"min-length chunks", 0}, {"small chunks", 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, http.MethodPost, a.url("/v2/team/app/blobs/uploads/"), nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST on a: %d", resp.StatusCode)
			}
			minLen, err := strconv.Atoi(resp.Header.Get("OCI-Chunk-Min-Length"))
			if err != nil || minLen != 5<<20 {
				t.Fatalf("OCI-Chunk-Min-Length %q, want %d (S3's minimum part size)", resp.Header.Get("OCI-Chunk-Min-Length"), 5<<20)
			}
			size := tc.chunk
			if size == 0 {
				size = minLen
			}
			blob := make([]byte, 2*size+54321)
			rand.Read(blob)
			d := digest.FromBytes(blob)
			loc := resp.Header.Get("Location")

			loc = patch(t, b, loc, blob, 0, size)
			loc = patch(t, a, loc, blob, size, 2*size)
			resp = do(t, http.MethodGet, b.url(loc), nil)
			if want := fmt.Sprintf("0-%d", 2*size-1); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != want {
				t.Fatalf("status on b: %d Range %q, want 204 %q", resp.StatusCode, resp.Header.Get("Range"), want)
			}
			resp = do(t, http.MethodPatch, b.url(loc), blob[:size], "Content-Range", fmt.Sprintf("0-%d", size-1))
			if want := fmt.Sprintf("0-%d", 2*size-1); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Range") != want {
				t.Fatalf("out-of-order chunk on b: %d Range %q, want 416 %q", resp.StatusCode, resp.Header.Get("Range"), want)
			}
			if r, _ := b.get(t, "/v2/team/app/blobs/"+d.String(), ""); r.StatusCode != http.StatusNotFound {
				t.Fatalf("the blob is visible before the PUT: %d", r.StatusCode)
			}
			resp = do(t, http.MethodPut, a.url(loc+"?digest="+d.String()), blob[2*size:],
				"Content-Range", fmt.Sprintf("%d-%d", 2*size, len(blob)-1))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT on a: %d", resp.StatusCode)
			}
			for _, s := range rs {
				if r, body := s.get(t, "/v2/team/app/blobs/"+d.String(), ""); r.StatusCode != http.StatusOK || !bytes.Equal(body, blob) {
					t.Fatalf("the blob from %s: %d, %d bytes", s.host, r.StatusCode, len(body))
				}
			}
			if resp := do(t, http.MethodGet, b.url(loc), nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("the finished session on b: %d, want 404", resp.StatusCode)
			}
		})
	}
	// The common push (POST, one PATCH, PUT, with ggcr) on one replica,
	// the pull on the other.
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, a, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref(t, b, "team/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatal(err)
	}
	noLocalUploads(t, a)
	noLocalUploads(t, b)
}

// patch sends blob[from:to] as a chunk to s and returns the next Location.
func patch(t *testing.T, s *server, loc string, blob []byte, from, to int) string {
	t.Helper()
	resp := do(t, http.MethodPatch, s.url(loc), blob[from:to], "Content-Range", fmt.Sprintf("%d-%d", from, to-1),
		"Content-Type", "application/octet-stream")
	if want := fmt.Sprintf("0-%d", to-1); resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != want {
		t.Fatalf("PATCH %d-%d on %s: %d Range %q, want 202 %q", from, to-1, s.host, resp.StatusCode, resp.Header.Get("Range"), want)
	}
	return resp.Header.Get("Location")
}

// TestReplicasConcurrentPatch: two replicas PATCH one session at the same
// time. One request gets the session and 202 once its body is in; the
// other 429 TOOMANYREQUESTS at once, without waiting for its body.
func TestReplicasConcurrentPatch(t *testing.T) {
	rs := sharedReplicas(t, "concurrent", 2, false)
	resp := do(t, http.MethodPost, rs[0].url("/v2/team/app/blobs/uploads/"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	// Bodies of 1 MiB, held back: the server answers a request whose body
	// it will not read without waiting for it only above 256 KiB.
	const size = 1 << 20
	type result struct {
		i    int
		resp *http.Response
		err  error
	}
	results := make(chan result, 2)
	bodies := make([]*io.PipeWriter, 2)
	for i, s := range rs {
		pr, pw := io.Pipe()
		bodies[i] = pw
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, s.url(loc), pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		req.Header.Set("Content-Range", fmt.Sprintf("0-%d", size-1))
		req.Header.Set("Content-Type", "application/octet-stream")
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			results <- result{i, resp, err}
		}()
	}
	status := func(r result) string {
		if r.err != nil {
			return r.err.Error()
		}
		return r.resp.Status
	}
	first := <-results
	if first.err != nil || first.resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the first answer (replica %d): %s, want 429 while the other replica holds the session", first.i, status(first))
	}
	bodies[first.i].CloseWithError(errors.New("answered"))
	winner := 1 - first.i
	chunk := make([]byte, size)
	rand.Read(chunk)
	if _, err := bodies[winner].Write(chunk); err != nil {
		t.Fatal(err)
	}
	bodies[winner].Close()
	second := <-results
	if second.err != nil || second.resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the holder's PATCH (replica %d): %s, want 202", second.i, status(second))
	}
	if resp := do(t, http.MethodGet, rs[first.i].url(loc), nil); resp.Header.Get("Range") != fmt.Sprintf("0-%d", size-1) {
		t.Fatalf("status on the refused replica: %d Range %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	d := digest.FromBytes(chunk)
	if resp := do(t, http.MethodPut, rs[first.i].url(loc+"?digest="+d.String()), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT on the refused replica: %d", resp.StatusCode)
	}
}

// roundRobin is a reverse proxy on loopback that sends each request to
// the next of its replicas, as a load balancer without session affinity
// does, and records which replicas served each upload session.
type roundRobin struct {
	host     string
	targets  []string
	mu       sync.Mutex
	next     int
	sessions map[string]map[string]bool // upload id -> replica hosts
}

func newRoundRobin(t *testing.T, replicas ...*server) *roundRobin {
	t.Helper()
	rr := &roundRobin{sessions: map[string]map[string]bool{}}
	for _, s := range replicas {
		rr.targets = append(rr.targets, s.host)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(&url.URL{Scheme: "http", Host: rr.pick(pr.In)})
		pr.Out.Host = pr.In.Host
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rr.host = ln.Addr().String()
	return rr
}

func (rr *roundRobin) pick(r *http.Request) string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	target := rr.targets[rr.next%len(rr.targets)]
	rr.next++
	if _, id, ok := strings.Cut(r.URL.Path, "/blobs/uploads/"); ok && id != "" {
		if rr.sessions[id] == nil {
			rr.sessions[id] = map[string]bool{}
		}
		rr.sessions[id][target] = true
	}
	return target
}

// hopped returns how many upload sessions were served by more than one
// replica.
func (rr *roundRobin) hopped() (hopped, all int) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for _, replicas := range rr.sessions {
		if len(replicas) > 1 {
			hopped++
		}
	}
	return hopped, len(rr.sessions)
}
