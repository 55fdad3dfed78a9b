package registry_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/server/registry"
	"github.com/envreg/envreg/test/fixtures"
)

// published is a registry over real embedded stores holding every fixture
// package.
type published struct {
	handler http.Handler
	cat     *fsstore.Store
	blobs   *blobfs.Store
	pub     *packages.Publisher
	work    string
}

func newPublished(tb testing.TB) *published {
	tb.Helper()
	st := fixtures.NewStores(tb)
	reg := registry.New(st.Catalog, st.Catalog, st.Blobs, manifestgen.NewComposer(st.Catalog, st.Blobs), registry.WithLogger(slog.New(slog.DiscardHandler)))
	return &published{handler: reg, cat: st.Catalog, blobs: st.Blobs, pub: st.Publisher, work: st.Work}
}

func (p *published) server(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(p.handler)
	t.Cleanup(s.Close)
	return s
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
