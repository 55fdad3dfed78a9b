package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
)

// runPurge removes a package version for good: what yank keeps, purge
// deletes. In an order that a crash at any point leaves consistent and a
// second run completes:
//
//  1. yank it, so that no new composition uses it;
//  2. delete every stored composed index that names a manifest using one
//     of its layers, then those manifests (env@sha256:… pinned to them
//     now answers MANIFEST_UNKNOWN);
//  3. remove the release from the catalog.
//
// Its layer blobs are then referenced by nothing (unless a pushed
// repository holds them) and the next `envreg gc` deletes them.
func runPurge(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "purge")
	store := storageFlags(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be deleted; change nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	name, v, err := nameVersion(fs, "purge")
	if err != nil {
		return err
	}
	b, err := store.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer b.Close()
	catalogAt, _ := store.describe()
	purger, ok := b.catalog.(catalog.Purger)
	if !ok {
		return fmt.Errorf("the catalog %s cannot remove releases", catalogAt)
	}
	dw, ok := b.catalog.(documentWalker)
	if !ok {
		return fmt.Errorf("the catalog %s cannot list its stored manifests (no WalkDocuments)", catalogAt)
	}

	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(snap.Releases(name), func(r catalog.Release) bool { return r.Version.Equal(v) })
	if i < 0 {
		_, err := catalog.SetYanked(ctx, b.catalog, name, v, true) // the error lists the versions there are
		return err
	}
	rel := snap.Releases(name)[i]
	layers := map[digest.Digest]bool{}
	for _, l := range rel.Layers {
		layers[l.Digest] = true
	}
	if !*dryRun && !rel.Yanked {
		if _, err := catalog.SetYanked(ctx, b.catalog, name, v, true); err != nil {
			return err
		}
	}

	// The composed documents that use the release.
	docs := map[digest.Digest]document{}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		doc, err := parseDocument(d)
		if err == nil {
			docs[d.Digest] = doc
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing stored manifests (nothing deleted): %w", err)
	}
	var indexes, manifests []digest.Digest
	for _, dgst := range slices.Sorted(maps.Keys(docs)) {
		idx := docs[dgst]
		if idx.Annotations[manifestgen.KeyStack] == "" {
			continue // not a composed index: pushed content is not purged
		}
		uses := false
		for _, m := range idx.Manifests {
			child, ok := docs[m.Digest]
			if !ok || !slices.ContainsFunc(child.Layers, func(l ocispec.Descriptor) bool { return layers[l.Digest] }) {
				continue
			}
			uses = true
			if !slices.Contains(manifests, m.Digest) {
				manifests = append(manifests, m.Digest)
			}
		}
		if uses {
			indexes = append(indexes, dgst)
		}
	}
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	for _, d := range slices.Concat(indexes, manifests) { // indexes first: none ever names a missing manifest
		if !*dryRun {
			if err := purger.DeleteDocument(ctx, d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return fmt.Errorf("purging %s: %w", rel.ID(), err)
			}
		}
		fmt.Fprintf(env.stdout, "%s composed manifest %s\n", verb, d)
	}
	if !*dryRun {
		if err := purger.RemoveRelease(ctx, name, v); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("purging %s: %w", rel.ID(), err)
		}
	}
	var size int64
	for _, l := range rel.Layers {
		size += l.Size
	}
	what := "purged"
	if *dryRun {
		what = "would purge"
	}
	fmt.Fprintf(env.stdout, "%s %s: %d composed indexes and %d manifests that used it; its %d layers (%d bytes) go with the next envreg gc\n",
		what, rel.ID(), len(indexes), len(manifests), len(rel.Layers), size)
	return nil
}
