// Package layerstore defines envreg's content-addressed blob storage: the
// ports (Reader, Writer, Store, the optional Redirector) and helpers that
// verify content against its digest while it streams.
//
// A blob is visible only after its bytes have been verified against the
// digest they are stored under and made durable; a failed or corrupt write
// leaves nothing behind. Backends live in sub-packages (fs, s3)
// and all run the contract suite in layerstoretest.
package layerstore

import (
	"context"
	_ "crypto/sha256" // register the digest algorithms with crypto
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Algorithms are the digest algorithms envreg stores content under, in
// listing order.
var Algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// ValidateDigest checks that d is well-formed and uses one of Algorithms.
// Backends call it before building a path or key from d, so an
// unvalidated string never reaches the storage namespace.
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if !slices.Contains(Algorithms, d.Algorithm()) {
		return fmt.Errorf("invalid digest %q: algorithm %s not accepted (want sha256 or sha512): %w",
			d, d.Algorithm(), digest.ErrDigestUnsupported)
	}
	return nil
}

// ErrNotFound: no blob with that digest.
var ErrNotFound = errors.New("blob not found")

// ErrUnavailable reports a storage backend that cannot answer now (a Redis
// or an S3 endpoint that is down or overloaded, a store that was closed):
// the request may succeed later, and the registry answers 503 with
// Retry-After rather than 500. Every backend (blob stores here, catalog
// stores through catalog.ErrUnavailable, the same value) wraps it.
var ErrUnavailable = errors.New("storage unavailable")

// Unavailable marks err as ErrUnavailable, keeping it in the chain (its
// message, and errors.Is and errors.As on it, are unchanged). nil stays nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

type unavailableError struct{ err error }

func (e unavailableError) Error() string        { return e.err.Error() }
func (e unavailableError) Unwrap() error        { return e.err }
func (e unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Reader reads blobs.
type Reader interface {
	// Stat returns the size of a blob, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Open returns the blob's content and its size. The content can seek, so
	// HTTP range requests are served without reading what precedes them.
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error)
}

// Writer stores blobs.
type Writer interface {
	// Put stores r under d. size is the expected size, or -1 when unknown.
	// The content is verified against d (and size) before it becomes
	// visible; on mismatch Put returns a *DigestMismatchError and stores
	// nothing. Putting a blob that exists is a no-op that succeeds.
	Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error
}

// Store reads and writes blobs.
type Store interface {
	Reader
	Writer
}

// Redirector is an optional capability of a Reader: a URL that clients may
// fetch the blob from directly (a presigned object-store URL). An empty URL
// means "serve the bytes yourself".
type Redirector interface {
	RedirectURL(ctx context.Context, d digest.Digest) (string, error)
}

// DigestMismatchError reports content that does not match the digest or
// size it was stored under.
type DigestMismatchError struct {
	Want, Got         digest.Digest
	WantSize, GotSize int64
}

func (e *DigestMismatchError) Error() string {
	if e.WantSize >= 0 && e.WantSize != e.GotSize {
		return fmt.Sprintf("blob %s: size %d does not match expected size %d", e.Want, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("blob content has digest %s, expected %s", e.Got, e.Want)
}

// Verify copies r to w and checks that what was copied matches d and size
// (size < 0: any size). It returns the number of bytes copied. The caller
// must discard what w received when Verify fails.
func Verify(w io.Writer, r io.Reader, d digest.Digest, size int64) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, fmt.Errorf("invalid digest %q: %w", d, err)
	}
	dg := d.Algorithm().Digester()
	src := r
	if size >= 0 {
		// Read one byte more than expected so that longer content is caught
		// without reading an unbounded stream.
		src = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(io.MultiWriter(w, dg.Hash()), src)
	if err != nil {
		return n, err
	}
	if size >= 0 && n != size {
		return n, &DigestMismatchError{Want: d, Got: dg.Digest(), WantSize: size, GotSize: n}
	}
	if got := dg.Digest(); got != d {
		return n, &DigestMismatchError{Want: d, Got: got, WantSize: size, GotSize: n}
	}
	return n, nil
}

// ContextReader returns a reader of r that fails with ctx's error once ctx
// is done: a long copy (a blob upload) stops when its request ends.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
