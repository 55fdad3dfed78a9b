package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/sbom"
)

// The sections of a verification, in the order Verify checks them.
const (
	SectionBlobs        = "blobs"
	SectionReleases     = "package versions"
	SectionDocuments    = "documents"
	SectionMarks        = "composition marks"
	SectionRepositories = "repositories"
)

// Section is what one section of a verification found.
type Section struct {
	Name string
	// Damage is what is broken: a pull or a resolution that uses it fails.
	Damage []string
	// Notes are states that are not damage but worth knowing, such as
	// what a gc running elsewhere leaves for a moment.
	Notes []string
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// OnSection is called after each section is checked, with the counts
	// so far, so that a long verification reports as it goes.
	OnSection func(Section, *VerifyReport)
}

// VerifyReport counts what Verify checked and the damage it found.
type VerifyReport struct {
	Blobs     int
	BlobBytes int64
	// Releases and the layers they name.
	Releases, Layers int
	// Documents, of which indexes and manifests, and of the manifests the
	// pushed ones (the rest were composed).
	Documents, Indexes, Manifests, Pushed int
	// SBOMs are the SBOM artifacts among the manifests (not counted as
	// pushed).
	SBOMs int
	// Marks checked, in how many stacks (zero when the catalog cannot
	// list its marks).
	Marks, MarkedStacks int
	// Repositories checked, and the indexes they hold.
	Repositories, RepositoryIndexes int
	// Damage is every problem found, in section order; Notes every note.
	Damage, Notes []string
}

// blobInfo is what verify learned about one stored blob.
type blobInfo struct {
	size    int64
	corrupt bool
}

// verifier is one verification.
type verifier struct {
	s       Stores
	o       VerifyOptions
	bw      BlobWalker
	dw      DocumentWalker
	r       VerifyReport
	section []string
	notes   []string
	blobs   map[digest.Digest]blobInfo
	diffIDs map[digest.Digest]digest.Digest // layer digest -> diffID, from the catalog
	docs    map[digest.Digest]catalog.Document
}

// Verify rechecks everything stored: every blob against its digest, every
// catalog release against its layer blobs, every stored document against
// what it references, the stacks' marks against what they compose, and
// every repository's indexes against the manifests it holds. It reads
// every blob in full. Damage is reported, not returned as an error: the
// error is for a verification that could not run.
func Verify(ctx context.Context, s Stores, o VerifyOptions) (*VerifyReport, error) {
	bw, dw, err := Walkers(s)
	if err != nil {
		return nil, err
	}
	v := &verifier{s: s, o: o, bw: bw, dw: dw, blobs: map[digest.Digest]blobInfo{},
		diffIDs: map[digest.Digest]digest.Digest{}, docs: map[digest.Digest]catalog.Document{}}
	for _, step := range []struct {
		name  string
		check func(context.Context) error
	}{
		{SectionBlobs, v.checkBlobs},
		{SectionReleases, v.checkReleases},
		{SectionDocuments, v.checkDocuments},
		{SectionMarks, v.checkMarks},
		{SectionRepositories, v.checkRepositories},
	} {
		if err := step.check(ctx); err != nil {
			return nil, err
		}
		v.done(step.name)
	}
	return &v.r, nil
}

func (v *verifier) damage(format string, a ...any) {
	v.section = append(v.section, fmt.Sprintf(format, a...))
}

func (v *verifier) note(format string, a ...any) {
	v.notes = append(v.notes, fmt.Sprintf(format, a...))
}

// done ends a section.
func (v *verifier) done(name string) {
	v.r.Damage = append(v.r.Damage, v.section...)
	v.r.Notes = append(v.r.Notes, v.notes...)
	if v.o.OnSection != nil {
		v.o.OnSection(Section{Name: name, Damage: v.section, Notes: v.notes}, &v.r)
	}
	v.section, v.notes = nil, nil
}

// checkBlobs streams each blob through its digest.
func (v *verifier) checkBlobs(ctx context.Context) error {
	err := v.bw.Walk(ctx, func(d digest.Digest, size int64) error {
		got, n, err := digestBlob(ctx, v.s.Blobs, d)
		switch {
		case errors.Is(err, layerstore.ErrNotFound):
			return nil // deleted while we walked
		case err != nil:
			return fmt.Errorf("reading blob %s: %w", d, err)
		}
		info := blobInfo{size: n}
		if got != d {
			info.corrupt = true
			v.damage("blob %s: content has digest %s (%d bytes): corrupt", d, got, n)
		}
		v.blobs[d] = info
		v.r.Blobs++
		v.r.BlobBytes += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	return nil
}

// checkReleases checks that every layer blob of every release exists,
// with the size the catalog records, and is intact.
func (v *verifier) checkReleases(ctx context.Context) error {
	snap, err := v.s.Catalog.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	rels := snap.AllReleases()
	for _, r := range rels {
		for _, l := range r.AllLayers() {
			v.r.Layers++
			for _, b := range l.Blobs() {
				v.diffIDs[b.Digest] = l.DiffID
				v.checkBlob(fmt.Sprintf("%s %s: layer blob %s", r.ID(), l.Platform, b.Digest), b.Digest, b.Size)
			}
		}
	}
	v.r.Releases = len(rels)
	return nil
}

// checkDocuments checks that each document parses and references only
// what exists. Composed images (an index with the io.envreg.stack
// annotation and the manifests it names) must match the catalog exactly;
// pushed documents (ordinary repositories, kept after a DELETE too) only
// need the blobs they name, except foreign (non-distributable) layers,
// which clients fetch elsewhere.
func (v *verifier) checkDocuments(ctx context.Context) error {
	err := v.dw.WalkDocuments(ctx, func(d catalog.Document) error {
		v.docs[d.Digest] = d
		return nil
	})
	if err != nil {
		// A document that does not match its digest stops the walk; the
		// error names it.
		v.damage("documents: %v (documents after it were not checked)", err)
	}
	composed := v.composed()
	for _, dgst := range slices.Sorted(maps.Keys(v.docs)) {
		d := v.docs[dgst]
		doc, err := parseDocument(d)
		if err != nil {
			v.damage("document %s: %v", dgst, err)
			continue
		}
		if isIndex(d.MediaType) {
			v.r.Indexes++
			v.checkIndex(dgst, doc)
			continue
		}
		v.r.Manifests++
		if doc.ArtifactType == sbom.MediaType {
			v.r.SBOMs++
			v.checkSBOM(ctx, dgst, doc)
			continue
		}
		v.checkManifest(ctx, dgst, doc, composed[dgst])
	}
	v.r.Documents = len(v.docs)
	return nil
}

// composed returns the composed documents: indexes that name their stack
// and the manifests they name.
func (v *verifier) composed() map[digest.Digest]bool {
	composed := map[digest.Digest]bool{}
	for dgst, d := range v.docs {
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
	return composed
}

// checkIndex checks that every manifest an index names is stored as it
// says.
func (v *verifier) checkIndex(dgst digest.Digest, doc document) {
	for _, m := range doc.Manifests {
		child, ok := v.docs[m.Digest]
		switch {
		case !ok:
			v.damage("index %s: manifest %s is not stored", dgst, m.Digest)
		case int64(len(child.Data)) != m.Size || child.MediaType != m.MediaType:
			v.damage("index %s: manifest %s is stored as %s, %d bytes; the index says %s, %d bytes",
				dgst, m.Digest, child.MediaType, len(child.Data), m.MediaType, m.Size)
		}
	}
}

// checkManifest checks a manifest's config and layers, and for a composed
// one that its config matches the catalog.
func (v *verifier) checkManifest(ctx context.Context, dgst digest.Digest, doc document, composed bool) {
	v.checkBlob(fmt.Sprintf("manifest %s: config %s", dgst, doc.Config.Digest), doc.Config.Digest, doc.Config.Size)
	for _, l := range doc.Layers {
		if !composed && manifestgen.ForeignLayer(l) {
			continue
		}
		v.checkBlob(fmt.Sprintf("manifest %s: layer %s", dgst, l.Digest), l.Digest, l.Size)
	}
	if !composed {
		v.r.Pushed++
		return
	}
	if err := v.checkConfig(ctx, doc); err != nil {
		v.damage("manifest %s: config %s: %v", dgst, doc.Config.Digest, err)
	}
}

// checkSBOM checks an SBOM artifact: its empty config and its SPDX blob
// are stored whole, the SPDX document parses with the library and
// describes the artifact's subject, and the subject is stored as the
// artifact says.
func (v *verifier) checkSBOM(ctx context.Context, dgst digest.Digest, doc document) {
	v.checkBlob(fmt.Sprintf("SBOM artifact %s: config %s", dgst, doc.Config.Digest), doc.Config.Digest, doc.Config.Size)
	if len(doc.Layers) != 1 || doc.Subject == nil {
		v.damage("SBOM artifact %s: %d layers and subject %v; want one SPDX document and a subject", dgst, len(doc.Layers), doc.Subject)
		return
	}
	l, subject := doc.Layers[0], *doc.Subject
	v.checkBlob(fmt.Sprintf("SBOM artifact %s: SPDX document %s", dgst, l.Digest), l.Digest, l.Size)
	switch child, ok := v.docs[subject.Digest]; {
	case !ok:
		v.damage("SBOM artifact %s: its subject %s is not stored", dgst, subject.Digest)
	case int64(len(child.Data)) != subject.Size || child.MediaType != subject.MediaType:
		v.damage("SBOM artifact %s: its subject %s is stored as %s, %d bytes; the artifact says %s, %d bytes",
			dgst, subject.Digest, child.MediaType, len(child.Data), subject.MediaType, subject.Size)
	}
	if info, ok := v.blobs[l.Digest]; !ok || info.corrupt || info.size != l.Size || l.Size > 64<<20 {
		return // reported by checkBlob
	}
	rc, _, err := v.s.Blobs.Open(ctx, l.Digest)
	if err != nil {
		v.damage("SBOM artifact %s: reading %s: %v", dgst, l.Digest, err)
		return
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		v.damage("SBOM artifact %s: reading %s: %v", dgst, l.Digest, err)
		return
	}
	spdx, err := sbom.Parse(data)
	if err != nil {
		v.damage("SBOM artifact %s: %v", dgst, err)
		return
	}
	if len(spdx.Packages) == 0 || spdx.Packages[0].PackageVersion != subject.Digest.String() {
		v.damage("SBOM artifact %s: the SPDX document does not describe its subject %s", dgst, subject.Digest)
	}
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
func (v *verifier) checkBlob(where string, d digest.Digest, size int64) {
	info, ok := v.blobs[d]
	switch {
	case !ok:
		v.damage("%s is missing", where)
	case info.size != size:
		v.damage("%s has %d bytes, %d expected", where, info.size, size)
	case info.corrupt:
		v.damage("%s is corrupt", where)
	}
}

// checkConfig checks that a manifest's config parses and lists one diffID
// per layer, each the diffID the catalog records for that layer.
func (v *verifier) checkConfig(ctx context.Context, doc document) error {
	if info, ok := v.blobs[doc.Config.Digest]; !ok || info.corrupt {
		return nil // reported by checkBlob
	}
	rc, _, err := v.s.Blobs.Open(ctx, doc.Config.Digest)
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
		if want, ok := v.diffIDs[l.Digest]; ok && img.RootFS.DiffIDs[i] != want {
			bad = append(bad, fmt.Sprintf("layer %d (%s): diff_id %s, the catalog says %s", i, l.Digest, img.RootFS.DiffIDs[i], want))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
