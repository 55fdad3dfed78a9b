package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/test/fixtures"
)

// published is the whole server (server.New, so the API is mounted as in
// production, behind the request-id middleware) over real embedded stores
// holding every fixture package, on a loopback httptest server.
type published struct {
	srv   *httptest.Server
	cat   *fsstore.Store
	blobs *blobfs.Store
	pub   *packages.Publisher
	work  string
}

func newPublished(tb testing.TB) *published {
	tb.Helper()
	return newPublishedWith(tb, func(*server.Deps) {})
}

// newPublishedWith is newPublished with deps changed by edit (auth).
func newPublishedWith(tb testing.TB, edit func(*server.Deps)) *published {
	tb.Helper()
	st := fixtures.NewStores(tb)
	cat, blobs, pub, work := st.Catalog, st.Blobs, st.Publisher, st.Work
	deps := server.Deps{Catalog: cat, Blobs: blobs, Log: slog.New(slog.DiscardHandler)}
	edit(&deps)
	s := server.New(server.DefaultConfig(), deps)
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return &published{srv: srv, cat: cat, blobs: blobs, pub: pub, work: work}
}

// publish adds a fixture-shaped package for both platforms.
func (p *published) publish(tb testing.TB, pkg fixtures.Package) {
	tb.Helper()
	if _, err := fixtures.Publish(tb.Context(), p.pub, p.work, pkg); err != nil {
		tb.Fatal(err)
	}
}

// publishOne adds a generic package for one platform only.
func (p *published) publishOne(tb testing.TB, name, version string, plat catalog.Platform) {
	tb.Helper()
	pkg := fixtures.Extra(name, version)
	dir := filepath.Join(tb.TempDir(), "rootfs")
	if err := fixtures.WriteTree(dir, pkg, plat); err != nil {
		tb.Fatal(err)
	}
	if _, err := p.pub.Publish(tb.Context(), packages.Input{
		ReleaseSpec: catalog.ReleaseSpec{Name: name, Version: version, Path: pkg.Path, Requires: pkg.Requires},
		Platform:    plat, Dir: dir}); err != nil {
		tb.Fatal(err)
	}
}

// call sends a request and returns the status, headers and body.
func (p *published) call(tb testing.TB, method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, p.srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// resolve posts in to the stack's resolve route. It returns the decoded
// answer on 200 and the decoded error otherwise.
func (p *published) resolve(tb testing.TB, stack string, in any) (int, *api.ResolveResponse, *api.Error) {
	tb.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		tb.Fatal(err)
	}
	status, h, data := p.call(tb, http.MethodPost, "/api/v1/stacks/"+stack+"/resolve", body, "Content-Type", "application/json")
	if ct := h.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("resolve: Content-Type %q, want application/json", ct)
	}
	if status != http.StatusOK {
		var e api.Error
		if err := json.Unmarshal(data, &e); err != nil {
			tb.Fatalf("resolve: %d with a body that is not an API error: %v\n%s", status, err, data)
		}
		return status, nil, &e
	}
	var out api.ResolveResponse
	if err := json.Unmarshal(data, &out); err != nil {
		tb.Fatalf("resolve: %v\n%s", err, data)
	}
	return status, &out, nil
}

// mustResolve resolves and fails the test unless the answer is 200.
func (p *published) mustResolve(tb testing.TB, in api.ResolveRequest) *api.ResolveResponse {
	tb.Helper()
	status, out, e := p.resolve(tb, "env", in)
	if status != http.StatusOK {
		tb.Fatalf("resolve %+v: %d %+v", in, status, e)
	}
	return out
}

// versions maps package -> version of a resolution.
func versions(out *api.ResolveResponse) map[string]string {
	m := map[string]string{}
	for _, p := range out.Packages {
		m[p.Name] = p.Version
	}
	return m
}
