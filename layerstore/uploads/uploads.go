// Package uploads is the port for the blob upload sessions of the push API
// (the distribution-spec's POST, PATCH, PUT, GET and DELETE on
// /v2/<name>/blobs/uploads/), and Shared, the one implementation of their
// semantics over stores that every replica shares.
//
// # The port
//
// Sessions is what the registry needs of upload sessions: Start one, Get
// its progress, Append a chunk (PATCH), Finish it (PUT: the last chunk,
// the digest, the commit), Cancel it, and the Limits it enforces. The
// registry and the server depend on this interface only; cmd/envreg picks
// the implementation from the storage flags:
//
//   - disk.Sessions (package disk), a directory on the local disk: the
//     choice for one machine (--data), and whenever the catalog or the blob
//     store is not shared. A session lives on the replica that started it.
//   - Shared (this package), for --catalog redis://… with --blobs s3://…:
//     the session record in a RecordStore (Redis, catalog/redisstore) and
//     the chunks in a ChunkStore (S3, layerstore/s3). Any replica continues
//     any session, so a load balancer may send every request of an upload
//     to a different replica.
//
// Both pass the contract suite in uploadstest. What they share, and what a
// client sees: chunks must arrive in order (else a *RangeError, 416 with
// the current Range); one request at a time writes to a session (a second
// gets ErrInUse, 429, retryable); an upload grows to at most the size limit
// (*TooLargeError, 413); Finish commits the content through a
// layerstore.Writer-grade check of digest and size, so nothing unverified
// ever becomes a blob, and a digest mismatch removes the session (the
// spec's "cancel on invalid digest"); a session idle for the maximum age
// is removed by Sweep.
//
// # Shared sessions
//
// A session is a record and a set of chunk objects:
//
//	record (RecordStore, one value per session, expires after the maximum age without a write):
//	  repo, size        the repository, and the bytes committed so far
//	  alg, hash         the running digest (sha256) of those bytes: its
//	                    encoding.BinaryMarshaler state, so any replica
//	                    continues it without reading earlier chunks
//	  chunks            [{name, size}]: the chunk objects, in order
//	  writer, until     the lease of the request writing now (if any)
//	  updated           the last write, for Sweep
//	chunks (ChunkStore, outside the blob namespace, never visible as blobs):
//	  <id>/<index>-<token>   the body of one PATCH (or of the PUT that ends the upload)
//
// Every change of a record is a compare-and-set of its whole value
// (RecordStore.Swap): a replica reads the record, computes the next one,
// and writes it only if the record is still what it read. So two replicas
// never both commit a step of one session. A PATCH:
//
//  1. reads the record, and takes the lease with a compare-and-set (writer
//     = a fresh token, until = now + the lease time). A record whose lease
//     is held and not expired, or a compare-and-set that loses, is
//     ErrInUse: of two replicas PATCHing one session at once, one gets
//     202 and the other 429, before it reads its body.
//  2. checks the chunk's start against the committed size (416 otherwise),
//     then streams the body into a new chunk object while hashing it from
//     the recorded state, renewing the lease every third of the lease time.
//  3. commits with a compare-and-set: size, hash state and chunk list
//     grow, the lease is released. If the record changed meanwhile (the
//     lease expired and another replica took over, or the session was
//     cancelled), nothing is committed and the chunk object is deleted.
//
// A chunk whose body breaks off mid-way is dropped whole (the disk store
// keeps what arrived); either way the client asks for the status and
// resumes from the Range it reports.
//
// The lease is what makes a crashed replica harmless: its session is free
// again once the lease expires (default 30 s; clients get 429 until then),
// and the compare-and-set in step 3 is what keeps a slow replica whose
// lease expired from committing over the one that took over.
//
// Finish takes the lease, appends the final chunk if there is one, and
// compares the digest from the recorded hash state with the digest asked
// for. A mismatch removes the session. A match is committed without
// reading a byte: ChunkStore.Compose concatenates the chunk objects into
// the blob server-side (S3 CopyObject for one chunk, a multipart upload of
// UploadPartCopy parts for several). S3 allows that only when every part
// but the last is at least 5 MiB, so the store advertises its minimum
// (Limits.MinChunk, sent as OCI-Chunk-Min-Length): clients that honour it
// (the spec says SHOULD) get the server-side path. Smaller chunks, more
// chunks than a multipart upload may have, or a digest of another
// algorithm than the running one (sha512) take the other path: the chunks
// are streamed, in order, through the blob store's verifying Put, which
// checks digest and size again. Either way the blob appears atomically,
// and only verified; then the record and the chunk objects are removed.
//
// Sweep removes what abandoned sessions leave. Records expire by
// themselves in the RecordStore (a TTL of the maximum age, renewed by every
// write); Sweep walks the sessions that have chunk objects and removes the
// objects of sessions without a record, and the record and objects of
// sessions idle for the maximum age. Every replica may sweep at any time:
// removing a record is a compare-and-set too, so a sweep never removes a
// session that a request is writing.
//
// Why not S3 multipart uploads with one part per PATCH: a part must be at
// least 5 MiB unless it is the last, and which chunk is the last is known
// only at the PUT; a small PATCH chunk in the middle would make the upload
// impossible to complete. Chunk objects take any size, and Compose needs
// the 5 MiB only when it is used. Why the hash state in the record rather
// than a hash of the chunks at Finish: the common push (one PATCH with the
// whole blob, then PUT) then costs one upload to S3 and one server-side
// copy, and no replica reads the bytes back.
//
// The stores are trusted (SECURITY.md): whoever can write the record could
// change the hash state, as whoever can write the catalog can change what
// images contain; `envreg verify` re-hashes every blob.
package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/opencontainers/go-digest"
)

// DefaultMaxAge is how long a session may stay idle before Sweep removes it.
const DefaultMaxAge = 24 * time.Hour

// ErrUnknown: no such upload session in this repository (never started,
// finished, cancelled or swept).
var ErrUnknown = errors.New("blob upload unknown")

// ErrInUse: another request is writing to the session right now.
var ErrInUse = errors.New("blob upload in use by another request")

// RangeError reports a chunk that does not start where the session ends.
type RangeError struct {
	Size  int64 // bytes received so far
	Start int64 // where the chunk claimed to start
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("chunk starts at byte %d but the upload holds %d bytes", e.Start, e.Size)
}

// TooLargeError reports an upload beyond the size limit.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("upload exceeds the size limit of %d bytes", e.Limit)
}

// ChunkLimitError reports a chunk beyond the number of chunks one session
// may hold.
type ChunkLimitError struct{ Limit int }

func (e *ChunkLimitError) Error() string {
	return fmt.Sprintf("the upload holds %d chunks, the most one upload may have: send larger chunks, or finish it with PUT", e.Limit)
}

// Session is the state of one upload.
type Session struct {
	ID   string
	Repo string
	Size int64 // bytes received so far
}

// Chunk is the body of a PATCH, or of the PUT that ends an upload.
type Chunk struct {
	// Start is where the client says the chunk begins (its Content-Range);
	// -1: wherever the upload ends.
	Start int64
	// Size is the chunk's length when the client said it (Content-Length),
	// else -1. A body of another length is an error.
	Size int64
	// Body is the content; nil for a PUT without a body.
	Body io.Reader
}

// Limits are what a Sessions enforces and tells clients.
type Limits struct {
	// MaxSize bounds one upload in bytes (0: no limit).
	MaxSize int64
	// MinChunk is the chunk size below which uploads take a slower path
	// (0: none); sent as OCI-Chunk-Min-Length. Smaller chunks still work.
	MinChunk int64
}

// Sessions keeps blob upload sessions until they are committed to the
// blob store they were made for. Implementations are safe for concurrent
// use; repo and id come from the request, unvalidated.
type Sessions interface {
	// Start creates an empty session for repo.
	Start(ctx context.Context, repo string) (Session, error)
	// Get returns the session id of repo, or an error wrapping ErrUnknown.
	Get(ctx context.Context, repo, id string) (Session, error)
	// Append adds c to the session: a *RangeError when it does not start
	// where the session ends, a *TooLargeError beyond the size limit,
	// ErrInUse while another request writes to the session.
	Append(ctx context.Context, repo, id string, c Chunk) (Session, error)
	// Finish appends final (Body may be nil), stores the whole content as
	// blob d (verified against d before it becomes visible) and removes
	// the session, returning the blob's size. On a digest mismatch (a
	// *layerstore.DigestMismatchError) the session is removed as well; on
	// other errors it is kept, so the client can retry.
	Finish(ctx context.Context, repo, id string, final Chunk, d digest.Digest) (int64, error)
	// Cancel removes the session, or returns an error wrapping ErrUnknown.
	Cancel(ctx context.Context, repo, id string) error
	// Limits returns the limits the sessions enforce.
	Limits() Limits
}

// Sweeper removes abandoned sessions: those idle for longer than the
// maximum age at now. It returns how many it removed. Sessions being
// written are left alone.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// RunSweeper sweeps every interval until ctx ends, reporting each sweep's
// result to report (may be nil).
func RunSweeper(ctx context.Context, s Sweeper, interval time.Duration, report func(removed int, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := s.Sweep(ctx, now)
			if report != nil && ctx.Err() == nil {
				report(n, err)
			}
		}
	}
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// NewID returns a random session id: 32 lower-case hex characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID gives. Implementations
// check it before an id names a file or a key.
func ValidID(id string) bool { return idPattern.MatchString(id) }
