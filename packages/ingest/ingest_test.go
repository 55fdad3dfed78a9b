package ingest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	"github.com/envreg/envreg/layerstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/packages/ingest"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

// ingestStores are the real embedded stores an Ingestor reads and writes.
type ingestStores struct {
	blobs *blobfs.Store
	cat   *fsstore.Store
}

func newIngestStores(t *testing.T) ingestStores {
	t.Helper()
	dir := t.TempDir()
	cat, err := fsstore.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "data", "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return ingestStores{blobs: blobs, cat: cat}
}

// push stores layer (a gzip tar) as a blob and describes it as the single
// linux/amd64 layer of a push of name version.
func (s ingestStores) push(t *testing.T, name, version string, layer []byte) ingest.Push {
	t.Helper()
	d := digest.FromBytes(layer)
	if err := s.blobs.Put(t.Context(), d, int64(len(layer)), bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := digest.FromReader(zr)
	if err != nil {
		t.Fatal(err)
	}
	amd64 := catalog.Platform{OS: "linux", Architecture: "amd64"}
	return ingest.Push{Name: name, Version: version, Images: []ingest.PushedImage{{
		Platform: amd64,
		Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(layer))}},
	}}}
}

// emptyFiles is a gzip tar of n empty files.
func emptyFiles(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f/%d", i), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestIngestEntryLimit: a pushed layer is refused at the Ingestor's entry
// limit, naming the entry and the limit, and nothing is registered. The
// zero Policy's limit for pushes is DefaultMaxPushEntries, far below what
// publishing allows (test/hostile_push_test.go pushes that many to the
// real server).
func TestIngestEntryLimit(t *testing.T) {
	if ingest.DefaultMaxEntries >= layer.DefaultMaxEntries {
		t.Fatalf("the push limit %d is not below the publish limit %d", ingest.DefaultMaxEntries, layer.DefaultMaxEntries)
	}
	if got := ingest.IngestorPolicy(&ingest.Ingestor{}).MaxEntries; got != ingest.DefaultMaxEntries {
		t.Fatalf("the zero Ingestor allows %d entries, want %d", got, ingest.DefaultMaxEntries)
	}
	st := newIngestStores(t)
	p := st.push(t, "many", "1.0.0", emptyFiles(t, 100)) // and their directory f: 101 entries
	in := &ingest.Ingestor{Blobs: st.blobs, Catalog: st.cat, Policy: layer.Policy{MaxEntries: 100}}
	_, err := in.Ingest(t.Context(), p)
	var re *layer.RefusedError
	const want = "f/99: more than 100 entries; the limit is 100"
	if !errors.As(err, &re) || re.Rule != layer.RuleEntries || re.Path != "f/99" || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want a refusal %q", err, want)
	}
	snap, err := st.cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rs := snap.Releases("many"); len(rs) != 0 {
		t.Fatalf("the refused push registered %v", rs)
	}
	in.Policy.MaxEntries = 101
	if _, err := in.Ingest(t.Context(), p); err != nil {
		t.Fatalf("101 entries with MaxEntries 101: %v", err)
	}
}

// gatedBlobs holds every Open until the test lets it go, and reports it:
// a slow read the real store cannot produce on demand.
type gatedBlobs struct {
	layerstore.Reader
	opened chan string // the digest of each Open
	gate   chan struct{}
}

func (g *gatedBlobs) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	g.opened <- d.String()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	return g.Reader.Open(ctx, d)
}

// waitLog is a slog handler that reports each message on a channel.
type waitLog struct{ msgs chan string }

func (h waitLog) Enabled(context.Context, slog.Level) bool { return true }
func (h waitLog) Handle(_ context.Context, r slog.Record) error {
	h.msgs <- r.Message
	return nil
}
func (h waitLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h waitLog) WithGroup(string) slog.Handler      { return h }

// TestIngestorBoundsConcurrentIngestions: with one slot, a second push
// waits until the first has been checked (it reads no layer meanwhile),
// and a push whose client gives up while waiting ends with its context.
func TestIngestorBoundsConcurrentIngestions(t *testing.T) {
	st := newIngestStores(t)
	blobs := &gatedBlobs{Reader: st.blobs, opened: make(chan string, 3), gate: make(chan struct{})}
	log := waitLog{msgs: make(chan string, 10)}
	in := &ingest.Ingestor{Blobs: blobs, Catalog: st.cat, MaxIngestions: 1, Log: slog.New(log)}
	a := st.push(t, "a", "1.0.0", layertest.PushedTar(t, layertest.PushedEntry{Name: "opt/a", Mode: 0o644, Type: tar.TypeReg, Content: "a"}))
	b := st.push(t, "b", "1.0.0", layertest.PushedTar(t, layertest.PushedEntry{Name: "opt/b", Mode: 0o644, Type: tar.TypeReg, Content: "b"}))
	c := st.push(t, "c", "1.0.0", layertest.PushedTar(t, layertest.PushedEntry{Name: "opt/c", Mode: 0o644, Type: tar.TypeReg, Content: "c"}))

	var wg sync.WaitGroup
	errs := make([]error, 2)
	ingest := func(i int, ctx context.Context, p ingest.Push) {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = in.Ingest(ctx, p) }()
	}
	waitFor := func(want string) {
		t.Helper()
		for {
			select {
			case d := <-blobs.opened:
				t.Fatalf("layer %s read while the only slot is held", d)
			case m := <-log.msgs:
				if m == want {
					return
				}
			}
		}
	}
	ingest(0, t.Context(), a)
	if d := <-blobs.opened; d != a.Images[0].Layers[0].Digest.String() {
		t.Fatalf("opened %s, want a's layer", d)
	}
	// a holds the slot (its read is gated): b and c wait without reading.
	ingest(1, t.Context(), b)
	waitFor("pushed package waits for an ingestion slot")
	ctx, cancel := context.WithCancel(t.Context())
	cDone := make(chan error)
	go func() { _, err := in.Ingest(ctx, c); cDone <- err }()
	waitFor("pushed package waits for an ingestion slot")
	cancel()
	if err := <-cDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("c, cancelled while waiting: %v", err)
	}
	blobs.gate <- struct{}{} // a reads its layer and registers
	if d := <-blobs.opened; d != b.Images[0].Layers[0].Digest.String() {
		t.Fatalf("opened %s after a, want b's layer", d)
	}
	blobs.gate <- struct{}{}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("a: %v, b: %v", errs[0], errs[1])
	}
	snap, err := st.cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Releases("a")) != 1 || len(snap.Releases("b")) != 1 || len(snap.Releases("c")) != 0 {
		t.Fatalf("registered a %d, b %d, c %d; want 1, 1, 0", len(snap.Releases("a")), len(snap.Releases("b")), len(snap.Releases("c")))
	}
}

// TestIngestRefusesHostileEnvLabels: the env and path labels of a push go
// through the same validation as publish flags and recipes: control
// characters, empty and unclean PATH entries are refused, naming the
// label, and nothing is registered.
func TestIngestRefusesHostileEnvLabels(t *testing.T) {
	st := newIngestStores(t)
	in := &ingest.Ingestor{Blobs: st.blobs, Catalog: st.cat}
	layer := layertest.PushedTar(t, layertest.PushedEntry{Name: "opt/x/bin/x", Mode: 0o755, Type: tar.TypeReg, Content: "x"})
	cases := []struct {
		name, key, value, want string
	}{
		{"newline in env", ingest.LabelEnvPrefix + "X_HOME", "/opt/x\nLD_PRELOAD=/tmp/evil.so", "env: value of X_HOME contains the control character U+000A"},
		{"escape in env", ingest.LabelEnvPrefix + "X_HOME", "\x1b]0;owned\x07", "U+001B"},
		{"newline in path", ingest.LabelPath, "/opt/x/bin\n", ""}, // trimmed like spaces: accepted
		{"newline inside path", ingest.LabelPath, "/opt/x\n/bin", "contains the control character U+000A"},
		{"empty path entry", ingest.LabelPath, "/opt/x/bin::/usr/bin", "entry 1 is empty"},
		{"unclean path entry", ingest.LabelPath, "/opt/x/../bin", `"/opt/x/../bin" is not a clean path`},
		{"relative path entry", ingest.LabelPath, "bin", "not an absolute path"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := st.push(t, "x", fmt.Sprintf("1.0.%d", i), layer)
			p.Images[0].Config.Config.Labels = map[string]string{c.key: c.value}
			rel, err := in.Ingest(t.Context(), p)
			if c.want == "" {
				if err != nil {
					t.Fatalf("%s=%q: %v", c.key, c.value, err)
				}
				if want := []string{"/opt/x/bin"}; !slices.Equal(rel.Env.Path, want) {
					t.Fatalf("path %q, want %q", rel.Env.Path, want)
				}
				return
			}
			var ve *catalog.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s=%q: %v, want a *ValidationError mentioning %q", c.key, c.value, err, c.want)
			}
			snap, err := st.cat.Snapshot(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range snap.Releases("x") {
				if r.Version.String() == p.Version {
					t.Fatalf("the refused push registered %s", r.ID())
				}
			}
		})
	}
}
