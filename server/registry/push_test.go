package registry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore/uploads/disk"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages/ingest"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/server/registry"
	"github.com/envreg/envreg/test/fixtures"
)

// pushable is a registry with the push side and package ingestion on, over
// real embedded stores holding the fixture packages.
type pushable struct {
	srv  *httptest.Server
	host string
	st   *fixtures.Stores
}

func newPushable(t *testing.T) *pushable {
	t.Helper()
	st := fixtures.NewStores(t)
	up, err := disk.New(t.TempDir(), st.Blobs, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := registry.New(st.Catalog, st.Catalog, st.Blobs, manifestgen.NewComposer(st.Catalog, st.Blobs),
		registry.WithLogger(log), registry.WithPush(st.Catalog, st.Blobs, up),
		registry.WithIngester(&ingest.Ingestor{Blobs: st.Blobs, Catalog: st.Catalog, Log: log}))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &pushable{srv: srv, host: u.Host, st: st}
}

func (p *pushable) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(p.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// do sends a request and returns the response with its body read.
func (p *pushable) do(t *testing.T, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// errorCode returns the first error code of a spec error body.
func errorCode(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("not an error body: %q (%v)", body, err)
	}
	return e.Errors[0].Code, e.Errors[0].Message
}

func want(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, status)
	}
}

func sha(b []byte) digest.Digest { return digest.FromBytes(b) }

func TestPushPullRoundTrip(t *testing.T) {
	p := newPushable(t)
	img, err := random.Image(3000, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := p.ref(t, "team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := img.Digest()
	gd, _ := got.Digest()
	if wd != gd {
		t.Fatalf("pulled digest %s, pushed %s", gd, wd)
	}
	wantRaw, _ := img.RawManifest()
	gotRaw, _ := got.RawManifest()
	if !bytes.Equal(wantRaw, gotRaw) {
		t.Fatal("pulled manifest bytes differ from the pushed ones")
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		gl, err := got.LayerByDigest(d)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := l.Compressed()
		b, _ := gl.Compressed()
		ab, _ := io.ReadAll(a)
		bb, _ := io.ReadAll(b)
		if !bytes.Equal(ab, bb) {
			t.Fatalf("layer %s differs after the round trip", d)
		}
	}

	// An index of two images, by tag; then by digest.
	idx, err := random.Index(1000, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	iref := p.ref(t, "team/app:multi")
	if err := remote.WriteIndex(iref, idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	gi, err := remote.Index(p.ref(t, "team/app@"+id.String()))
	if err != nil {
		t.Fatal(err)
	}
	if gid, _ := gi.Digest(); gid != id {
		t.Fatalf("index digest %s, want %s", gid, id)
	}

	tags, err := remote.List(p.ref(t, "team/app:v1").Context())
	if err != nil || strings.Join(tags, ",") != "multi,v1" {
		t.Fatalf("tags %v (%v)", tags, err)
	}
	resp, body := p.do(t, http.MethodGet, "/v2/_catalog", nil)
	want(t, resp, body, 200)
	if !strings.Contains(string(body), `"team/app"`) || !strings.Contains(string(body), `"env"`) {
		t.Fatalf("catalog %s lacks team/app or env", body)
	}
}

func TestChunkedUpload(t *testing.T) {
	p := newPushable(t)
	blob := bytes.Repeat([]byte("0123456789"), 1000)
	d := sha(blob)

	resp, body := p.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
	want(t, resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/team/app/blobs/uploads/") || resp.Header.Get("Range") != "0-0" {
		t.Fatalf("POST: Location %q Range %q", loc, resp.Header.Get("Range"))
	}

	resp, body = p.do(t, http.MethodPatch, loc, blob[:4000], "Content-Type", "application/octet-stream", "Content-Range", "0-3999")
	want(t, resp, body, http.StatusAccepted)
	if resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("PATCH: Range %q, want 0-3999", resp.Header.Get("Range"))
	}
	loc = resp.Header.Get("Location")

	// Out of order: 416 with the current range; the session survives.
	resp, body = p.do(t, http.MethodPatch, loc, blob[5000:6000], "Content-Range", "5000-5999")
	want(t, resp, body, http.StatusRequestedRangeNotSatisfiable)
	if code, _ := errorCode(t, body); code != "BLOB_UPLOAD_INVALID" && code != "RANGE_INVALID" {
		t.Fatalf("out-of-order chunk: code %s", code)
	}

	resp, body = p.do(t, http.MethodGet, loc, nil)
	want(t, resp, body, http.StatusNoContent)
	if resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("status: Range %q, want 0-3999", resp.Header.Get("Range"))
	}

	resp, body = p.do(t, http.MethodPatch, loc, blob[4000:9000], "Content-Range", "4000-8999")
	want(t, resp, body, http.StatusAccepted)

	// A wrong digest is refused and stores nothing.
	bad := sha([]byte("other"))
	resp, body = p.do(t, http.MethodPut, loc+"?digest="+bad.String(), blob[9000:], "Content-Range", "9000-9999")
	want(t, resp, body, http.StatusBadRequest)
	if code, _ := errorCode(t, body); code != "DIGEST_INVALID" {
		t.Fatalf("wrong digest: code %s", code)
	}
	if _, err := p.st.Blobs.Stat(t.Context(), bad); err == nil {
		t.Fatal("a blob was stored under the wrong digest")
	}
	if _, err := p.st.Blobs.Stat(t.Context(), d); err == nil {
		t.Fatal("the mismatched upload was stored")
	}

	// The whole upload again, finished with the right digest.
	resp, _ = p.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	resp, body = p.do(t, http.MethodPatch, loc, blob[:6000], "Content-Range", "0-5999")
	want(t, resp, body, http.StatusAccepted)
	resp, body = p.do(t, http.MethodPut, resp.Header.Get("Location")+"?digest="+d.String(), blob[6000:], "Content-Range", "6000-9999")
	want(t, resp, body, http.StatusCreated)
	if resp.Header.Get("Location") != "/v2/team/app/blobs/"+d.String() || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("PUT: Location %q digest %q", resp.Header.Get("Location"), resp.Header.Get("Docker-Content-Digest"))
	}
	resp, body = p.do(t, http.MethodGet, "/v2/team/app/blobs/"+d.String(), nil)
	want(t, resp, body, 200)
	if !bytes.Equal(body, blob) {
		t.Fatal("blob content differs")
	}
	// The finished session is gone.
	resp, body = p.do(t, http.MethodGet, loc, nil)
	want(t, resp, body, http.StatusNotFound)
	if code, _ := errorCode(t, body); code != "BLOB_UPLOAD_UNKNOWN" {
		t.Fatalf("finished session: code %s", code)
	}

	// Cancel.
	resp, _ = p.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	resp, body = p.do(t, http.MethodDelete, loc, nil)
	want(t, resp, body, http.StatusNoContent)
	resp, body = p.do(t, http.MethodPatch, loc, []byte("x"))
	want(t, resp, body, http.StatusNotFound)
}

func TestMonolithicUploadAndMount(t *testing.T) {
	p := newPushable(t)
	blob := []byte("a monolithic blob")
	d := sha(blob)
	resp, body := p.do(t, http.MethodPost, "/v2/team/a/blobs/uploads/?digest="+d.String(), blob, "Content-Type", "application/octet-stream")
	want(t, resp, body, http.StatusCreated)

	// Wrong digest on a monolithic POST.
	resp, body = p.do(t, http.MethodPost, "/v2/team/a/blobs/uploads/?digest="+sha([]byte("x")).String(), blob)
	want(t, resp, body, http.StatusBadRequest)

	// Not linked to team/b yet.
	resp, body = p.do(t, http.MethodHead, "/v2/team/b/blobs/"+d.String(), nil)
	want(t, resp, body, http.StatusNotFound)

	// Mount from a repository that holds it: 201.
	resp, body = p.do(t, http.MethodPost, "/v2/team/b/blobs/uploads/?mount="+d.String()+"&from=team/a", nil)
	want(t, resp, body, http.StatusCreated)
	resp, body = p.do(t, http.MethodGet, "/v2/team/b/blobs/"+d.String(), nil)
	want(t, resp, body, 200)
	if !bytes.Equal(body, blob) {
		t.Fatal("mounted blob differs")
	}
	// Mount from a repository that does not hold it: an upload session.
	resp, body = p.do(t, http.MethodPost, "/v2/team/c/blobs/uploads/?mount="+d.String()+"&from=team/zzz", nil)
	want(t, resp, body, http.StatusAccepted)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/v2/team/c/blobs/uploads/") {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}

	// DELETE a blob: gone from team/b, still in team/a.
	resp, body = p.do(t, http.MethodDelete, "/v2/team/b/blobs/"+d.String(), nil)
	want(t, resp, body, http.StatusAccepted)
	resp, body = p.do(t, http.MethodHead, "/v2/team/b/blobs/"+d.String(), nil)
	want(t, resp, body, http.StatusNotFound)
	resp, body = p.do(t, http.MethodHead, "/v2/team/a/blobs/"+d.String(), nil)
	want(t, resp, body, 200)
	if resp.Header.Get("Content-Length") != fmt.Sprint(len(blob)) || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("HEAD headers %v", resp.Header)
	}
}

// putManifest pushes a manifest document by reference.
func (p *pushable) putManifest(t *testing.T, repo, ref, mediaType string, doc any) (*http.Response, []byte, digest.Digest) {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := p.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, data, "Content-Type", mediaType)
	return resp, body, sha(data)
}

func (p *pushable) pushBlob(t *testing.T, repo string, blob []byte) ocispec.Descriptor {
	t.Helper()
	d := sha(blob)
	resp, body := p.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), blob)
	want(t, resp, body, http.StatusCreated)
	return ocispec.Descriptor{Digest: d, Size: int64(len(blob))}
}

func TestManifestsReferrersAndDeletes(t *testing.T) {
	p := newPushable(t)
	repo := "team/art"
	cfg := p.pushBlob(t, repo, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	subject := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{}}
	subject.SchemaVersion = 2
	resp, body, sd := p.putManifest(t, repo, "v1", ocispec.MediaTypeImageManifest, subject)
	want(t, resp, body, http.StatusCreated)
	if resp.Header.Get("Docker-Content-Digest") != sd.String() || resp.Header.Get("Location") != "/v2/"+repo+"/manifests/"+sd.String() {
		t.Fatalf("PUT headers: %v", resp.Header)
	}

	// A manifest naming a blob the repository lacks.
	missing := subject
	missing.Layers = []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: sha([]byte("nope")), Size: 4}}
	resp, body, _ = p.putManifest(t, repo, "v2", ocispec.MediaTypeImageManifest, missing)
	want(t, resp, body, http.StatusBadRequest)
	if code, _ := errorCode(t, body); code != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("missing blob: code %s", code)
	}

	// Two artifacts referring to the subject, pushed by digest.
	empty := p.pushBlob(t, repo, []byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	var refs []digest.Digest
	for i, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		art := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: at, Config: empty,
			Layers:      []ocispec.Descriptor{empty},
			Subject:     &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: sd, Size: int64(len(mustJSON(t, subject)))},
			Annotations: map[string]string{"n": fmt.Sprint(i)}}
		art.SchemaVersion = 2
		data := mustJSON(t, art)
		resp, body := p.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+sha(data).String(), data, "Content-Type", ocispec.MediaTypeImageManifest)
		want(t, resp, body, http.StatusCreated)
		if resp.Header.Get("OCI-Subject") != sd.String() {
			t.Fatalf("OCI-Subject %q, want %s", resp.Header.Get("OCI-Subject"), sd)
		}
		refs = append(refs, sha(data))
	}
	var idx ocispec.Index
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/referrers/"+sd.String(), nil)
	want(t, resp, body, 200)
	if resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
		t.Fatalf("referrers Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %s (%v)", body, err)
	}
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/referrers/"+sd.String()+"?artifactType=application/vnd.example.sig", nil)
	want(t, resp, body, 200)
	idx = ocispec.Index{}
	if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" ||
		idx.Manifests[0].Annotations["n"] != "1" || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %s, header %q (%v)", body, resp.Header.Get("OCI-Filters-Applied"), err)
	}

	// Tag pagination.
	for _, tag := range []string{"a", "b", "c"} {
		resp, body, _ := p.putManifest(t, repo, tag, ocispec.MediaTypeImageManifest, subject)
		want(t, resp, body, http.StatusCreated)
	}
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/tags/list?n=2", nil)
	want(t, resp, body, 200)
	if !strings.Contains(string(body), `["a","b"]`) || !strings.Contains(resp.Header.Get("Link"), "last=b") {
		t.Fatalf("page 1: %s Link %q", body, resp.Header.Get("Link"))
	}
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/tags/list?n=2&last=b", nil)
	want(t, resp, body, 200)
	if !strings.Contains(string(body), `["c","v1"]`) {
		t.Fatalf("page 2: %s", body)
	}

	// DELETE a tag: the manifest stays.
	resp, body = p.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/a", nil)
	want(t, resp, body, http.StatusAccepted)
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/manifests/a", nil)
	want(t, resp, body, http.StatusNotFound)
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+sd.String(), nil)
	want(t, resp, body, 200)

	// DELETE a referrer by digest: gone from the referrers list.
	resp, body = p.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/"+refs[0].String(), nil)
	want(t, resp, body, http.StatusAccepted)
	resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/referrers/"+sd.String(), nil)
	idx = ocispec.Index{}
	if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != refs[1] {
		t.Fatalf("referrers after delete: %s (%v)", body, err)
	}
	// DELETE the subject by digest: its tags go with it.
	resp, body = p.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/"+sd.String(), nil)
	want(t, resp, body, http.StatusAccepted)
	for _, ref := range []string{sd.String(), "v1", "b"} {
		resp, body = p.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil)
		want(t, resp, body, http.StatusNotFound)
		if code, _ := errorCode(t, body); code != "MANIFEST_UNKNOWN" {
			t.Fatalf("%s after delete: %s", ref, code)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStacksAreReadOnly(t *testing.T) {
	p := newPushable(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/env/blobs/uploads/"},
		{http.MethodPut, "/v2/env/manifests/mine"},
		{http.MethodDelete, "/v2/env/manifests/php-8.2"},
		{http.MethodDelete, "/v2/env/blobs/" + sha([]byte("x")).String()},
	} {
		resp, body := p.do(t, c.method, c.path, []byte("{}"))
		want(t, resp, body, http.StatusMethodNotAllowed)
		if code, msg := errorCode(t, body); code != "UNSUPPORTED" || !strings.Contains(msg, "env") {
			t.Errorf("%s %s: %s %q", c.method, c.path, code, msg)
		}
	}
}

// packageImage builds a single-layer linux image whose layer holds files,
// with the given config labels.
func packageImage(t *testing.T, arch string, files map[string]string, labels map[string]string) v1.Image {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c), Mode: 0o755}
	}
	var buf bytes.Buffer
	if _, err := layer.Build(t.Context(), fsys, &buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Labels = "linux", arch, labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushPackage(t *testing.T) {
	p := newPushable(t)
	labels := map[string]string{
		ingest.LabelPath:                    "/opt/tool/bin",
		ingest.LabelEnvPrefix + "TOOL_HOME": "/opt/tool",
		ingest.LabelRequires:                "base ^12",
		ingest.LabelAliases:                 "tl",
		ingest.LabelLabel + "origin":        "team ci",
	}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img := packageImage(t, arch, map[string]string{"opt/tool/bin/tool": "#!/bin/sh\necho tool " + arch + "\n"}, labels)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	if err := remote.WriteIndex(p.ref(t, "packages/tool:1.4.2"), idx); err != nil {
		t.Fatal(err)
	}

	snap, err := p.st.Catalog.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rels := snap.Releases("tool")
	if len(rels) != 1 || rels[0].Version.String() != "1.4.2" || len(rels[0].Layers) != 2 {
		t.Fatalf("releases of tool: %+v", rels)
	}
	rel := rels[0]
	if strings.Join(rel.Env.Path, ":") != "/opt/tool/bin" || rel.Env.Vars["TOOL_HOME"] != "/opt/tool" ||
		len(rel.Requires) != 1 || rel.Requires[0].String() != "base ^12" || rel.Labels["origin"] != "team ci" {
		t.Fatalf("release metadata: %+v", rel)
	}
	// The catalog's layers are the pushed blobs, byte for byte.
	for i, add := range adds {
		layers, _ := add.Add.(v1.Image).Layers()
		d, _ := layers[0].Digest()
		diff, _ := layers[0].DiffID()
		l, ok := rel.Layer(catalog.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[i]})
		if !ok || l.Digest.String() != d.String() || l.DiffID.String() != diff.String() || l.Files["opt/tool/bin/tool"] == "" {
			t.Fatalf("layer %d: %+v, pushed %s", i, l, d)
		}
	}

	if !slices.Equal(rel.Aliases, []string{"tl"}) {
		t.Fatalf("release aliases %v, want [tl]", rel.Aliases)
	}
	if st, _ := snap.Stack(catalog.DefaultStackName); st.Aliases["tl"] != "" {
		t.Fatalf("the push changed the stack env: %v", st.Aliases)
	}
	// Another package may not claim the alias.
	claim := packageImage(t, "amd64", map[string]string{"opt/x/bin/x": "x"}, map[string]string{ingest.LabelAliases: "tl"})
	if err := remote.Write(p.ref(t, "packages/other:1.0.0"), claim); err == nil || !strings.Contains(err.Error(), `alias "tl" is declared by package tool`) {
		t.Fatalf("a second package claiming tl: %v", err)
	}
	// A composed environment with the package (through its alias), at once.
	img, err := remote.Image(p.ref(t, "env:tl-1.4"), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	found := false
	for _, l := range layers {
		d, _ := l.Digest()
		if d.String() == rel.Layers[1].Digest.String() {
			found = true
		}
	}
	cf, _ := img.ConfigFile()
	if !found || !strings.Contains(strings.Join(cf.Config.Env, " "), "TOOL_HOME=/opt/tool") {
		t.Fatalf("env:tl-1.4 (arm64) lacks the pushed layer or its env: %v", cf.Config.Env)
	}
	// The pushed index is pullable as it was pushed.
	id, _ := idx.Digest()
	got, err := remote.Index(p.ref(t, "packages/tool:1.4.2"))
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != id {
		t.Fatalf("pulled index %s, pushed %s", gd, id)
	}
	// The same push again is fine; other content under the version is not.
	if err := remote.WriteIndex(p.ref(t, "packages/tool:1.4.2"), idx); err != nil {
		t.Fatalf("pushing the same package again: %v", err)
	}
	other := packageImage(t, "amd64", map[string]string{"opt/tool/bin/tool": "changed"}, labels)
	err = remote.Write(p.ref(t, "packages/tool:1.4.2"), other)
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_INVALID") {
		t.Fatalf("pushing other content as tool 1.4.2: %v", err)
	}
}

func TestPushPackageRefused(t *testing.T) {
	p := newPushable(t)
	good := map[string]string{"opt/x/bin/x": "x"}
	twoLayers := func() v1.Image {
		img := packageImage(t, "amd64", good, nil)
		l, _ := random.Layer(100, types.OCILayer)
		img, err := mutate.AppendLayers(img, l)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}()
	cases := []struct {
		name, ref string
		img       v1.Image
		want      string
	}{
		{"not semver", "packages/x:latest", packageImage(t, "amd64", good, nil), "strict semantic version"},
		{"two layers", "packages/x:1.0.0", twoLayers, "exactly one layer"},
		{"unknown platform", "packages/x:1.0.1", packageImage(t, "sparc", good, nil), "unknown platform"},
		{"unknown label", "packages/x:1.0.2", packageImage(t, "amd64", good, map[string]string{"io.envreg.package.require": "base"}), "unknown package label"},
		{"bad constraint", "packages/x:1.0.3", packageImage(t, "amd64", good, map[string]string{ingest.LabelRequires: "base ^^12"}), "requires"},
		{"name mismatch", "packages/x:1.0.4", packageImage(t, "amd64", good, map[string]string{ingest.LabelName: "y"}), "names package"},
		{"setuid", "packages/x:1.0.5", setuidImage(t), "setuid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := p.ref(t, c.ref)
			err := remote.Write(ref, c.img)
			if err == nil || !strings.Contains(err.Error(), "MANIFEST_INVALID") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("push: %v, want MANIFEST_INVALID mentioning %q", err, c.want)
			}
			// Nothing registered, and the manifest is not stored under the tag.
			snap, _ := p.st.Catalog.Snapshot(t.Context())
			if len(snap.Releases("x")) != 0 {
				t.Fatalf("refused push registered %v", snap.Releases("x"))
			}
			if _, err := remote.Head(ref); err == nil {
				t.Fatal("the refused manifest is tagged")
			}
		})
	}
}

// setuidImage is a package image whose layer holds a setuid file.
func setuidImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := newTarGz(&buf)
	tw.file(t, "opt/x/bin/x", 0o4755, "x")
	tw.close(t)
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type tarGz struct {
	zw *gzip.Writer
	tw *tar.Writer
}

func newTarGz(w io.Writer) *tarGz {
	zw := gzip.NewWriter(w)
	return &tarGz{zw: zw, tw: tar.NewWriter(zw)}
}

func (g *tarGz) file(t *testing.T, name string, mode int64, content string) {
	t.Helper()
	if err := g.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
}

func (g *tarGz) close(t *testing.T) {
	t.Helper()
	if err := g.tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.zw.Close(); err != nil {
		t.Fatal(err)
	}
}
