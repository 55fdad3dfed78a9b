package main

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/maintenance"
)

// runPurge removes a package version for good, and the composed manifests
// that use it (maintenance.Purge says in which order, and why).
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
	verb, what := "deleted", "purged"
	if *dryRun {
		verb, what = "would delete", "would purge"
	}
	r, err := maintenance.Purge(ctx, b.catalog, name, v, maintenance.PurgeOptions{
		DryRun:   *dryRun,
		OnDelete: func(d digest.Digest) { fmt.Fprintf(env.stdout, "%s composed manifest %s\n", verb, d) },
	})
	if err != nil {
		return store.explain(err)
	}
	var size int64
	for _, l := range r.Release.Layers {
		size += l.Size
	}
	unmarked := "removed"
	if *dryRun {
		unmarked = "would remove"
	}
	fmt.Fprintf(env.stdout, "%s %d marks of stacks on those compositions and their configs, pinned ones too\n", unmarked, r.Marks)
	fmt.Fprintf(env.stdout, "%s %s: %d composed indexes and %d manifests that used it (and %d SBOM artifacts of them); its %d layers (%d bytes) and their configs go with the next envreg gc\n",
		what, r.Release.ID(), len(r.Indexes), len(r.Manifests), len(r.Referrers), len(r.Release.Layers), size)
	return nil
}
