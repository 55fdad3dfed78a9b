package registry_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type errorBody struct {
	Errors []struct {
		Code    string
		Message string
		Detail  json.RawMessage
	}
}

// TestCalls is a table of requests over a real registry (ggcr TestCalls style).
func TestCalls(t *testing.T) {
	p := newPublished(t)
	s := p.server(t)
	zero := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		name        string
		method      string
		path        string
		accept      string
		status      int
		contentType string
		code        string // OCI error code, for errors
		bodyHas     string
	}{
		{name: "base", method: "GET", path: "/v2/", status: 200, contentType: "application/json", bodyHas: "{}"},
		{name: "base head", method: "HEAD", path: "/v2/", status: 200},
		{name: "index by tag", method: "GET", path: "/v2/env/manifests/php-8.2_node-20", status: 200, contentType: ocispec.MediaTypeImageIndex, bodyHas: `"io.envreg.package.php":"8.2.36"`},
		{name: "head by tag", method: "HEAD", path: "/v2/env/manifests/php-8.2_node-20", status: 200, contentType: ocispec.MediaTypeImageIndex},
		{name: "latest", method: "GET", path: "/v2/env/manifests/latest", status: 200, contentType: ocispec.MediaTypeImageIndex, bodyHas: `"io.envreg.package.base":"12.0.0"`},
		{name: "bare names", method: "GET", path: "/v2/env/manifests/php_gm", status: 200, bodyHas: `"io.envreg.package.graphicsmagick":"1.3.42"`},
		{name: "docker list", method: "GET", path: "/v2/env/manifests/php-8.1", accept: "application/vnd.docker.distribution.manifest.list.v2+json", status: 200, contentType: "application/vnd.docker.distribution.manifest.list.v2+json"},
		{name: "unsatisfiable", method: "GET", path: "/v2/env/manifests/php-9", status: 404, code: "MANIFEST_UNKNOWN", bodyHas: `"available":["8.1.27","8.2.32","8.2.36"]`},
		{name: "unsatisfiable head", method: "HEAD", path: "/v2/env/manifests/php-9", status: 404},
		{name: "unknown package", method: "GET", path: "/v2/env/manifests/ruby-3", status: 404, code: "MANIFEST_UNKNOWN", bodyHas: "ruby"},
		{name: "bad version", method: "GET", path: "/v2/env/manifests/php-8.x", status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "unknown repo", method: "GET", path: "/v2/other/manifests/latest", status: 404, code: "NAME_UNKNOWN"},
		{name: "unknown manifest digest", method: "GET", path: "/v2/env/manifests/" + zero, status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "invalid manifest digest", method: "GET", path: "/v2/env/manifests/sha256:abc", status: 400, code: "DIGEST_INVALID"},
		{name: "unknown blob", method: "GET", path: "/v2/env/blobs/" + zero, status: 404, code: "BLOB_UNKNOWN"},
		{name: "unknown blob head", method: "HEAD", path: "/v2/env/blobs/" + zero, status: 404},
		{name: "unknown algorithm", method: "GET", path: "/v2/env/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", status: 400, code: "DIGEST_INVALID"},
		{name: "blob in unknown repo", method: "GET", path: "/v2/other/blobs/" + zero, status: 404, code: "NAME_UNKNOWN"},
		{name: "push manifest", method: "PUT", path: "/v2/env/manifests/x", status: 405, code: "UNSUPPORTED"},
		{name: "delete blob", method: "DELETE", path: "/v2/env/blobs/" + zero, status: 405, code: "UNSUPPORTED"},
		{name: "start upload", method: "POST", path: "/v2/env/blobs/uploads/", status: 405, code: "UNSUPPORTED"},
		{name: "tags", method: "GET", path: "/v2/env/tags/list", status: 200, bodyHas: `"php-8.2.36"`},
		{name: "tags n=0", method: "GET", path: "/v2/env/tags/list?n=0", status: 200, bodyHas: `"tags":[]`},
		{name: "tags bad n", method: "GET", path: "/v2/env/tags/list?n=-1", status: 400, code: "UNSUPPORTED"},
		{name: "referrers", method: "GET", path: "/v2/env/referrers/" + zero, status: 200, contentType: ocispec.MediaTypeImageIndex, bodyHas: `"manifests":[]`},
		{name: "referrers bad digest", method: "GET", path: "/v2/env/referrers/sha256:zz", status: 400, code: "DIGEST_INVALID"},
		{name: "catalog", method: "GET", path: "/v2/_catalog", status: 200, bodyHas: `{"repositories":["env"]}`},
		{name: "no route", method: "GET", path: "/nope", status: 404, code: "NAME_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD returned a body: %q", body)
			}
			if tc.method == "HEAD" && resp.Header.Get("Content-Length") == "" {
				t.Errorf("HEAD without Content-Length")
			}
			if tc.status == 200 && strings.Contains(tc.path, "/manifests/") {
				if !strings.HasPrefix(resp.Header.Get("Docker-Content-Digest"), "sha256:") {
					t.Errorf("Docker-Content-Digest = %q", resp.Header.Get("Docker-Content-Digest"))
				}
			}
			if tc.code != "" {
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) != 1 {
					t.Fatalf("error body %s: %v", body, err)
				}
				if eb.Errors[0].Code != tc.code || eb.Errors[0].Message == "" {
					t.Errorf("error %+v, want code %s with a message", eb.Errors[0], tc.code)
				}
				if resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("error Content-Type %q", resp.Header.Get("Content-Type"))
				}
			}
			if !strings.Contains(string(body), tc.bodyHas) {
				t.Errorf("body %s does not contain %s", body, tc.bodyHas)
			}
		})
	}
}

func TestUnsatisfiableDetail(t *testing.T) {
	s := newPublished(t).server(t)
	resp, err := s.Client().Get(s.URL + "/v2/env/manifests/php-9_node-20")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		Errors []struct {
			Code, Message string
			Detail        struct {
				Package, Constraint string
				Available           []string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatal(err)
	}
	e := eb.Errors[0]
	if e.Message != "no version of php satisfies 9 (available: 8.1.27, 8.2.32, 8.2.36)" ||
		e.Detail.Package != "php" || e.Detail.Constraint != "9" || len(e.Detail.Available) != 3 {
		t.Errorf("error = %+v", e)
	}
}
