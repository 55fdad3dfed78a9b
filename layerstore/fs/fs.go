// Package fs stores content-addressed blobs as files under one directory
// (envreg's default blob backend, under --data).
//
// Layout, with root the directory passed to New (cmd/envreg passes
// DATA/blobs):
//
//	<root>/
//	  sha256/
//	    <hex>            one committed blob, named by the hex part of its digest
//	  sha512/
//	    <hex>            blobs addressed with sha512
//	  _uploads/
//	    put-<random>     a Put in progress (or abandoned by a crash)
//
// A blob becomes visible only through the commit sequence containerd's
// content store uses: the bytes go to a temp file in _uploads (same
// filesystem as the final path, so the rename is atomic) through
// layerstore.Verify, which checks digest and size while they stream; then
// File.Sync, Close, Rename to the final path, and a sync of the directory so
// that the rename itself survives a power loss. A Put that fails at any step
// removes its temp file: a reader never sees a torn or unverified blob.
// Temp files left behind by a crash are removed by New once they are older
// than an hour (younger ones may belong to another process writing now).
//
// Only sha256 and sha512 digests are accepted. Paths are built only from a
// validated digest (algorithm from a fixed list, lower-case hex of the right
// length), so no input can reach outside root.
//
// This package is not a cache and never evicts; garbage collection is a
// separate tool (package maintenance) built on Walk, Delete and ModTime.
package fs

import (
	"context"
	_ "crypto/sha256" // register the digest algorithms with crypto
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/envreg/envreg/internal/durable"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

const (
	uploadsDir = "_uploads"
	// staleUploadAge is how old a temp file must be before New removes it.
	staleUploadAge = time.Hour
)

// Store is a layerstore.Store on the local filesystem. It is safe for
// concurrent use, also by several processes sharing root.
type Store struct {
	root    string
	observe func(op string, d time.Duration, err error)
}

// Option configures New.
type Option func(*Store)

// WithObserver calls observe after every Stat, Open and Put (op "stat",
// "open", "put"), for metrics. It must be quick.
func WithObserver(observe func(op string, d time.Duration, err error)) Option {
	return func(s *Store) { s.observe = observe }
}

// observed reports an operation that started at start.
func (s *Store) observed(op string, start time.Time, err error) {
	if s.observe != nil {
		s.observe(op, time.Since(start), err)
	}
}

var _ layerstore.Store = (*Store)(nil)

// New opens (creating if needed) the blob store at root and removes temp
// files of uploads abandoned more than an hour ago.
func New(root string, opts ...Option) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("opening blob store: %w", err)
	}
	s := &Store{root: root}
	for _, o := range opts {
		o(s)
	}
	for _, dir := range append(s.algDirs(), s.uploads()) {
		if err := durable.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("opening blob store: %w", err)
		}
	}
	if err := durable.RemoveStale(s.uploads(), time.Now().Add(-staleUploadAge)); err != nil {
		return nil, fmt.Errorf("opening blob store %s: %w", root, err)
	}
	return s, nil
}

// Writable reports whether the store's directories can be written (for
// readiness checks): a read-only or full-permission-denied mount is
// unavailable for publishing and pushing.
func (s *Store) Writable() error {
	for _, dir := range append(s.algDirs(), s.uploads()) {
		if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
			return layerstore.Unavailable(fmt.Errorf("blob directory %s is not writable: %w", dir, err))
		}
	}
	return nil
}

func (s *Store) algDirs() []string {
	dirs := make([]string, len(layerstore.Algorithms))
	for i, a := range layerstore.Algorithms {
		dirs[i] = filepath.Join(s.root, string(a))
	}
	return dirs
}

func (s *Store) uploads() string { return filepath.Join(s.root, uploadsDir) }

// path validates d and returns the file it is stored in.
func (s *Store) path(d digest.Digest) (string, error) {
	if err := layerstore.ValidateDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, string(d.Algorithm()), d.Encoded()), nil
}

func notFound(d digest.Digest) error { return fmt.Errorf("blob %s: %w", d, layerstore.ErrNotFound) }

// Stat returns the size of the blob d, or an error wrapping
// layerstore.ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (n int64, err error) {
	defer func(start time.Time) { s.observed("stat", start, err) }(time.Now())
	return s.stat(ctx, d)
}

func (s *Store) stat(ctx context.Context, d digest.Digest) (int64, error) {
	p, err := s.path(d)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	info, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, notFound(d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return info.Size(), nil
}

// ModTime returns when the blob d was stored: its file's modification
// time, which is when Put committed it (the rename) or last renewed it (a
// Put of a blob that exists), or an error wrapping layerstore.ErrNotFound.
// envreg gc uses it for its grace period.
func (s *Store) ModTime(ctx context.Context, d digest.Digest) (time.Time, error) {
	p, err := s.path(d)
	if err != nil {
		return time.Time{}, err
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	info, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, notFound(d)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return info.ModTime(), nil
}

// Open returns the blob d as an *os.File and its size, or an error wrapping
// layerstore.ErrNotFound. The caller closes it.
func (s *Store) Open(ctx context.Context, d digest.Digest) (rc io.ReadSeekCloser, n int64, err error) {
	defer func(start time.Time) { s.observed("open", start, err) }(time.Now())
	return s.open(ctx, d)
}

func (s *Store) open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	p, err := s.path(d)
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, notFound(d)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("opening blob %s: %w", d, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening blob %s: %w", d, err)
	}
	return f, info.Size(), nil
}

// Put stores the content of r under d. size is the expected size or -1.
//
// A blob that exists is not written again and r is not read; if size is
// known and differs from the stored size, Put reports a
// *layerstore.DigestMismatchError (the caller's size is wrong for that
// digest). Otherwise the content is verified while it streams to a temp file
// and committed with fsync + rename + directory fsync; on any failure
// nothing is left behind. Concurrent Puts of the same digest all succeed and
// leave one correct file.
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (err error) {
	defer func(start time.Time) { s.observed("put", start, err) }(time.Now())
	return s.put(ctx, d, size, r)
}

func (s *Store) put(ctx context.Context, d digest.Digest, size int64, r io.Reader) (err error) {
	final, err := s.path(d)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if info, err := os.Stat(final); err == nil {
		if size >= 0 && info.Size() != size {
			return &layerstore.DigestMismatchError{Want: d, Got: d, WantSize: size, GotSize: info.Size()}
		}
		// A new reference to an existing blob renews it: garbage collection
		// spares blobs modified within its grace period, so a publish that
		// reuses an old orphan cannot lose it to a concurrent gc.
		now := time.Now()
		if err := os.Chtimes(final, now, now); err != nil {
			return fmt.Errorf("storing blob %s: %w", d, err)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}

	f, err := os.CreateTemp(s.uploads(), "put-*")
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the error is irrelevant then
			os.Remove(tmp)
		}
	}()

	if _, err := layerstore.Verify(f, layerstore.ContextReader(ctx, r), d, size); err != nil {
		var mismatch *layerstore.DigestMismatchError
		if errors.As(err, &mismatch) {
			return err
		}
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storing blob %s: syncing: %w", d, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("storing blob %s: committing: %w", d, err)
	}
	if err := durable.SyncDir(filepath.Dir(final)); err != nil {
		// The blob is in place and verified; only its durability across a
		// power loss is in doubt. Report it, but do not remove a file that
		// a concurrent Put of the same digest may also have committed.
		return fmt.Errorf("storing blob %s: syncing directory: %w", d, err)
	}
	return nil
}

// Delete removes the blob d, or returns an error wrapping
// layerstore.ErrNotFound. Readers that opened it keep reading it.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.path(d)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, os.ErrNotExist) {
		return notFound(d)
	} else if err != nil {
		return fmt.Errorf("deleting blob %s: %w", d, err)
	}
	if err := durable.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("deleting blob %s: syncing directory: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, sha256 before sha512, each in
// lexical order of the hex digest. Files whose names are not a valid digest
// are skipped; blobs deleted during the walk may be skipped. An error from
// fn stops the walk and is returned as is.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	for _, alg := range layerstore.Algorithms {
		dir := filepath.Join(s.root, string(alg))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("listing blobs: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("listing blobs: %w", err)
			}
			if err := fn(d, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}
