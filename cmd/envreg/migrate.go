package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/envreg/envreg/catalog/fsstore"
	blobfs "github.com/envreg/envreg/layerstore/fs"
	"github.com/envreg/envreg/maintenance"
)

// runMigrate copies an embedded data directory into the stores that
// --catalog and --blobs name (Redis and S3), then verifies the copy
// (maintenance.Migrate says in which order, and why serving from the
// target meanwhile is safe).
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
	dst, err := target.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer dst.Close()
	r, err := maintenance.Migrate(ctx, maintenance.Source{Catalog: srcCat, Blobs: srcBlobs}, dst.stores(),
		maintenance.MigrateOptions{OnStep: func(step string, r *maintenance.MigrateReport) { printStep(env, step, r) }})
	if err != nil {
		return err
	}
	if len(r.Problems) > 0 {
		for _, p := range r.Problems {
			fmt.Fprintln(env.stderr, "verify:", p)
		}
		return fmt.Errorf("verification found %d problems", len(r.Problems))
	}
	fmt.Fprintf(env.stdout, "verified in %s: every package version, layer, document and repository is in the target\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// printStep prints the line of one step of a migration.
func printStep(env *cliEnv, step string, r *maintenance.MigrateReport) {
	switch step {
	case maintenance.StepBlobs:
		fmt.Fprintf(env.stdout, "blobs: %d copied (%d bytes)\n", r.Blobs, r.BlobBytes)
	case maintenance.StepDocuments:
		fmt.Fprintf(env.stdout, "documents: %d\n", r.Documents)
	case maintenance.StepMarks:
		fmt.Fprintf(env.stdout, "composition marks: %d copied, %d legacy compositions adopted\n", r.Marks, r.Adopted)
	case maintenance.StepRepositories:
		fmt.Fprintf(env.stdout, "repositories: %d (%d manifests, %d tags)\n", r.Repositories, r.Manifests, r.Tags)
	case maintenance.StepCatalog:
		fmt.Fprintf(env.stdout, "stacks: %d, package versions: %d\n", r.Stacks, r.Releases)
	}
}
