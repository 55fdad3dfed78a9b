package packages

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// Publisher is the publishing job: it builds layers, stores them as blobs
// and records releases in the catalog, in that order.
type Publisher struct {
	// Blobs receives the layer blobs; it verifies digest and size.
	Blobs layerstore.Writer
	// Catalog records the releases.
	Catalog catalog.Publisher
	// Log receives one line per published layer (nil: discard).
	Log *slog.Logger
	// Now gives the publish time (nil: time.Now). It is stored in UTC,
	// truncated to the second.
	Now func() time.Time
	// TempDir holds layers while they are built and tar contents while they
	// are normalized ("": os.TempDir).
	TempDir string
}

// target is one platform's content.
type target struct {
	platform catalog.Platform
	dir, tar string
}

// Publish validates in, builds its layer, stores the blob and then records
// the release (with one layer, for in.Platform) in the catalog.
//
// Publishing the same content again succeeds and changes nothing. Different
// content or metadata for an existing name, version and platform fails with
// an error wrapping catalog.ErrExists unless in.Force is set. An invalid
// input fails with a *ValidationError before anything is built or stored.
// The returned release's Published is the time of this call; the catalog
// keeps the time of the first publish.
func (p *Publisher) Publish(ctx context.Context, in Input) (catalog.Release, error) {
	what := fmt.Sprintf("publishing %s %s for %s", in.Name, in.Version, in.Platform)
	rel, err := in.validate()
	if err != nil {
		return catalog.Release{}, fmt.Errorf("%s: %w", what, err)
	}
	rels, err := p.publish(ctx, rel, []target{{platform: in.Platform, dir: in.Dir, tar: in.Tar}}, in.Force)
	if err != nil {
		return catalog.Release{}, fmt.Errorf("%s: %w", what, err)
	}
	return rels[0], nil
}

// publish stores one layer per target and then records rel with all of
// them in one catalog call. It returns one release per target, each with
// that target's layer.
func (p *Publisher) publish(ctx context.Context, rel catalog.Release, targets []target, force bool) ([]catalog.Release, error) {
	if p.Blobs == nil || p.Catalog == nil {
		return nil, errors.New("publisher has no blob store or no catalog")
	}
	for _, t := range targets {
		l, err := p.storeLayer(ctx, t)
		if err != nil {
			if len(targets) > 1 {
				err = fmt.Errorf("%s: %w", t.platform, err)
			}
			return nil, err
		}
		rel.Layers = append(rel.Layers, l)
	}
	rel.Published = p.now()
	rel.Canonicalize()
	if err := rel.Validate(); err != nil {
		return nil, err
	}
	if err := p.Catalog.Publish(ctx, rel, catalog.PublishOptions{Force: force}); err != nil {
		return nil, fmt.Errorf("recording release in catalog: %w", err)
	}
	out := make([]catalog.Release, 0, len(targets))
	for _, t := range targets {
		l, _ := rel.Layer(t.platform)
		p.log().InfoContext(ctx, "published package",
			"name", rel.Name, "version", rel.Version.String(), "platform", l.Platform.String(),
			"digest", l.Digest.String(), "size", l.Size, "force", force)
		out = append(out, withLayer(rel, l))
	}
	return out, nil
}

// withLayer returns a copy of r, sharing nothing with it, with the single
// layer l.
func withLayer(r catalog.Release, l catalog.Layer) catalog.Release {
	r.Layers = []catalog.Layer{l}
	r.Env.Path = slices.Clone(r.Env.Path)
	r.Env.Vars = maps.Clone(r.Env.Vars)
	r.Requires = slices.Clone(r.Requires)
	r.Conflicts = slices.Clone(r.Conflicts)
	r.Labels = maps.Clone(r.Labels)
	return r
}

// storeLayer builds t's layer into a temporary file, hashing and counting
// the compressed bytes as they are written, and stores the file as a blob.
func (p *Publisher) storeLayer(ctx context.Context, t target) (catalog.Layer, error) {
	f, err := os.CreateTemp(p.TempDir, "envreg-layer-*.tar.gz")
	if err != nil {
		return catalog.Layer{}, fmt.Errorf("creating temporary layer file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()

	dg := digest.SHA256.Digester()
	cw := &countingWriter{w: io.MultiWriter(f, dg.Hash())}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var diffID digest.Digest
	if t.dir != "" {
		diffID, err = BuildLayerFromDir(ctx, t.dir, bw)
	} else {
		diffID, err = p.buildFromTar(ctx, t.tar, bw)
	}
	if err != nil {
		return catalog.Layer{}, err
	}
	if err := bw.Flush(); err != nil {
		return catalog.Layer{}, fmt.Errorf("writing temporary layer file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return catalog.Layer{}, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	d := dg.Digest()
	if err := p.Blobs.Put(ctx, d, cw.n, f); err != nil {
		return catalog.Layer{}, fmt.Errorf("storing layer blob %s: %w", d, err)
	}
	return catalog.Layer{
		Platform:  t.platform,
		Digest:    d,
		DiffID:    diffID,
		Size:      cw.n,
		MediaType: ocispec.MediaTypeImageLayerGzip,
	}, nil
}

func (p *Publisher) buildFromTar(ctx context.Context, file string, w io.Writer) (digest.Digest, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", file, err)
	}
	defer f.Close()
	d, err := normalizeTar(ctx, f, w, p.TempDir)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", file, err)
	}
	return d, nil
}

func (p *Publisher) now() time.Time {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	return now().UTC().Truncate(time.Second)
}

func (p *Publisher) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// platformList joins platforms for messages: "linux/amd64, linux/arm64".
func platformList(ps []string) string { return strings.Join(ps, ", ") }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
