package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// defaultGrace is how old an unreferenced blob must be before gc deletes
// it: far longer than any publish (blob stored, then the release recorded)
// or compose (config blob stored, then its manifest) takes.
const defaultGrace = time.Hour

// runGC deletes the blobs nothing references: no package version's layer,
// no blob linked to an ordinary (pushed-to) repository, no stored
// document's config or layer (documents are the synthesized indexes and
// manifests that keep env@sha256:… pullable, and pushed manifests; gc
// never deletes documents). A blob younger than --grace is kept whatever refers to it,
// because publishing and composing store blobs before the reference that
// makes them live. Upload temp files are not blobs and never touched.
//
// Mark and sweep run on two views: references are read once, the
// candidates listed, then references are read again from freshly opened
// stores just before deleting, and each candidate's age is checked again
// right before its Delete. What stays racy is a publish that re-uses an
// old unreferenced blob (Put of an existing blob succeeds without writing
// it, so its age does not change) and records its release in the
// milliseconds between that second read and the Delete.
func runGC(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "gc")
	st := storageFlags(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and the bytes it would free; delete nothing")
	grace := fs.Duration("grace", defaultGrace, "keep unreferenced blobs younger than this: a publish or compose in progress stores blobs before it references them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %v", fs.Args())
	}
	if *grace < 0 {
		return usagef("--grace must not be negative")
	}
	log := quietLogger(env)
	b, err := st.open(ctx, log)
	if err != nil {
		return err
	}
	defer b.Close()
	bw, _, err := walkers(st, b)
	if err != nil {
		return err
	}
	_, blobsAt := st.describe()
	del, ok := b.blobs.(blobDeleter)
	if !ok && !*dryRun {
		return fmt.Errorf("the blob store %s cannot delete blobs (no Delete)", blobsAt)
	}
	ages, err := blobAges(st, b, *grace)
	if err != nil {
		return err
	}

	refs, err := references(ctx, b)
	if err != nil {
		return err
	}
	type candidate struct {
		d    digest.Digest
		size int64
	}
	var (
		candidates      []candidate
		referenced      int
		young           int
		now             = time.Now()
		referencedBytes int64
	)
	err = bw.Walk(ctx, func(d digest.Digest, size int64) error {
		if refs[d] {
			referenced++
			referencedBytes += size
			return nil
		}
		if ages != nil {
			t, err := ages.ModTime(ctx, d)
			if errors.Is(err, layerstore.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("blob %s: %w", d, err)
			}
			if now.Sub(t) < *grace {
				young++
				return nil
			}
		}
		candidates = append(candidates, candidate{d, size})
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}

	// Sweep against a fresh view of the references: a publish may have
	// recorded a release since the first read.
	if len(candidates) > 0 {
		fresh, err := st.open(ctx, log)
		if err != nil {
			return err
		}
		refs, err = references(ctx, fresh)
		fresh.Close()
		if err != nil {
			return err
		}
	}
	var deleted int
	var freed int64
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	for _, c := range candidates {
		if refs[c.d] {
			referenced++
			referencedBytes += c.size
			continue
		}
		if ages != nil {
			t, err := ages.ModTime(ctx, c.d)
			if errors.Is(err, layerstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("blob %s: %w", c.d, err)
			}
			if time.Since(t) < *grace {
				young++
				continue
			}
		}
		if !*dryRun {
			if err := del.Delete(ctx, c.d); err != nil {
				if errors.Is(err, layerstore.ErrNotFound) {
					continue
				}
				return fmt.Errorf("deleting blob %s: %w (%d deleted so far, %d bytes freed)", c.d, err, deleted, freed)
			}
		}
		deleted++
		freed += c.size
		fmt.Fprintf(env.stdout, "%s %s (%d bytes)\n", verb, c.d, c.size)
	}
	freedVerb := "freed"
	if *dryRun {
		freedVerb = "would be freed"
	}
	fmt.Fprintf(env.stdout, "gc: %s %d unreferenced blobs, %d bytes %s; kept %d referenced blobs (%d bytes) and %d unreferenced blobs younger than %s\n",
		verb, deleted, freed, freedVerb, referenced, referencedBytes, young, *grace)
	return nil
}

// blobAges returns how to tell a blob's age: from the files of the
// embedded blob store, or from a backend that reports it. With no grace
// period ages are not needed (nil).
func blobAges(st *storage, b *backends, grace time.Duration) (blobAger, error) {
	if grace == 0 {
		return nil, nil
	}
	if st.blobs == "" {
		return fsBlobAges{root: filepath.Join(st.data, "blobs")}, nil
	}
	if a, ok := b.blobs.(blobAger); ok {
		return a, nil
	}
	_, blobsAt := st.describe()
	return nil, fmt.Errorf("the blob store %s cannot tell when a blob was stored, which the grace period needs; "+
		"give --grace 0 to collect anyway, only while nothing publishes or composes", blobsAt)
}

// references returns every blob digest that a release or stored document
// references. A document counts with every digest its JSON mentions
// (config, layers, manifests, subject, annotations alike), and one that
// is not JSON with every digest in its bytes: a document gc does not
// understand must keep what it points to.
func references(ctx context.Context, b *backends) (map[digest.Digest]bool, error) {
	dw, ok := b.catalog.(documentWalker)
	if !ok {
		return nil, errors.New("the catalog cannot list its stored manifests (no WalkDocuments)")
	}
	refs := map[digest.Digest]bool{}
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for _, r := range snap.AllReleases() {
		for _, l := range r.Layers {
			refs[l.Digest] = true
		}
	}
	// Blobs linked to ordinary repositories (pushed blobs, whether a
	// manifest references them yet or not) stay pullable.
	repos, err := b.catalog.RepositoryNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	for _, repo := range repos {
		linked, err := b.catalog.Blobs(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("listing the blobs of repository %s: %w", repo, err)
		}
		for _, d := range linked {
			refs[d] = true
		}
	}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		var v any
		if err := json.Unmarshal(d.Data, &v); err != nil {
			for _, m := range digestPattern.FindAll(d.Data, -1) {
				refs[digest.Digest(m)] = true
			}
			return nil
		}
		markStrings(v, refs)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing stored documents (nothing deleted; run envreg verify): %w", err)
	}
	return refs, nil
}

// markStrings marks every string in a decoded JSON value that is a valid
// digest.
func markStrings(v any, refs map[digest.Digest]bool) {
	switch v := v.(type) {
	case string:
		if d := digest.Digest(v); d.Validate() == nil {
			refs[d] = true
		}
	case []any:
		for _, e := range v {
			markStrings(e, refs)
		}
	case map[string]any:
		for _, e := range v {
			markStrings(e, refs)
		}
	}
}
