package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// RecordStore keeps one value per session where every replica reads and
// writes it, with compare-and-set (Redis: catalog/redisstore). ids are
// ValidID. Each write sets the value's time to live: a value not written
// for that long disappears.
type RecordStore interface {
	// Create stores the value of a new session.
	Create(ctx context.Context, id string, value []byte, ttl time.Duration) error
	// Load returns the value, or an error wrapping ErrUnknown.
	Load(ctx context.Context, id string) ([]byte, error)
	// Swap replaces the value with next if it is still old; else an error
	// wrapping ErrChanged, or ErrUnknown when there is none.
	Swap(ctx context.Context, id string, old, next []byte, ttl time.Duration) error
	// Delete removes the value if it is still old, with Swap's errors.
	Delete(ctx context.Context, id string, old []byte) error
}

// ErrChanged: a compare-and-set found another value than the one it was
// given (another request wrote the record first).
var ErrChanged = errors.New("upload record changed")

// ChunkStore keeps the chunks of shared sessions where every replica reads
// them, outside the blob namespace (S3: layerstore/s3). ids are ValidID;
// chunk names are made of lower-case letters, digits and '-'.
type ChunkStore interface {
	// PutChunk stores r as chunk name of session id and returns how many
	// bytes it stored. size is the length of r, or -1 when unknown. On an
	// error nothing is left behind.
	PutChunk(ctx context.Context, id, name string, size int64, r io.Reader) (int64, error)
	// OpenChunk reads a chunk.
	OpenChunk(ctx context.Context, id, name string) (io.ReadCloser, error)
	// DeleteChunk removes one chunk (a missing one is no error).
	DeleteChunk(ctx context.Context, id, name string) error
	// Compose makes the concatenation of chunks, which the caller has
	// verified to be the content of blob d (size bytes), that blob,
	// without reading them: atomically, and a no-op when the blob exists.
	// Every chunk but the last is at least MinChunkSize and there are at
	// most MaxChunks (the caller checks); ErrNotComposable when the store
	// cannot do it anyway.
	Compose(ctx context.Context, d digest.Digest, size int64, id string, chunks []StoredChunk) error
	// DeleteSession removes every chunk of session id, and what an
	// interrupted PutChunk left (a missing session is no error).
	DeleteSession(ctx context.Context, id string) error
	// WalkSessions calls fn with the id of every session that has chunks
	// (or leftovers of a PutChunk). An error from fn stops the walk.
	WalkSessions(ctx context.Context, fn func(id string) error) error
	// MinChunkSize is the size every chunk but the last needs for Compose.
	MinChunkSize() int64
}

// ErrNotComposable: the chunk store cannot assemble these chunks
// server-side; Shared streams them through the blob store instead.
var ErrNotComposable = errors.New("chunks cannot be composed server-side")

// MaxChunks is the most chunks one shared session may hold: the parts of
// one S3 multipart upload, and a bound on the record's size.
const MaxChunks = 10000

// DefaultLease is how long a request's hold on a shared session lasts
// without renewal: how long a session stays locked after the replica
// writing it crashed.
const DefaultLease = 30 * time.Second

// releaseTimeout bounds giving a lease back after the request has ended.
const releaseTimeout = 10 * time.Second

// Shared keeps upload sessions in stores that every replica shares (see
// the package doc). It is safe for concurrent use, also by any number of
// processes on the same stores.
type Shared struct {
	records RecordStore
	chunks  ChunkStore
	blobs   layerstore.Writer
	maxAge  time.Duration
	maxSize int64
	lease   time.Duration
	now     func() time.Time
}

var (
	_ Sessions = (*Shared)(nil)
	_ Sweeper  = (*Shared)(nil)
)

// Option configures NewShared.
type Option func(*Shared)

// WithMaxAge sets the idle time after which a session is removed (default
// DefaultMaxAge).
func WithMaxAge(d time.Duration) Option { return func(s *Shared) { s.maxAge = d } }

// WithMaxSize bounds one upload in bytes (default: no limit).
func WithMaxSize(n int64) Option { return func(s *Shared) { s.maxSize = max(n, 0) } }

// WithLease sets how long a request's hold on a session lasts without
// renewal (default DefaultLease; renewed every third of it).
func WithLease(d time.Duration) Option { return func(s *Shared) { s.lease = d } }

// WithClock sets the clock that leases and idle times are judged by
// (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(s *Shared) { s.now = now } }

// NewShared returns sessions whose records are in records and whose chunks
// are in chunks, committed as blobs to blobs, which must be the store that
// chunks composes into.
func NewShared(records RecordStore, chunks ChunkStore, blobs layerstore.Writer, opts ...Option) *Shared {
	s := &Shared{records: records, chunks: chunks, blobs: blobs, maxAge: DefaultMaxAge, lease: DefaultLease, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.maxAge <= 0 {
		s.maxAge = DefaultMaxAge
	}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	return s
}

// Limits returns the size limit and the chunk size below which Finish
// streams the chunks instead of composing them.
func (s *Shared) Limits() Limits {
	return Limits{MaxSize: s.maxSize, MinChunk: s.chunks.MinChunkSize()}
}

// Start creates an empty session for repo.
func (s *Shared) Start(ctx context.Context, repo string) (Session, error) {
	id := NewID()
	rec, err := newRecord(repo, digest.SHA256, s.now())
	if err != nil {
		return Session{}, err
	}
	if err := s.records.Create(ctx, id, rec.encode(), s.maxAge); err != nil {
		return Session{}, fmt.Errorf("starting upload: %w", err)
	}
	return Session{ID: id, Repo: repo}, nil
}

// load reads the record of session id of repo.
func (s *Shared) load(ctx context.Context, repo, id string) ([]byte, record, error) {
	if !ValidID(id) {
		return nil, record{}, fmt.Errorf("upload %q: %w", id, ErrUnknown)
	}
	raw, err := s.records.Load(ctx, id)
	if err != nil {
		return nil, record{}, fmt.Errorf("upload %s in %s: %w", id, repo, err)
	}
	rec, err := decodeRecord(id, raw)
	if err != nil {
		return nil, record{}, err
	}
	if rec.Repo != repo {
		return nil, record{}, fmt.Errorf("upload %s in %s: %w", id, repo, ErrUnknown)
	}
	return raw, rec, nil
}

// Get returns the session id of repo, or an error wrapping ErrUnknown.
func (s *Shared) Get(ctx context.Context, repo, id string) (Session, error) {
	_, rec, err := s.load(ctx, repo, id)
	if err != nil {
		return Session{}, err
	}
	return Session{ID: id, Repo: repo, Size: rec.Size}, nil
}

// Append adds c to the session (see Sessions and the package doc).
func (s *Shared) Append(ctx context.Context, repo, id string, c Chunk) (Session, error) {
	l, err := s.acquire(ctx, repo, id)
	if err != nil {
		return Session{}, err
	}
	defer l.release(ctx)
	if err := s.appendChunk(ctx, l, c, false); err != nil {
		return Session{ID: id, Repo: repo, Size: l.rec.Size}, err
	}
	return Session{ID: id, Repo: repo, Size: l.rec.Size}, nil
}

// Finish appends final, commits the content as blob d and removes the
// session (see Sessions and the package doc).
func (s *Shared) Finish(ctx context.Context, repo, id string, final Chunk, d digest.Digest) (int64, error) {
	if err := layerstore.ValidateDigest(d); err != nil {
		return 0, err
	}
	l, err := s.acquire(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer l.release(ctx)
	if final.Body != nil {
		if err := s.appendChunk(ctx, l, final, true); err != nil {
			return 0, err
		}
	}
	rec := l.rec
	err = l.hold(ctx, func(ctx context.Context) error { return s.commit(ctx, id, rec, d) })
	var mismatch *layerstore.DigestMismatchError
	if err != nil && !errors.As(err, &mismatch) {
		return 0, err
	}
	if rmErr := s.remove(ctx, l); rmErr != nil && err == nil {
		return 0, fmt.Errorf("upload %s: removing the finished session: %w", id, rmErr)
	}
	if err != nil {
		return 0, err
	}
	return rec.Size, nil
}

// commit makes the session's content blob d: composed server-side when the
// running digest proves it and the chunks allow, else streamed through the
// blob store's verifying Put.
func (s *Shared) commit(ctx context.Context, id string, rec record, d digest.Digest) error {
	if rec.Alg == d.Algorithm() {
		got, err := rec.digest()
		if err != nil {
			return err
		}
		if got != d {
			return &layerstore.DigestMismatchError{Want: d, Got: got, WantSize: -1, GotSize: rec.Size}
		}
		if s.composable(rec.Chunks) {
			err := s.chunks.Compose(ctx, d, rec.Size, id, rec.Chunks)
			if !errors.Is(err, ErrNotComposable) {
				return err
			}
		}
	}
	r := &chunkReader{ctx: ctx, store: s.chunks, id: id, chunks: rec.Chunks}
	defer r.Close()
	return s.blobs.Put(ctx, d, rec.Size, r)
}

// composable reports whether chunks meet Compose's preconditions.
func (s *Shared) composable(chunks []StoredChunk) bool {
	if len(chunks) == 0 || len(chunks) > MaxChunks {
		return false
	}
	for _, c := range chunks[:len(chunks)-1] {
		if c.Size < s.chunks.MinChunkSize() {
			return false
		}
	}
	return true
}

// Cancel removes the session, or returns an error wrapping ErrUnknown.
func (s *Shared) Cancel(ctx context.Context, repo, id string) error {
	l, err := s.acquire(ctx, repo, id)
	if err != nil {
		return err
	}
	defer l.release(ctx)
	return s.remove(ctx, l)
}

// remove deletes the session's record (the lease proves it is ours) and
// then its chunks. Once the record is gone the chunks are orphans that
// Sweep removes, so failing to delete them now is not an error.
func (s *Shared) remove(ctx context.Context, l *lease) error {
	if err := s.records.Delete(ctx, l.id, l.raw); err != nil {
		return fmt.Errorf("upload %s: %w", l.id, leaseError(err))
	}
	l.done = true
	_ = s.chunks.DeleteSession(ctx, l.id)
	return nil
}

// Sweep removes the chunks of sessions that have no record any more
// (finished, cancelled, or expired in the record store) and the sessions
// idle for the maximum age at now, and returns how many sessions it
// cleaned up. Sessions without chunks need no sweeping: their records
// expire by themselves.
func (s *Shared) Sweep(ctx context.Context, now time.Time) (int, error) {
	removed := 0
	err := s.chunks.WalkSessions(ctx, func(id string) error {
		raw, err := s.records.Load(ctx, id)
		switch {
		case errors.Is(err, ErrUnknown):
		case err != nil:
			return fmt.Errorf("sweeping upload %s: %w", id, err)
		default:
			rec, err := decodeRecord(id, raw)
			if err != nil || rec.leased(now) || now.Sub(rec.Updated) < s.maxAge {
				return nil // a corrupt record is left for an operator to look at
			}
			if err := s.records.Delete(ctx, id, raw); err != nil {
				if errors.Is(err, ErrChanged) || errors.Is(err, ErrUnknown) {
					return nil // written meanwhile: not abandoned after all
				}
				return fmt.Errorf("sweeping upload %s: %w", id, err)
			}
		}
		if err := s.chunks.DeleteSession(ctx, id); err != nil {
			return fmt.Errorf("sweeping upload %s: %w", id, err)
		}
		removed++
		return nil
	})
	return removed, err
}

// chunkReader reads a session's chunks one after the other.
type chunkReader struct {
	ctx    context.Context
	store  ChunkStore
	id     string
	chunks []StoredChunk
	cur    io.ReadCloser
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.chunks) == 0 {
				return 0, io.EOF
			}
			c, err := r.store.OpenChunk(r.ctx, r.id, r.chunks[0].Name)
			if err != nil {
				return 0, fmt.Errorf("reading chunk %s of upload %s: %w", r.chunks[0].Name, r.id, err)
			}
			r.cur, r.chunks = c, r.chunks[1:]
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (r *chunkReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}
