package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// Stores are the stores a maintenance job works on.
type Stores struct {
	Catalog catalog.Store
	Blobs   layerstore.Store
}

// Optional capabilities. Enumerating and deleting are not part of the
// ports the registry serves through, so they are checked by type
// assertion: the embedded store has all of them (layerstore/fs: Walk,
// Delete, ModTime; catalog/fsstore: WalkDocuments, DocumentModTime,
// catalog.Purger, catalog.ComposedWalker), and so do Redis + S3 except
// document ages (catalog/redisstore has no DocumentModTime).
type (
	// BlobWalker lists the stored blobs.
	BlobWalker interface {
		Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
	}
	// BlobDeleter deletes a blob; an error wrapping layerstore.ErrNotFound
	// when it is not there.
	BlobDeleter interface {
		Delete(ctx context.Context, d digest.Digest) error
	}
	// BlobAger tells when a blob was stored, for gc's grace period; an
	// error wrapping layerstore.ErrNotFound when it is not there.
	BlobAger interface {
		ModTime(ctx context.Context, d digest.Digest) (time.Time, error)
	}
	// DocumentWalker lists the stored documents (indexes and manifests,
	// composed and pushed), each verified against its digest.
	DocumentWalker interface {
		WalkDocuments(ctx context.Context, fn func(catalog.Document) error) error
	}
	// DocumentAger tells when a document was stored; without it gc deletes
	// a document whose age it cannot learn otherwise only with no grace
	// period.
	DocumentAger interface {
		DocumentModTime(ctx context.Context, d digest.Digest) (time.Time, error)
	}
)

// MissingCapabilityError reports a store that lacks a capability a job
// needs.
type MissingCapabilityError struct {
	Store  string // "blob store" or "catalog"
	Method string // the method it lacks, e.g. "Walk"
	Needed string // what for, e.g. "list its blobs"
}

func (e *MissingCapabilityError) Error() string {
	return fmt.Sprintf("the %s cannot %s (no %s)", e.Store, e.Needed, e.Method)
}

var (
	errNoBlobWalk = &MissingCapabilityError{Store: "blob store", Method: "Walk", Needed: "list its blobs"}
	errNoDocWalk  = &MissingCapabilityError{Store: "catalog", Method: "WalkDocuments", Needed: "list its stored manifests"}
	errNoDelete   = &MissingCapabilityError{Store: "blob store", Method: "Delete", Needed: "delete blobs"}
	errNoBlobAge  = &MissingCapabilityError{Store: "blob store", Method: "ModTime", Needed: "tell when a blob was stored, which the grace period needs"}
	errNoPurge    = &MissingCapabilityError{Store: "catalog", Method: "RemoveRelease", Needed: "remove releases"}
	errNoMarkWalk = &MissingCapabilityError{Store: "catalog", Method: "WalkComposed", Needed: "list the stacks' marks on what they composed"}
)

// Walkers returns the enumeration capabilities of s, or a
// *MissingCapabilityError.
func Walkers(s Stores) (BlobWalker, DocumentWalker, error) {
	bw, ok := s.Blobs.(BlobWalker)
	if !ok {
		return nil, nil, errNoBlobWalk
	}
	dw, ok := s.Catalog.(DocumentWalker)
	if !ok {
		return nil, nil, errNoDocWalk
	}
	return bw, dw, nil
}

// Ages returns how blobs tell their age, which a grace period needs: nil
// with no grace period, else the blob store's ModTime or a
// *MissingCapabilityError.
func Ages(blobs layerstore.Store, grace time.Duration) (BlobAger, error) {
	if grace == 0 {
		return nil, nil
	}
	a, ok := blobs.(BlobAger)
	if !ok {
		return nil, errNoBlobAge
	}
	return a, nil
}
