package main

import (
	"context"
	"fmt"
	"time"

	"github.com/envreg/envreg/maintenance"
)

// Integrity tooling (envreg verify, envreg gc) enumerates what is stored,
// which the ports the registry serves through do not promise: the
// capabilities it needs are maintenance's, checked by type assertion.
type (
	blobWalker     = maintenance.BlobWalker
	blobDeleter    = maintenance.BlobDeleter
	documentWalker = maintenance.DocumentWalker
	blobAger       = maintenance.BlobAger
)

// walkers returns the enumeration capabilities of b, or an error naming
// the backend that lacks one.
func walkers(st *storage, b *backends) (blobWalker, documentWalker, error) {
	bw, dw, err := maintenance.Walkers(b.stores())
	return bw, dw, st.explain(err)
}

// runVerify rechecks everything stored (maintenance.Verify) and prints
// each section as it is checked: a summary line, then its damage.
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
	if _, _, err := walkers(st, b); err != nil {
		return err
	}
	start := time.Now()
	r, err := maintenance.Verify(ctx, b.stores(), maintenance.VerifyOptions{
		OnSection: func(s maintenance.Section, r *maintenance.VerifyReport) { printSection(env, s, r) },
	})
	if err != nil {
		return st.explain(err)
	}
	if len(r.Damage) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("found %d problems (listed above, marked DAMAGED)", len(r.Damage))}
	}
	fmt.Fprintf(env.stdout, "verified in %s: no damage found\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// printSection prints one section of a verification.
func printSection(env *cliEnv, s maintenance.Section, r *maintenance.VerifyReport) {
	switch s.Name {
	case maintenance.SectionBlobs:
		fmt.Fprintf(env.stdout, "blobs: %d checked (%d bytes)", r.Blobs, r.BlobBytes)
	case maintenance.SectionReleases:
		fmt.Fprintf(env.stdout, "package versions: %d checked (%d layers)", r.Releases, r.Layers)
	case maintenance.SectionDocuments:
		fmt.Fprintf(env.stdout, "documents: %d checked (indexes: %d, manifests: %d), %d of the manifests pushed, %d SBOM artifacts",
			r.Documents, r.Indexes, r.Manifests, r.Pushed, r.SBOMs)
	case maintenance.SectionMarks:
		fmt.Fprintf(env.stdout, "composition marks: %d checked (%d stacks)", r.Marks, r.MarkedStacks)
	case maintenance.SectionRepositories:
		fmt.Fprintf(env.stdout, "repositories: %d checked (%d indexes)", r.Repositories, r.RepositoryIndexes)
	default:
		fmt.Fprintf(env.stdout, "%s: checked", s.Name)
	}
	if len(s.Damage) > 0 {
		fmt.Fprintf(env.stdout, ", %d damaged", len(s.Damage))
	}
	fmt.Fprintln(env.stdout)
	for _, p := range s.Damage {
		fmt.Fprintln(env.stdout, "  DAMAGED", p)
	}
	for _, n := range s.Notes {
		fmt.Fprintln(env.stdout, "  note:", n)
	}
}
