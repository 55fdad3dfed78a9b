package main

import (
	"context"
	"fmt"
	"time"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
)

// runGC deletes the blobs that no package version or stored manifest
// references, and the pushed manifests no repository holds any more
// (maintenance.GC says how, and what stays racy).
func runGC(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "gc")
	st := storageFlags(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and the bytes it would free; delete nothing")
	grace := fs.Duration("grace", maintenance.DefaultGrace, "keep unreferenced blobs younger than this: a publish or compose in progress stores blobs before it references them")
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
	if _, _, err := walkers(st, b); err != nil {
		return err
	}
	if _, err := blobAges(st, b, *grace); err != nil {
		return err
	}
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	r, err := maintenance.GC(ctx, b.stores(), maintenance.GCOptions{
		Grace:  *grace,
		DryRun: *dryRun,
		Reopen: func(ctx context.Context) (catalog.Store, error) {
			fresh, err := st.open(ctx, log)
			if err != nil {
				return nil, err
			}
			return fresh.catalog, nil
		},
		OnDelete: func(d maintenance.Deletion) {
			if d.Document {
				fmt.Fprintf(env.stdout, "%s manifest %s (no repository holds it)\n", verb, d.Digest)
				return
			}
			fmt.Fprintf(env.stdout, "%s %s (%d bytes)\n", verb, d.Digest, d.Size)
		},
	})
	if err != nil {
		return st.explain(err)
	}
	printGCReport(env, r, verb, *dryRun, *grace)
	return nil
}

// printGCReport prints gc's summary lines.
func printGCReport(env *cliEnv, r *maintenance.GCReport, verb string, dryRun bool, grace time.Duration) {
	freedVerb := "freed"
	if dryRun {
		freedVerb = "would be freed"
	}
	if r.DocumentsDeleted > 0 || r.DocumentsKept > 0 {
		fmt.Fprintf(env.stdout, "gc: %s %d manifests no repository holds any more; kept %d (younger than %s, or of unknown age)\n", verb, r.DocumentsDeleted, r.DocumentsKept, grace)
	}
	fmt.Fprintf(env.stdout, "gc: %s %d unreferenced blobs, %d bytes %s; kept %d referenced blobs (%d bytes) and %d unreferenced blobs younger than %s\n",
		verb, r.BlobsDeleted, r.BytesFreed, freedVerb, r.BlobsReferenced, r.BytesReferenced, r.BlobsYoung, grace)
}

// blobAges returns how to tell a blob's age, which the grace period needs
// (nil with none), or an error naming the blob store that cannot.
func blobAges(st *storage, b *backends, grace time.Duration) (blobAger, error) {
	a, err := maintenance.Ages(b.blobs, grace)
	return a, st.explain(err)
}
