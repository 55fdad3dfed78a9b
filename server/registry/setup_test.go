package registry_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

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
	dir := tb.TempDir()
	cat, err := fsstore.Open(filepath.Join(dir, "data"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cat.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "data", "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	pub := &packages.Publisher{Blobs: blobs, Catalog: cat, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }, TempDir: tb.TempDir()}
	if _, err := fixtures.PublishAll(tb.Context(), pub, filepath.Join(dir, "work")); err != nil {
		tb.Fatal(err)
	}
	reg := registry.New(cat, cat, blobs, manifestgen.NewComposer(cat, blobs), registry.WithLogger(slog.New(slog.DiscardHandler)))
	return &published{handler: reg, cat: cat, blobs: blobs, pub: pub, work: filepath.Join(dir, "work")}
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
