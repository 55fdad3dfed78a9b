package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// TestLoopbackDefaultRefusesWebPages: without authentication, writes and
// the provisioning API trust this host, and the operator's browser is on
// this host. A web page it shows must not write through it: not by a
// CORS-simple request (text/plain POST, which needs no preflight), and not
// through DNS rebinding (the page's own name, re-pointed at 127.0.0.1,
// arrives in Host). Non-browser clients, same-origin pages and pulls keep
// working.
func TestLoopbackDefaultRefusesWebPages(t *testing.T) {
	s := startServer(t, publishAll(t))
	_, port, _ := net.SplitHostPort(s.host)
	rebound := "attacker.example:" + port

	// A legitimate push from this host.
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push from a loopback client: %v", err)
	}
	pushed, _ := img.Digest()

	planted := []byte("planted by a web page")
	plantedDigest := digest.FromBytes(planted)
	own := []byte("uploaded by the registry's own page")
	ownDigest := digest.FromBytes(own)
	crossSite := []string{"Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"}
	fromRebound := []string{"Origin", "http://" + rebound, "Sec-Fetch-Site", "same-origin"} // what a rebound page sends
	for _, tc := range []struct {
		name, method, path string
		body               string
		header             []string
		host               string // default: the server's address
		status             int
		code, why          string // error code and a fragment of its message
	}{
		{"CORS-simple blob upload", "POST", "/v2/team/app/blobs/uploads/?digest=" + plantedDigest.String(), string(planted),
			append([]string{"Content-Type", "text/plain"}, crossSite...), "", 403, "DENIED", "web page of another site (Sec-Fetch-Site: cross-site)"},
		{"cross-origin upload without Sec-Fetch-Site", "POST", "/v2/team/app/blobs/uploads/", "",
			[]string{"Content-Type", "text/plain", "Origin", "http://localhost:8080"}, "", 403, "DENIED", "another origin (Origin: http://localhost:8080)"},
		{"rebound blob upload", "POST", "/v2/team/app/blobs/uploads/?digest=" + plantedDigest.String(), string(planted),
			append([]string{"Content-Type", "text/plain"}, fromRebound...), rebound, 403, "DENIED", "DNS rebinding"},
		{"rebound delete", "DELETE", "/v2/team/app/manifests/" + pushed.String(), "", fromRebound, rebound, 403, "DENIED", "DNS rebinding"},
		{"rebound package push", "PUT", "/v2/packages/evil/manifests/1.0.0", `{"schemaVersion":2}`,
			append([]string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, fromRebound...), rebound, 403, "DENIED", "DNS rebinding"},
		{"rebound resolve", "POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`,
			append([]string{"Content-Type", "text/plain"}, fromRebound...), rebound, 403, "FORBIDDEN", "DNS rebinding"},
		{"rebound API read", "GET", "/api/v1/stacks", "", fromRebound, rebound, 403, "FORBIDDEN", "DNS rebinding"},
		{"cross-site resolve", "POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`, crossSite, "", 403, "FORBIDDEN", "another site"},
		{"cross-site page resolve", "GET", "/?stack=env&requirements=php", "", []string{"Sec-Fetch-Site", "cross-site"}, "", 403, "FORBIDDEN", "another site"},
		// What keeps working.
		{"cross-site pull", "GET", "/v2/team/app/manifests/v1", "", crossSite, "", 200, "", ""},
		{"link to the catalog page from another site", "GET", "/", "", []string{"Sec-Fetch-Site", "cross-site"}, "", 200, "", ""},
		{"the registry's own page uploading", "POST", "/v2/team/app/blobs/uploads/?digest=" + ownDigest.String(), string(own),
			[]string{"Origin", "http://" + s.host, "Sec-Fetch-Site", "same-origin"}, "", 201, "", ""},
		{"curl addressing localhost", "POST", "/v2/team/app/blobs/uploads/", "", nil, "localhost:" + port, 202, "", ""},
		{"curl resolving", "POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`, []string{"Content-Type", "application/json"}, "", 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.url(tc.path), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d\n%.400s", resp.StatusCode, tc.status, body)
			}
			if tc.code == "" {
				return
			}
			code, msg := errorOf(t, body)
			if code != tc.code || !strings.Contains(msg, tc.why) || !strings.Contains(msg, "loopback clients only") {
				t.Errorf("error %s %q, want %s saying %q", code, msg, tc.code, tc.why)
			}
		})
	}

	// Nothing a page sent was stored; what was pushed is still there.
	if resp := do(t, "GET", s.url("/v2/team/app/blobs/"+plantedDigest.String()), nil); resp.StatusCode != 404 {
		t.Errorf("the planted blob: %d, want 404", resp.StatusCode)
	}
	if resp := do(t, "HEAD", s.url("/v2/team/app/manifests/"+pushed.String()), nil); resp.StatusCode != 200 {
		t.Errorf("the pushed manifest after a rebound delete: %d, want 200", resp.StatusCode)
	}
	if resp := do(t, "HEAD", s.url("/v2/packages/evil/manifests/1.0.0"), nil); resp.StatusCode != 404 {
		t.Errorf("the rebound package push: %d, want 404", resp.StatusCode)
	}
}

// errorOf reads the first error of an OCI error body, or the API's error.
func errorOf(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var b struct {
		Errors []struct{ Code, Message string }
		Code   string
		// The API's body.
		Message string
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&b); err != nil {
		t.Fatalf("not an error body: %v\n%s", err, body)
	}
	if len(b.Errors) > 0 {
		return b.Errors[0].Code, b.Errors[0].Message
	}
	return b.Code, b.Message
}
