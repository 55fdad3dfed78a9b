package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

// pushRequests is about how many requests one round of
// TestCrashDuringPushes makes when nothing is killed: four images of two
// layers pushed with ggcr and four chunked uploads.
const pushRequests = 80

// TestCrashDuringPushes kills "envreg serve" with SIGKILL at random points
// while clients push (chunked uploads, monolithic uploads, manifests), in a
// bounded loop. After every crash "envreg verify" finds the store
// consistent, and every tag that survived pulls whole with every blob
// matching its digest: no half-written upload is ever served.
//
// Each kill comes after a random number of answered requests, not after a
// time, so that the rounds prove the same on a fast and a loaded machine.
func TestCrashDuringPushes(t *testing.T) {
	data := publishAll(t)
	rng := mrand.New(mrand.NewPCG(3, 4))
	var tags []string
	for i := range 5 {
		s := startServer(t, data)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := range 4 {
				tag := fmt.Sprintf("v%d-%d", i, j)
				img, err := random.Image(256<<10, 2)
				if err != nil {
					return
				}
				_ = remote.Write(ref(t, s, "team/crash:"+tag), img)
				chunkedUpload(s, "team/crash", 3)
			}
		}()
		n := rng.IntN(pushRequests)
		t.Logf("round %d: killed after %d requests (%d asked)", i, s.killAfterAnswered(t, n, done), n)
		<-done
		if out, errOut, err := envregResult(t, "verify", "--data", data); err != nil {
			t.Fatalf("envreg verify after killing serve during pushes (round %d): %v\n%s\n%s", i, err, out, errOut)
		}
		for j := range 4 {
			tags = append(tags, fmt.Sprintf("v%d-%d", i, j))
		}
	}

	s := startServer(t, data)
	pulled := 0
	for _, tag := range tags {
		img, err := remote.Image(ref(t, s, "team/crash:"+tag))
		if err != nil {
			if !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") && !strings.Contains(err.Error(), "NAME_UNKNOWN") {
				t.Fatalf("team/crash:%s: %v", tag, err)
			}
			continue // the crash came before its manifest
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("team/crash:%s after the crashes: %v", tag, err)
		}
		pulled++
	}
	t.Logf("%d of %d pushed tags survived the crashes and pull whole", pulled, len(tags))
	if pulled == 0 {
		t.Fatal("no push completed in any round: the test proves nothing")
	}
	// Pushing still works after all that.
	if d := chunkedUpload(s, "team/crash", 3); d == "" {
		t.Fatal("a chunked upload after the crashes failed")
	}
}

// TestGCLeavesUploadsAlone: an upload in progress survives envreg gc
// (its chunks are not blobs yet) and completes afterwards; the blob then
// survives gc for the grace period.
func TestGCLeavesUploadsAlone(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	resp := do(t, http.MethodPost, s.url("/v2/team/gc/blobs/uploads/"), nil)
	loc := resp.Header.Get("Location")
	resp = do(t, http.MethodPatch, s.url(loc), blob[:1<<20], "Content-Range", fmt.Sprintf("0-%d", 1<<20-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
	loc = resp.Header.Get("Location")
	envreg(t, "gc", "--data", data, "--grace", "0")
	resp = do(t, http.MethodPut, s.url(loc+"?digest="+d.String()), blob[1<<20:], "Content-Range", fmt.Sprintf("%d-%d", 1<<20, len(blob)-1))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing the upload after gc: %d", resp.StatusCode)
	}
	r, body := s.get(t, "/v2/team/gc/blobs/"+d.String(), "")
	if r.StatusCode != http.StatusOK || !bytes.Equal(body, blob) {
		t.Fatalf("the uploaded blob: %d, %d bytes", r.StatusCode, len(body))
	}
	// A blob pushed but not yet named by any manifest survives gc for the
	// grace period (its manifest is coming); then a manifest names it.
	envreg(t, "gc", "--data", data)
	if r, _ := s.get(t, "/v2/team/gc/blobs/"+d.String(), ""); r.StatusCode != http.StatusOK {
		t.Fatalf("gc deleted a blob pushed a moment ago: %d", r.StatusCode)
	}
	// Without a grace period it goes, is unlinked, and a manifest naming it
	// is refused until it is pushed again.
	envreg(t, "gc", "--data", data, "--grace", "0")
	if r, _ := s.get(t, "/v2/team/gc/blobs/"+d.String(), ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("an unreferenced pushed blob after gc --grace 0: %d", r.StatusCode)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(blob))
	if r := do(t, http.MethodPut, s.url("/v2/team/gc/manifests/v1"), []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("a manifest naming a collected blob: %d, want 400 MANIFEST_BLOB_UNKNOWN", r.StatusCode)
	}
}

// chunkedUpload uploads a random blob in n PATCH chunks and a final PUT,
// returning its digest ("" when a request failed, as it may mid-crash).
func chunkedUpload(s *server, repo string, n int) digest.Digest {
	blob := make([]byte, n*(64<<10))
	rand.Read(blob)
	d := digest.FromBytes(blob)
	resp, err := send(http.MethodPost, s.url("/v2/"+repo+"/blobs/uploads/"), nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return ""
	}
	loc := resp.Header.Get("Location")
	size := len(blob) / n
	for i := range n {
		chunk := blob[i*size : (i+1)*size]
		resp, err = send(http.MethodPatch, s.url(loc), chunk, "Content-Range", fmt.Sprintf("%d-%d", i*size, (i+1)*size-1))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			return ""
		}
		loc = resp.Header.Get("Location")
	}
	resp, err = send(http.MethodPut, s.url(loc+"?digest="+d.String()), nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return ""
	}
	return d
}

// send makes one request and closes the body.
func send(method, url string, body []byte, header ...string) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// do is send for a test: a failed request fails it.
func do(t *testing.T, method, url string, body []byte, header ...string) *http.Response {
	t.Helper()
	resp, err := send(method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
