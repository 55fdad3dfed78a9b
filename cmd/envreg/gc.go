package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
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

	view, err := references(ctx, b)
	if err != nil {
		return err
	}
	// Orphaned pushed manifests first: deleting one ends its claim on
	// blobs, which this same run can then free.
	docsDeleted, docsKept, err := collectOrphans(ctx, env, b, view, *grace, *dryRun)
	if err != nil {
		return err
	}
	refs := view.refs
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
		fv, err := references(ctx, fresh)
		fresh.Close()
		if err != nil {
			return err
		}
		// Orphans still there were kept above or are new: they keep their
		// blobs (in a dry run, those it would delete do not).
		for d, ds := range fv.orphans {
			if docsDeleted[d] {
				continue
			}
			for _, m := range ds {
				fv.refs[m] = true
			}
		}
		refs, view.links = fv.refs, fv.links
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
		if !*dryRun {
			for _, repo := range view.links[c.d] { // links to a blob that is gone
				if err := b.catalog.UnlinkBlob(ctx, repo, c.d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
					return fmt.Errorf("unlinking deleted blob %s from %s: %w", c.d, repo, err)
				}
			}
		}
	}
	freedVerb := "freed"
	if *dryRun {
		freedVerb = "would be freed"
	}
	if len(docsDeleted) > 0 || docsKept > 0 {
		fmt.Fprintf(env.stdout, "gc: %s %d manifests no repository holds any more; kept %d (younger than %s, or of unknown age)\n", verb, len(docsDeleted), docsKept, *grace)
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

// gcView is what gc reads before it deletes anything.
type gcView struct {
	// refs are the blobs that must stay: layers of package versions and
	// every digest a live document mentions.
	refs map[digest.Digest]bool
	// orphans are pushed documents that no repository holds any more
	// (their manifest was deleted), with the digests each mentions: gc
	// deletes them (when old enough) and with them their claim on blobs.
	orphans map[digest.Digest][]digest.Digest
	// links are the repositories each blob is linked to.
	links map[digest.Digest][]string
}

// references reads what keeps blobs alive, as distribution's gc does for
// ordinary repositories: a blob stays while a package version uses it, a
// composed image (an index with io.envreg.stack and its manifests) or a
// manifest that some repository holds mentions it. A blob linked to a
// repository that no manifest names (an upload whose manifest never came,
// or whose manifest was deleted) goes once it is older than the grace
// period. A document counts with every digest its JSON mentions (config,
// layers, manifests, subject, annotations alike), and one that is not
// JSON with every digest in its bytes: a document gc does not understand
// keeps what it points to.
func references(ctx context.Context, b *backends) (*gcView, error) {
	dw, ok := b.catalog.(documentWalker)
	if !ok {
		return nil, errors.New("the catalog cannot list its stored manifests (no WalkDocuments)")
	}
	v := &gcView{refs: map[digest.Digest]bool{}, orphans: map[digest.Digest][]digest.Digest{}, links: map[digest.Digest][]string{}}
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for _, r := range snap.AllReleases() {
		for _, l := range r.Layers {
			v.refs[l.Digest] = true
		}
	}
	repos, err := b.catalog.RepositoryNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	live := map[digest.Digest]bool{}
	for _, repo := range repos {
		linked, err := b.catalog.Blobs(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("listing the blobs of repository %s: %w", repo, err)
		}
		for _, d := range linked {
			v.links[d] = append(v.links[d], repo)
		}
		recs, err := b.catalog.Manifests(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("listing the manifests of repository %s: %w", repo, err)
		}
		for _, rec := range recs {
			live[rec.Digest] = true
		}
	}
	type stored struct {
		mentions []digest.Digest
		doc      *document // nil: not a document gc understands
	}
	docs := map[digest.Digest]stored{}
	err = dw.WalkDocuments(ctx, func(d catalog.Document) error {
		var st stored
		var val any
		if err := json.Unmarshal(d.Data, &val); err != nil {
			for _, m := range digestPattern.FindAll(d.Data, -1) {
				st.mentions = append(st.mentions, digest.Digest(m))
			}
		} else {
			mentioned := map[digest.Digest]bool{}
			markStrings(val, mentioned)
			for m := range mentioned {
				st.mentions = append(st.mentions, m)
			}
			if doc, err := parseDocument(d); err == nil {
				st.doc = &doc
			}
		}
		docs[d.Digest] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing stored documents (nothing deleted; run envreg verify): %w", err)
	}
	// An index a repository holds keeps its manifests (and nested
	// indexes) whether or not they are held themselves.
	for changed := true; changed; {
		changed = false
		for dgst := range live {
			if st, ok := docs[dgst]; ok && st.doc != nil {
				for _, m := range st.doc.Manifests {
					if !live[m.Digest] {
						live[m.Digest], changed = true, true
					}
				}
			}
		}
	}
	composed := map[digest.Digest]bool{}
	for dgst, st := range docs {
		if st.doc != nil && st.doc.Annotations[manifestgen.KeyStack] != "" {
			composed[dgst] = true
			for _, m := range st.doc.Manifests {
				composed[m.Digest] = true
			}
		}
	}
	for dgst, st := range docs {
		if st.doc != nil && !composed[dgst] && !live[dgst] {
			v.orphans[dgst] = st.mentions
			continue
		}
		for _, m := range st.mentions {
			v.refs[m] = true
		}
	}
	return v, nil
}

// documentAger tells when a document was stored (the embedded catalog);
// without it orphaned documents are deleted only with --grace 0.
type documentAger interface {
	DocumentModTime(ctx context.Context, d digest.Digest) (time.Time, error)
}

// collectOrphans deletes (or, in a dry run, lists) the orphaned pushed
// documents older than grace, each after checking again that no
// repository holds it, and makes the kept ones' digests references. It
// returns the set it deleted and how many it kept.
func collectOrphans(ctx context.Context, env *cliEnv, b *backends, view *gcView, grace time.Duration, dryRun bool) (map[digest.Digest]bool, int, error) {
	deleted := map[digest.Digest]bool{}
	kept := 0
	purger, canDelete := b.catalog.(catalog.Purger)
	ager, hasAges := b.catalog.(documentAger)
	keep := func(d digest.Digest) {
		kept++
		for _, m := range view.orphans[d] {
			view.refs[m] = true
		}
	}
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	for _, d := range slices.Sorted(maps.Keys(view.orphans)) {
		if !canDelete || (grace > 0 && !hasAges) {
			keep(d)
			continue
		}
		if grace > 0 {
			t, err := ager.DocumentModTime(ctx, d)
			if errors.Is(err, catalog.ErrNotFound) {
				continue // gone meanwhile
			}
			if err != nil {
				return nil, 0, fmt.Errorf("document %s: %w", d, err)
			}
			if time.Since(t) < grace {
				keep(d)
				continue
			}
		}
		switch isHeld, err := held(ctx, b.catalog, d); {
		case err != nil:
			return nil, 0, fmt.Errorf("checking manifest %s: %w", d, err)
		case isHeld: // pushed again since the first read
			keep(d)
			continue
		}
		if !dryRun {
			if err := purger.DeleteDocument(ctx, d); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return nil, 0, fmt.Errorf("deleting manifest %s: %w", d, err)
			}
		}
		deleted[d] = true
		fmt.Fprintf(env.stdout, "%s manifest %s (no repository holds it)\n", verb, d)
	}
	return deleted, kept, nil
}

// held reports whether some repository holds manifest d now (read fresh,
// right before an orphaned document is deleted).
func held(ctx context.Context, repos catalog.Repositories, d digest.Digest) (bool, error) {
	names, err := repos.RepositoryNames(ctx)
	if err != nil {
		return false, err
	}
	for _, repo := range names {
		switch _, err := repos.Manifest(ctx, repo, d); {
		case err == nil:
			return true, nil
		case !errors.Is(err, catalog.ErrNotFound):
			return false, err
		}
	}
	return false, nil
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
