package packages

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/sbom"
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

	// CacheDir keeps downloaded Debian packages and package lists between
	// runs, in its debian/ subdirectory ("": $XDG_CACHE_HOME/envreg, else
	// ~/.cache/envreg). See DebianSource.
	CacheDir string
	// DebianSources are the one-line apt sources ("deb URI SUITE
	// COMPONENT...") of Debian recipes that name none; nil means the
	// machine's apt sources (/etc/apt/sources.list and sources.list.d).
	DebianSources []string
	// Progress, when set, receives the events of the run as they happen
	// (which recipe, apt's download lines, how far each layer's
	// compression is), for a person watching; cmd/envreg draws them on a
	// terminal. It is called from several goroutines at once (the layers
	// of a recipe's platforms are built concurrently) and should return
	// quickly. nil, the default and right for CI and logs, reports
	// nothing, and apt then runs quietly.
	Progress func(Event)
	// Policy decides what --from-tar and --from-dir content may hold
	// beyond the rules every layer follows; the zero Policy refuses
	// setuid and setgid files and applies the default limits. Debian
	// recipes do not use it: they keep setuid files and get the default
	// limits (see layer.Policy).
	Policy layer.Policy
	// Exclusive publishes with catalog.PublishOptions.Exclusive: a
	// version (and platform) that another job published meanwhile fails
	// with an error wrapping catalog.ErrExists instead of succeeding
	// without a change, so the caller knows who published it.
	Exclusive bool
	// Uncompressed also stores each layer's uncompressed tar beside the
	// gzip blob (its digest is the diff_id): what a stack with
	// layerCompression "none" serves. Without it such a stack serves the
	// gzip layer. It roughly triples the bytes a layer takes, for a gain
	// the turnaround benchmark did not measure beyond noise on Docker 20.10
	// (docs/benchmarks.md), so it is off by default.
	Uncompressed bool
	// Zstd also stores each layer compressed with zstd beside the gzip
	// blob: what a stack with layerCompression "zstd" serves (clients that
	// read zstd: containerd 1.5+, Docker 23+, podman, crane). Without it
	// such a stack serves the gzip layer.
	Zstd bool

	deb  debianState
	tool patchelfTool
}

// target is one platform's content: a directory, a tar file, or a
// function that writes the layer (gzip-compressed, canonical) and returns
// its diffID.
type target struct {
	platform catalog.Platform
	dir, tar string
	build    func(ctx context.Context, w io.Writer) (digest.Digest, error)
	// distro is where the layer's packages come from ("debian-12") when
	// the layer itself has no os-release: a Debian recipe's sources.
	distro string
}

// Publish validates in, builds its layer, stores the blob and then records
// the release (with one layer, for in.Platform) in the catalog.
//
// Publishing the same content again succeeds and changes nothing. Different
// content or metadata for an existing name, version and platform fails with
// an error wrapping catalog.ErrExists unless in.Force is set. An invalid
// input fails with a *catalog.ValidationError before anything is built or stored.
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
	layers, err := p.storeLayers(ctx, rel, targets)
	if err != nil {
		return nil, err
	}
	rel.Layers = append(rel.Layers, layers...)
	rel.Published = p.now()
	rel.Canonicalize()
	if err := rel.Validate(); err != nil {
		return nil, err
	}
	if err := p.Catalog.Publish(ctx, rel, catalog.PublishOptions{Force: force, Exclusive: p.Exclusive}); err != nil {
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

// storeLayers stores the layers of targets, building up to GOMAXPROCS of
// them at a time (compression is the slow part of publishing, and the
// platforms of a recipe are independent). On failure it stops the others
// and returns the error of the first failed target in targets order.
func (p *Publisher) storeLayers(ctx context.Context, rel catalog.Release, targets []target) ([]catalog.Layer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	layers := make([]catalog.Layer, len(targets))
	errs := make([]error, len(targets))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			layers[i], errs[i] = p.storeLayer(ctx, t, fmt.Sprintf("%s %s for %s", rel.Name, rel.Version, t.platform))
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// Prefer a real failure over the cancellations it caused.
	first := -1
	for i, err := range errs {
		if err != nil && (first < 0 || errors.Is(errs[first], context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = i
		}
	}
	if first >= 0 {
		err := errs[first]
		if len(targets) > 1 {
			err = fmt.Errorf("%s: %w", targets[first].platform, err)
		}
		return nil, err
	}
	return layers, nil
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
// label names the layer in progress output.
func (p *Publisher) storeLayer(ctx context.Context, t target, label string) (catalog.Layer, error) {
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
	out, ended := p.watchLayer(label, cw)
	defer ended(-1) // a failed build; nothing once ended(size) was called
	bw := bufio.NewWriterSize(out, 1<<20)
	var diffID digest.Digest
	switch {
	case t.build != nil:
		diffID, err = t.build(ctx, bw)
	case t.dir != "":
		diffID, err = p.Policy.BuildFromDir(ctx, t.dir, bw)
	default:
		diffID, err = p.buildFromTar(ctx, t.tar, bw)
	}
	if err != nil {
		return catalog.Layer{}, err
	}
	if err := bw.Flush(); err != nil {
		return catalog.Layer{}, fmt.Errorf("writing temporary layer file: %w", err)
	}
	ended(cw.n)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return catalog.Layer{}, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	files, err := layer.Files(f)
	if err != nil {
		return catalog.Layer{}, fmt.Errorf("listing the files of the layer: %w", err)
	}
	contents, err := scanContents(ctx, f)
	if err != nil {
		return catalog.Layer{}, err
	}
	d := dg.Digest()
	if err := p.Blobs.Put(ctx, d, cw.n, f); err != nil {
		return catalog.Layer{}, fmt.Errorf("storing layer blob %s: %w", d, err)
	}
	var tarSize, zstdSize int64
	if p.Uncompressed {
		if tarSize, err = p.storeTar(ctx, f, diffID); err != nil {
			return catalog.Layer{}, err
		}
	}
	var zstdDigest digest.Digest
	if p.Zstd {
		if zstdDigest, zstdSize, err = p.storeZstd(ctx, f); err != nil {
			return catalog.Layer{}, err
		}
	}
	return catalog.Layer{
		Platform:  t.platform,
		Digest:    d,
		DiffID:    diffID,
		Size:      cw.n,
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Files:     files,
		// What the layer carries of Debian's, for its SBOM (package sbom).
		Components: contents.Components,
		Distro:     cmp.Or(contents.Distro, t.distro),
		TarSize:    tarSize,
		ZstdDigest: zstdDigest,
		ZstdSize:   zstdSize,
	}, nil
}

// scanContents rewinds f, reads the dpkg records of the layer in it
// (sbom.Scan) and rewinds it again.
func scanContents(ctx context.Context, f *os.File) (sbom.Contents, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sbom.Contents{}, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	c, err := sbom.Scan(ctx, f)
	if err != nil {
		return sbom.Contents{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sbom.Contents{}, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	return c, nil
}

// storeTar stores the uncompressed form of the gzip layer in f beside it,
// as the blob diffID (what a stack with layerCompression "none" serves),
// and returns its size.
func (p *Publisher) storeTar(ctx context.Context, f *os.File, diffID digest.Digest) (int64, error) {
	d, n, err := p.storeForm(ctx, f, "tar", func(w io.Writer, r io.Reader) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err == nil && d != diffID {
		err = fmt.Errorf("the uncompressed layer is %s, want its diffID %s", d, diffID)
	}
	return n, err
}

// storeZstd stores the gzip layer in f compressed with zstd beside it
// (layer.CompressZstd: the same layer gives the same blob) and returns the
// blob's digest and size.
func (p *Publisher) storeZstd(ctx context.Context, f *os.File) (digest.Digest, int64, error) {
	return p.storeForm(ctx, f, "tar.zst", layer.CompressZstd)
}

// storeForm stores another form of the gzip layer in f beside it: encode
// writes the form from the uncompressed tar into a temporary file (named
// *.ext) while it is hashed, and the blob store verifies and keeps it. It
// returns the form's digest and size.
func (p *Publisher) storeForm(ctx context.Context, f *os.File, ext string, encode func(w io.Writer, tar io.Reader) error) (digest.Digest, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("reading the layer: %w", err)
	}
	t, err := os.CreateTemp(p.TempDir, "envreg-layer-*."+ext)
	if err != nil {
		return "", 0, fmt.Errorf("creating temporary layer file: %w", err)
	}
	defer func() {
		t.Close()
		os.Remove(t.Name())
	}()
	dg := digest.SHA256.Digester()
	cw := &countingWriter{w: io.MultiWriter(t, dg.Hash())}
	if err := encode(cw, zr); err != nil {
		return "", 0, fmt.Errorf("writing the %s form of the layer: %w", ext, err)
	}
	if _, err := t.Seek(0, io.SeekStart); err != nil {
		return "", 0, fmt.Errorf("rewinding temporary layer file: %w", err)
	}
	d := dg.Digest()
	if err := p.Blobs.Put(ctx, d, cw.n, t); err != nil {
		return "", 0, fmt.Errorf("storing the %s form of the layer, blob %s: %w", ext, d, err)
	}
	return d, cw.n, nil
}

// buildFromTar writes the canonical layer of the tar file, spooling its
// contents under TempDir.
func (p *Publisher) buildFromTar(ctx context.Context, file string, w io.Writer) (digest.Digest, error) {
	d, err := p.normalizeTar(ctx, file, w)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", file, err)
	}
	return d, nil
}

func (p *Publisher) normalizeTar(ctx context.Context, file string, w io.Writer) (digest.Digest, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	spool, err := os.MkdirTemp(p.TempDir, "envreg-tar-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(spool)
	entries, err := p.Policy.ReadTar(ctx, f, spool)
	if err != nil {
		return "", err
	}
	return layer.Write(ctx, entries, w)
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
