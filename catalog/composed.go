package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Compositions: what a stack composed.
//
// Documents and blobs are stored by digest in stores that every repository
// shares, so a digest alone says nothing about who may read it: a pushed
// manifest of a private repository and a composed index sit side by side.
// A stack therefore records a mark for every digest it composes (the index,
// the platform manifests, their configs, and the SBOM artifacts attached
// to the manifests with their SPDX documents and empty configs) before it
// serves them, and serves by digest only what it marked or
// what the catalog's releases ship (manifestgen.Composer.Serves decides).
//
// A mark also says when the composition was last served and whether the
// provisioning API pinned it, which is what envreg gc reads to collect
// compositions nobody asked for in a long time (ComposedWalker).

// ComposedMark is a stack's mark on a digest it composed.
type ComposedMark struct {
	Digest digest.Digest
	// Served is when the digest was last composed or served, coarse (the
	// server refreshes it at most once per touch interval) and never in
	// the future of the store's clock by much.
	Served time.Time
	// Pinned marks are kept by gc whatever their age (the provisioning API
	// pins what it returns).
	Pinned bool
}

// Compositions records which digests each stack composed.
type Compositions interface {
	// MarkComposed records that stack composed ds, served at served. A
	// mark that exists moves its Served time forward (never back); pinned
	// adds the pin, and never removes one. The marks are durable when it
	// returns.
	MarkComposed(ctx context.Context, stack string, served time.Time, pinned bool, ds ...digest.Digest) error
	// Composed returns stack's mark on d, or an error wrapping ErrNotFound.
	Composed(ctx context.Context, stack string, d digest.Digest) (ComposedMark, error)
}

// ComposedWalker is what envreg gc, purge and migrate need besides
// Compositions.
type ComposedWalker interface {
	// WalkComposed calls fn with every mark of every stack.
	WalkComposed(ctx context.Context, fn func(stack string, m ComposedMark) error) error
	// Unmark removes stack's mark on d when it is not pinned and was last
	// served before before, and reports whether it did. A mark refreshed
	// after gc read it is kept.
	Unmark(ctx context.Context, stack string, d digest.Digest, before time.Time) (bool, error)
	// RemoveMarks removes stack's marks on ds whatever their age, pins
	// included (envreg purge: the documents they cover are deleted). Marks
	// that do not exist are skipped.
	RemoveMarks(ctx context.Context, stack string, ds ...digest.Digest) error
}

// ValidateMark checks the stack name and digest of a mark before they name
// a file or a key.
func ValidateMark(stack string, d digest.Digest) error {
	if err := ValidateName(stack); err != nil {
		return fmt.Errorf("composed mark: stack: %w", err)
	}
	if err := layerstore.ValidateDigest(d); err != nil {
		return fmt.Errorf("composed mark of %s: %w", stack, err)
	}
	return nil
}

// LegacyAdoption records that the compositions stored before stacks kept
// marks were adopted (maintenance.Adopt), so that it runs once per store.
type LegacyAdoption interface {
	LegacyAdopted(ctx context.Context) (bool, error)
	SetLegacyAdopted(ctx context.Context) error
}
