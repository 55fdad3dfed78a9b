package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/manifestgen"
)

// runMigrate copies an embedded data directory into the stores that
// --catalog and --blobs name (Redis and S3), then verifies the copy.
//
// Order is what keeps the target consistent at every moment, so serving
// from it while migrating is safe: blobs first (each verified by the target
// on Put), then documents (which reference configs), then stacks, and
// releases last (which reference layers). Running it again copies only what
// is missing.
func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "migrate")
	target := storageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %v", fs.Args())
	}
	if target.catalog == "" || target.blobs == "" {
		return usagef("give the target with --catalog URL and --blobs URL; --data names the directory to copy from")
	}
	log := quietLogger(env)
	start := time.Now()

	srcCat, err := fsstore.Open(target.data)
	if err != nil {
		return fmt.Errorf("opening source catalog: %w", err)
	}
	defer srcCat.Close()
	srcBlobs, err := blobfs.New(filepath.Join(target.data, "blobs"))
	if err != nil {
		return fmt.Errorf("opening source blobs: %w", err)
	}
	dst, err := target.open(ctx, log)
	if err != nil {
		return err
	}
	defer dst.Close()

	// 1. Blobs: layers and configs.
	var blobs, blobBytes int64
	err = srcBlobs.Walk(ctx, func(d digest.Digest, size int64) error {
		if n, err := dst.blobs.Stat(ctx, d); err == nil && n == size {
			return nil
		}
		rc, _, err := srcBlobs.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := dst.blobs.Put(ctx, d, size, rc); err != nil {
			return fmt.Errorf("copying blob %s: %w", d, err)
		}
		blobs++
		blobBytes += size
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "blobs: %d copied (%d bytes)\n", blobs, blobBytes)

	// 2. Documents: synthesized indexes and manifests, so pinned digests
	// stay pullable.
	var docs int
	err = srcCat.WalkDocuments(ctx, func(d catalog.Document) error {
		docs++
		return dst.catalog.PutDocument(ctx, d)
	})
	if err != nil {
		return fmt.Errorf("copying documents: %w", err)
	}
	fmt.Fprintf(env.stdout, "documents: %d\n", docs)

	// 2a. The stacks' marks on what they composed: without them a stack
	// serves none of the digests clients pinned. Compositions of a source
	// written before marks existed are adopted in the target.
	marks := 0
	err = srcCat.WalkComposed(ctx, func(stack string, m catalog.ComposedMark) error {
		marks++
		return dst.catalog.MarkComposed(ctx, stack, m.Served, m.Pinned, m.Digest)
	})
	if err != nil {
		return fmt.Errorf("copying composition marks: %w", err)
	}
	adopted := 0
	if as, ok := dst.catalog.(manifestgen.AdoptionStore); ok {
		if adopted, err = manifestgen.Adopt(ctx, as, time.Now(), true); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "composition marks: %d copied, %d legacy compositions adopted\n", marks, adopted)

	// 2b. Ordinary (pushed-to) repositories: blob links, then manifest
	// records (their documents were copied above), then tags.
	repos, manifests, tagCount, err := copyRepositories(ctx, srcCat, dst.catalog)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "repositories: %d (%d manifests, %d tags)\n", repos, manifests, tagCount)

	// 3. Stacks, then releases (with their original publish times, so
	// digests do not change).
	snap, err := srcCat.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, st := range snap.Stacks() {
		if err := dst.catalog.PutStack(ctx, st); err != nil {
			return fmt.Errorf("copying stack %s: %w", st.Name, err)
		}
	}
	rels := snap.AllReleases()
	for _, r := range rels {
		if err := dst.catalog.Publish(ctx, r, catalog.PublishOptions{}); err != nil {
			return fmt.Errorf("copying %s: %w", r.ID(), err)
		}
	}
	fmt.Fprintf(env.stdout, "stacks: %d, package versions: %d\n", len(snap.Stacks()), len(rels))

	// 4. Verify: every release is in the target with the same layers, and
	// every layer blob exists with its size; every document is readable
	// (its digest is rechecked on read).
	dsnap, err := dst.catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, r := range rels {
		got := findRelease(dsnap, r)
		if got == nil {
			problems = append(problems, r.ID()+" missing in target")
			continue
		}
		for _, l := range r.Layers {
			gl, ok := got.Layer(l.Platform)
			if !ok || !gl.Equal(l) {
				problems = append(problems, fmt.Sprintf("%s %s: layer differs in target", r.ID(), l.Platform))
				continue
			}
			if n, err := dst.blobs.Stat(ctx, l.Digest); err != nil || n != l.Size {
				problems = append(problems, fmt.Sprintf("%s %s: blob %s: size %d, err %v", r.ID(), l.Platform, l.Digest, n, err))
			}
		}
	}
	err = srcCat.WalkDocuments(ctx, func(d catalog.Document) error {
		if _, err := dst.catalog.Document(ctx, d.Digest); err != nil {
			problems = append(problems, fmt.Sprintf("document %s: %v", d.Digest, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	problems = append(problems, compareRepositories(ctx, srcCat, dst.catalog)...)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(env.stderr, "verify:", p)
		}
		return fmt.Errorf("verification found %d problems", len(problems))
	}
	fmt.Fprintf(env.stdout, "verified in %s: every package version, layer, document and repository is in the target\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func findRelease(snap *catalog.Snapshot, r catalog.Release) *catalog.Release {
	for _, c := range snap.Releases(r.Name) {
		if c.Version.Equal(r.Version) {
			return &c
		}
	}
	return nil
}

// copyRepositories copies every ordinary repository of src into dst.
func copyRepositories(ctx context.Context, src, dst catalog.Repositories) (repos, manifests, tags int, err error) {
	names, err := src.RepositoryNames(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("listing repositories: %w", err)
	}
	for _, repo := range names {
		blobs, err := src.Blobs(ctx, repo)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("repository %s: %w", repo, err)
		}
		for _, d := range blobs {
			if err := dst.LinkBlob(ctx, repo, d); err != nil {
				return 0, 0, 0, fmt.Errorf("repository %s: blob %s: %w", repo, d, err)
			}
		}
		recs, err := src.Manifests(ctx, repo)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("repository %s: %w", repo, err)
		}
		byDigest := map[digest.Digest]catalog.ManifestRecord{}
		for _, rec := range recs {
			if err := dst.PutManifest(ctx, repo, rec); err != nil {
				return 0, 0, 0, fmt.Errorf("repository %s: manifest %s: %w", repo, rec.Digest, err)
			}
			byDigest[rec.Digest] = rec
		}
		ts, err := src.Tags(ctx, repo)
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return 0, 0, 0, fmt.Errorf("repository %s: %w", repo, err)
		}
		for _, tag := range ts {
			d, err := src.Tag(ctx, repo, tag)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("repository %s: tag %s: %w", repo, tag, err)
			}
			rec, ok := byDigest[d]
			if !ok {
				continue // deleted meanwhile
			}
			if err := dst.PutManifest(ctx, repo, rec, tag); err != nil {
				return 0, 0, 0, fmt.Errorf("repository %s: tag %s: %w", repo, tag, err)
			}
		}
		repos++
		manifests += len(recs)
		tags += len(ts)
	}
	return repos, manifests, tags, nil
}

// compareRepositories lists what of src's repositories dst lacks.
func compareRepositories(ctx context.Context, src, dst catalog.Repositories) []string {
	var problems []string
	names, err := src.RepositoryNames(ctx)
	if err != nil {
		return []string{fmt.Sprintf("listing repositories: %v", err)}
	}
	for _, repo := range names {
		blobs, _ := src.Blobs(ctx, repo)
		for _, d := range blobs {
			if ok, err := dst.BlobLinked(ctx, repo, d); err != nil || !ok {
				problems = append(problems, fmt.Sprintf("repository %s: blob %s not linked in target (%v)", repo, d, err))
			}
		}
		recs, _ := src.Manifests(ctx, repo)
		for _, rec := range recs {
			if _, err := dst.Manifest(ctx, repo, rec.Digest); err != nil {
				problems = append(problems, fmt.Sprintf("repository %s: manifest %s: %v", repo, rec.Digest, err))
			}
		}
		tags, _ := src.Tags(ctx, repo)
		for _, tag := range tags {
			want, _ := src.Tag(ctx, repo, tag)
			if got, err := dst.Tag(ctx, repo, tag); err != nil || got != want {
				problems = append(problems, fmt.Sprintf("repository %s: tag %s is %s in target, want %s (%v)", repo, tag, got, want, err))
			}
		}
	}
	return problems
}
