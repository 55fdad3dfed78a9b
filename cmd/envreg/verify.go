package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
)

// Integrity tooling (envreg verify, envreg gc) needs to enumerate what is
// stored, which the layerstore and catalog ports do not promise. These
// optional capabilities are checked by type assertion; the embedded store
// has all of them (layerstore/fs: Walk, Delete; catalog/fsstore:
// WalkDocuments; ages from its files), and so do Redis + S3
// (catalog/redisstore: WalkDocuments; layerstore/s3: Walk, Delete,
// ModTime). A backend that lacks one is refused with an error saying which.
type (
	blobWalker interface {
		Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
	}
	blobDeleter interface {
		Delete(ctx context.Context, d digest.Digest) error
	}
	documentWalker interface {
		WalkDocuments(ctx context.Context, fn func(catalog.Document) error) error
	}
	// blobAger tells when a blob was stored, for gc's grace period.
	blobAger interface {
		ModTime(ctx context.Context, d digest.Digest) (time.Time, error)
	}
)

// fsBlobAges reads blob ages from the embedded blob store's files
// (layerstore/fs layout: ROOT/<algorithm>/<hex>; a blob's mtime is when
// its Put committed it).
type fsBlobAges struct{ root string }

func (a fsBlobAges) ModTime(ctx context.Context, d digest.Digest) (time.Time, error) {
	if err := d.Validate(); err != nil {
		return time.Time{}, err
	}
	info, err := os.Lstat(filepath.Join(a.root, string(d.Algorithm()), d.Encoded()))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, fmt.Errorf("blob %s: %w", d, layerstore.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, err
	}
	return info.ModTime(), nil
}

// walkers returns the enumeration capabilities of b, or an error naming
// the backend that lacks one.
func walkers(st *storage, b *backends) (blobWalker, documentWalker, error) {
	catalogAt, blobsAt := st.describe()
	bw, ok := b.blobs.(blobWalker)
	if !ok {
		return nil, nil, fmt.Errorf("the blob store %s cannot list its blobs (no Walk); the embedded store (--data) and s3:// blob stores can", blobsAt)
	}
	dw, ok := b.catalog.(documentWalker)
	if !ok {
		return nil, nil, fmt.Errorf("the catalog %s cannot list its stored manifests (no WalkDocuments); the embedded store (--data) and redis:// catalogs can", catalogAt)
	}
	return bw, dw, nil
}

// document is the part of an image index or manifest that references
// other content.
type document struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
	Subject   *ocispec.Descriptor  `json:"subject"`
	// Annotations tell composed indexes (manifestgen.KeyStack) from pushed
	// documents.
	Annotations map[string]string `json:"annotations"`
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == manifestgen.MediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == manifestgen.MediaTypeDockerManifest
}

// parseDocument parses a stored index or manifest and checks its shape.
func parseDocument(d catalog.Document) (document, error) {
	var doc document
	if !isIndex(d.MediaType) && !isManifest(d.MediaType) {
		return doc, fmt.Errorf("unknown media type %q", d.MediaType)
	}
	if err := json.Unmarshal(d.Data, &doc); err != nil {
		return doc, fmt.Errorf("%s does not parse: %w", d.MediaType, err)
	}
	if doc.MediaType != "" && doc.MediaType != d.MediaType {
		return doc, fmt.Errorf("stored as %s but says mediaType %s", d.MediaType, doc.MediaType)
	}
	if isManifest(d.MediaType) && doc.Config == nil {
		return doc, errors.New("manifest without a config")
	}
	for _, desc := range slices.Concat(doc.Layers, doc.Manifests, descs(doc.Config, doc.Subject)) {
		if err := desc.Digest.Validate(); err != nil {
			return doc, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
		}
	}
	return doc, nil
}

func descs(ds ...*ocispec.Descriptor) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, d := range ds {
		if d != nil {
			out = append(out, *d)
		}
	}
	return out
}

// digestPattern finds digests mentioned anywhere in a document.
var digestPattern = regexp.MustCompile(`\bsha256:[a-f0-9]{64}\b|\bsha512:[a-f0-9]{128}\b`)

// blobInfo is what verify learned about one stored blob.
type blobInfo struct {
	size    int64
	corrupt bool
}

// runVerify rechecks everything stored: every blob against its digest,
// every catalog release against its layer blobs, every stored document
// against what it references. It reads every blob in full.
func runVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "verify")
	st := storageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %v", fs.Args())
	}
	b, err := st.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer b.Close()
	bw, dw, err := walkers(st, b)
	if err != nil {
		return err
	}
	start := time.Now()
	// Each section prints its summary line, then its problems.
	var problems, section []string
	problem := func(format string, a ...any) {
		section = append(section, fmt.Sprintf(format, a...))
	}
	report := func(format string, a ...any) {
		fmt.Fprintf(env.stdout, format, a...)
		if len(section) > 0 {
			fmt.Fprintf(env.stdout, ", %d damaged", len(section))
		}
		fmt.Fprintln(env.stdout)
		for _, p := range section {
			fmt.Fprintln(env.stdout, "  DAMAGED", p)
		}
		problems, section = append(problems, section...), nil
	}

	// 1. Blobs: stream each through its digest.
	blobs := map[digest.Digest]blobInfo{}
	var total int64
	err = bw.Walk(ctx, func(d digest.Digest, size int64) error {
		got, n, err := digestBlob(ctx, b.blobs, d)
		switch {
		case errors.Is(err, layerstore.ErrNotFound):
			return nil // deleted while we walked
		case err != nil:
			return fmt.Errorf("reading blob %s: %w", d, err)
		}
		info := blobInfo{size: n}
		if got != d {
			info.corrupt = true
			problem("blob %s: content has digest %s (%d bytes): corrupt", d, got, n)
		}
		blobs[d] = info
		total += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	report("blobs: %d checked (%d bytes)", len(blobs), total)

	// 2. Releases: every layer blob exists, with the size the catalog
	// records, and is intact.
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	diffIDs := map[digest.Digest]digest.Digest{} // layer digest -> diffID
	rels := snap.AllReleases()
	layers := 0
	for _, r := range rels {
		for _, l := range r.Layers {
			layers++
			diffIDs[l.Digest] = l.DiffID
			where := fmt.Sprintf("%s %s: layer blob %s", r.ID(), l.Platform, l.Digest)
			checkBlob(blobs, where, l.Digest, l.Size, problem)
		}
	}
	report("package versions: %d checked (%d layers)", len(rels), layers)

	// 3. Documents: each parses and references only what exists.
	docs := map[digest.Digest]catalog.Document{}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		docs[d.Digest] = d
		return nil
	})
	if err != nil {
		// A document that does not match its digest stops the walk; the
		// error names it.
		problem("documents: %v (documents after it were not checked)", err)
	}
	// Composed images (an index with the io.envreg.stack annotation and the
	// manifests it names) must match the catalog exactly; pushed documents
	// (ordinary repositories, kept after a DELETE too) only need the blobs
	// they name, except foreign (non-distributable) layers, which clients
	// fetch elsewhere.
	composed := map[digest.Digest]bool{}
	for dgst, d := range docs {
		if !isIndex(d.MediaType) {
			continue
		}
		if doc, err := parseDocument(d); err == nil && doc.Annotations[manifestgen.KeyStack] != "" {
			composed[dgst] = true
			for _, m := range doc.Manifests {
				composed[m.Digest] = true
			}
		}
	}
	var indexes, manifests, pushed int
	for _, dgst := range slices.Sorted(maps.Keys(docs)) {
		d := docs[dgst]
		doc, err := parseDocument(d)
		if err != nil {
			problem("document %s: %v", dgst, err)
			continue
		}
		if isIndex(d.MediaType) {
			indexes++
			for _, m := range doc.Manifests {
				child, ok := docs[m.Digest]
				switch {
				case !ok:
					problem("index %s: manifest %s is not stored", dgst, m.Digest)
				case int64(len(child.Data)) != m.Size || child.MediaType != m.MediaType:
					problem("index %s: manifest %s is stored as %s, %d bytes; the index says %s, %d bytes",
						dgst, m.Digest, child.MediaType, len(child.Data), m.MediaType, m.Size)
				}
			}
			continue
		}
		manifests++
		checkBlob(blobs, fmt.Sprintf("manifest %s: config %s", dgst, doc.Config.Digest), doc.Config.Digest, doc.Config.Size, problem)
		for _, l := range doc.Layers {
			if !composed[dgst] && manifestgen.ForeignLayer(l) {
				continue
			}
			checkBlob(blobs, fmt.Sprintf("manifest %s: layer %s", dgst, l.Digest), l.Digest, l.Size, problem)
		}
		if !composed[dgst] {
			pushed++
			continue
		}
		if err := checkConfig(ctx, b.blobs, blobs, doc, diffIDs); err != nil {
			problem("manifest %s: config %s: %v", dgst, doc.Config.Digest, err)
		}
	}
	report("documents: %d checked (indexes: %d, manifests: %d), %d of the manifests pushed", len(docs), indexes, manifests, pushed)

	if len(problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("found %d problems (listed above, marked DAMAGED)", len(problems))}
	}
	fmt.Fprintf(env.stdout, "verified in %s: no damage found\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// digestBlob streams blob d through a digester of d's algorithm.
func digestBlob(ctx context.Context, r layerstore.Reader, d digest.Digest) (digest.Digest, int64, error) {
	rc, _, err := r.Open(ctx, d)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	if !d.Algorithm().Available() {
		return "", 0, fmt.Errorf("digest algorithm %s is not available", d.Algorithm())
	}
	dg := d.Algorithm().Digester()
	n, err := io.Copy(dg.Hash(), rc)
	if err != nil {
		return "", n, err
	}
	return dg.Digest(), n, nil
}

// checkBlob reports a referenced blob that is missing, has another size
// or is corrupt.
func checkBlob(blobs map[digest.Digest]blobInfo, where string, d digest.Digest, size int64, problem func(string, ...any)) {
	info, ok := blobs[d]
	switch {
	case !ok:
		problem("%s is missing", where)
	case info.size != size:
		problem("%s has %d bytes, %d expected", where, info.size, size)
	case info.corrupt:
		problem("%s is corrupt", where)
	}
}

// checkConfig checks that a manifest's config parses and lists one diffID
// per layer, each the diffID the catalog records for that layer.
func checkConfig(ctx context.Context, r layerstore.Reader, blobs map[digest.Digest]blobInfo, doc document, diffIDs map[digest.Digest]digest.Digest) error {
	if info, ok := blobs[doc.Config.Digest]; !ok || info.corrupt {
		return nil // reported by checkBlob
	}
	rc, _, err := r.Open(ctx, doc.Config.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	var img ocispec.Image
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&img); err != nil {
		return fmt.Errorf("does not parse: %w", err)
	}
	if got, want := len(img.RootFS.DiffIDs), len(doc.Layers); got != want {
		return fmt.Errorf("lists %d diff_ids for %d layers", got, want)
	}
	var bad []string
	for i, l := range doc.Layers {
		if want, ok := diffIDs[l.Digest]; ok && img.RootFS.DiffIDs[i] != want {
			bad = append(bad, fmt.Sprintf("layer %d (%s): diff_id %s, the catalog says %s", i, l.Digest, img.RootFS.DiffIDs[i], want))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
