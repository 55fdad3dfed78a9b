package test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

func TestContentNegotiation(t *testing.T) {
	s := startServer(t, publishAll(t))
	path := "/v2/env/manifests/php-8.2_node-20"
	cases := []struct {
		accept, wantType string
	}{
		{"", ocispec.MediaTypeImageIndex},
		{ocispec.MediaTypeImageIndex + ", " + dockerList, ocispec.MediaTypeImageIndex},
		{dockerList + ", " + dockerManifest, dockerList},
		{dockerManifest, dockerManifest},
		{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageManifest},
	}
	for _, tc := range cases {
		resp, body := s.get(t, path, tc.accept)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.wantType {
			t.Errorf("Accept %q: %d %s, want 200 %s", tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantType)
			continue
		}
		var doc struct {
			MediaType string
			Config    *ocispec.Descriptor
			Layers    []ocispec.Descriptor
		}
		if err := json.Unmarshal(body, &doc); err != nil || doc.MediaType != tc.wantType {
			t.Errorf("Accept %q: body mediaType %q (%v)", tc.accept, doc.MediaType, err)
		}
		if tc.wantType == dockerManifest {
			if doc.Config == nil || doc.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
				t.Errorf("docker manifest config %+v", doc.Config)
			}
			for _, l := range doc.Layers {
				if l.MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
					t.Errorf("docker manifest layer media type %s", l.MediaType)
				}
			}
		}
		// The digest header names exactly these bytes, and the document is
		// then pullable by that digest.
		d := resp.Header.Get("Docker-Content-Digest")
		resp2, body2 := s.get(t, "/v2/env/manifests/"+d, "")
		if resp2.StatusCode != 200 || string(body2) != string(body) || resp2.Header.Get("Content-Type") != tc.wantType {
			t.Errorf("GET by digest %s: %d %s, same bytes %v", d, resp2.StatusCode, resp2.Header.Get("Content-Type"), string(body2) == string(body))
		}
		if resp.Header.Get("Content-Length") != itoa(len(body)) {
			t.Errorf("Content-Length %s for %d bytes", resp.Header.Get("Content-Length"), len(body))
		}
	}

	// HEAD carries the same headers as GET and no body.
	get, _ := s.get(t, path, "")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, s.url(path), nil)
	head, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Docker-Content-Digest", "ETag"} {
		if head.Header.Get(h) != get.Header.Get(h) || head.Header.Get(h) == "" {
			t.Errorf("HEAD %s = %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
}

// TestBlobRange fetches a layer whole and by range in each --sendfile
// mode: a loopback client gets a copied body under "never" and a
// sendfile(2) one under "always" (and under "auto", for a layer this
// small); all must be the same bytes.
func TestBlobRange(t *testing.T) {
	data := publishAll(t)
	for _, mode := range []string{"auto", "always", "never"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, data, "--sendfile", mode)
			resp, body := s.get(t, "/v2/env/manifests/php-8.2", ocispec.MediaTypeImageManifest)
			if resp.StatusCode != 200 {
				t.Fatalf("manifest: %d %s", resp.StatusCode, body)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			layer := m.Layers[len(m.Layers)-1]
			full, fullBody := s.get(t, "/v2/env/blobs/"+layer.Digest.String(), "")
			if full.StatusCode != 200 || int64(len(fullBody)) != layer.Size || digest.FromBytes(fullBody) != layer.Digest {
				t.Fatalf("blob GET: %d, %d bytes with digest %s, want %d bytes with %s",
					full.StatusCode, len(fullBody), digest.FromBytes(fullBody), layer.Size, layer.Digest)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url("/v2/env/blobs/"+layer.Digest.String()), nil)
			req.Header.Set("Range", "bytes=10-19")
			part, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer part.Body.Close()
			got, err := io.ReadAll(part.Body)
			if err != nil {
				t.Fatal(err)
			}
			if part.StatusCode != http.StatusPartialContent || string(got) != string(fullBody[10:20]) {
				t.Errorf("range GET: %d %q, want 206 %q", part.StatusCode, got, fullBody[10:20])
			}
			if !s.waitLog(t, "sendfile="+mode) {
				t.Errorf("serve did not log sendfile=%s at start:\n%s", mode, s.logs())
			}
		})
	}
}

func TestTagListPagination(t *testing.T) {
	s := startServer(t, publishAll(t))
	var all struct {
		Name string
		Tags []string
	}
	resp, body := s.get(t, "/v2/env/tags/list", "")
	if err := json.Unmarshal(body, &all); err != nil || resp.StatusCode != 200 {
		t.Fatalf("tags/list: %d %s", resp.StatusCode, body)
	}
	if all.Name != "env" || !slices.IsSorted(all.Tags) || !slices.Contains(all.Tags, "php-8.2.36") || !slices.Contains(all.Tags, "latest") {
		t.Fatalf("tags/list = %+v", all)
	}
	var paged []string
	next := "/v2/env/tags/list?n=3"
	for next != "" {
		resp, body := s.get(t, next, "")
		var page struct{ Tags []string }
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 || len(page.Tags) > 3 {
			t.Fatalf("%s: %d %s", next, resp.StatusCode, body)
		}
		paged = append(paged, page.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			next = strings.TrimPrefix(strings.SplitN(link, ">", 2)[0], "<")
		}
	}
	if !slices.Equal(paged, all.Tags) {
		t.Errorf("paginated %v, want %v", paged, all.Tags)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
