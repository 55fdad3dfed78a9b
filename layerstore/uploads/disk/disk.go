// Package disk keeps blob upload sessions (uploads.Sessions) on the local
// disk until they are committed to a layerstore.Writer: the choice for one
// machine (--data), and whenever the catalog or the blob store is not
// shared between replicas.
//
// Layout, under the directory given to New:
//
//	<dir>/
//	  <id>/          one session; id is 32 lower-case hex characters
//	    repo         the repository the session belongs to
//	    data         the bytes received so far (its size is the offset)
//
// A session's bytes become a blob only through Finish, which hands the
// data to the blob store; the store verifies the digest and size and
// commits atomically, so a torn or wrong upload never becomes visible.
// A session idle for longer than the maximum age (its data file not
// modified) is abandoned and removed by Sweep. A chunk whose body breaks
// off keeps what arrived; the client resumes from the Range a status
// request reports.
//
// Sessions live on the disk of the process that started them, and one
// request at a time per process writes to a session. Behind a load
// balancer with several replicas on Redis + S3, envreg keeps sessions in
// the shared stores instead (uploads.Shared); with this package, route
// /v2/<name>/blobs/uploads/ with session affinity, or have clients upload
// monolithically (one POST or PUT), which needs no state between requests.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
)

// Sessions owns the sessions under one directory. It is safe for
// concurrent use; one request at a time may write to a session.
type Sessions struct {
	dir     string
	blobs   layerstore.Writer
	maxAge  time.Duration
	maxSize int64

	mu     sync.Mutex
	active map[string]bool
}

var (
	_ uploads.Sessions = (*Sessions)(nil)
	_ uploads.Sweeper  = (*Sessions)(nil)
)

// New opens (creating if needed) the session directory. Finished sessions
// are committed to blobs. maxAge is the idle time after which Sweep
// removes a session (0: uploads.DefaultMaxAge); maxSize bounds one upload
// (<= 0: no limit).
func New(dir string, blobs layerstore.Writer, maxAge time.Duration, maxSize int64) (*Sessions, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening upload directory: %w", err)
	}
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("opening upload directory %s: %w", dir, err)
	}
	if maxAge <= 0 {
		maxAge = uploads.DefaultMaxAge
	}
	return &Sessions{dir: dir, blobs: blobs, maxAge: maxAge, maxSize: max(maxSize, 0), active: map[string]bool{}}, nil
}

// Limits returns the size limit; any chunk size is as good as another.
func (m *Sessions) Limits() uploads.Limits { return uploads.Limits{MaxSize: m.maxSize} }

func (m *Sessions) path(id string, elem ...string) string {
	return filepath.Join(append([]string{m.dir, id}, elem...)...)
}

// Start creates an empty session for repo.
func (m *Sessions) Start(ctx context.Context, repo string) (uploads.Session, error) {
	if err := ctx.Err(); err != nil {
		return uploads.Session{}, err
	}
	id := uploads.NewID()
	if err := os.Mkdir(m.path(id), 0o755); err != nil {
		return uploads.Session{}, fmt.Errorf("starting upload: %w", err)
	}
	if err := os.WriteFile(m.path(id, "repo"), []byte(repo), 0o644); err != nil {
		os.RemoveAll(m.path(id))
		return uploads.Session{}, fmt.Errorf("starting upload: %w", err)
	}
	if err := os.WriteFile(m.path(id, "data"), nil, 0o644); err != nil {
		os.RemoveAll(m.path(id))
		return uploads.Session{}, fmt.Errorf("starting upload: %w", err)
	}
	return uploads.Session{ID: id, Repo: repo}, nil
}

// Get returns the session id of repo, or an error wrapping
// uploads.ErrUnknown.
func (m *Sessions) Get(_ context.Context, repo, id string) (uploads.Session, error) {
	if !uploads.ValidID(id) {
		return uploads.Session{}, fmt.Errorf("upload %q: %w", id, uploads.ErrUnknown)
	}
	owner, err := os.ReadFile(m.path(id, "repo"))
	if err != nil || string(owner) != repo {
		return uploads.Session{}, fmt.Errorf("upload %s in %s: %w", id, repo, uploads.ErrUnknown)
	}
	info, err := os.Stat(m.path(id, "data"))
	if err != nil {
		return uploads.Session{}, fmt.Errorf("upload %s in %s: %w", id, repo, uploads.ErrUnknown)
	}
	return uploads.Session{ID: id, Repo: repo, Size: info.Size()}, nil
}

// acquire marks the session as being written, or fails with
// uploads.ErrInUse.
func (m *Sessions) acquire(id string) (release func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[id] {
		return nil, fmt.Errorf("upload %s: %w", id, uploads.ErrInUse)
	}
	m.active[id] = true
	return func() {
		m.mu.Lock()
		delete(m.active, id)
		m.mu.Unlock()
	}, nil
}

// Append adds c to the session. It must start where the session ends,
// else a *uploads.RangeError. What was written before a read error stays
// (the client asks for the status and resumes from there).
func (m *Sessions) Append(ctx context.Context, repo, id string, c uploads.Chunk) (uploads.Session, error) {
	s, err := m.Get(ctx, repo, id)
	if err != nil {
		return uploads.Session{}, err
	}
	release, err := m.acquire(id)
	if err != nil {
		return uploads.Session{}, err
	}
	defer release()
	return m.append(ctx, s, c)
}

func (m *Sessions) append(ctx context.Context, s uploads.Session, c uploads.Chunk) (uploads.Session, error) {
	f, err := os.OpenFile(m.path(s.ID, "data"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return uploads.Session{}, fmt.Errorf("upload %s: %w", s.ID, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return uploads.Session{}, fmt.Errorf("upload %s: %w", s.ID, err)
	}
	s.Size = info.Size()
	if c.Body == nil {
		c.Body, c.Size = strings.NewReader(""), 0
	}
	if c.Start >= 0 && c.Start != s.Size {
		return s, &uploads.RangeError{Size: s.Size, Start: c.Start}
	}
	if m.maxSize > 0 && c.Size >= 0 && s.Size+c.Size > m.maxSize {
		return s, &uploads.TooLargeError{Limit: m.maxSize}
	}
	src := layerstore.ContextReader(ctx, c.Body)
	if m.maxSize > 0 {
		src = io.LimitReader(src, m.maxSize-s.Size+1)
	}
	n, err := io.Copy(f, src)
	s.Size += n
	if m.maxSize > 0 && s.Size > m.maxSize {
		// Keep the session as it was: drop what went over the limit.
		_ = f.Truncate(s.Size - n)
		s.Size -= n
		return s, &uploads.TooLargeError{Limit: m.maxSize}
	}
	if err == nil && c.Size >= 0 && n != c.Size {
		err = fmt.Errorf("chunk of %d bytes, %d announced: %w", n, c.Size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return s, fmt.Errorf("upload %s: receiving: %w", s.ID, err)
	}
	return s, nil
}

// Finish appends final (its Body may be nil), stores the whole content in
// the blob store under d (which verifies digest and size), and removes the
// session. On a digest mismatch the session is removed as well (the spec's
// "cancel on invalid digest"); on other errors it is kept, so the client
// can retry.
func (m *Sessions) Finish(ctx context.Context, repo, id string, final uploads.Chunk, d digest.Digest) (int64, error) {
	s, err := m.Get(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	release, err := m.acquire(id)
	if err != nil {
		return 0, err
	}
	defer release()
	if final.Body != nil {
		if s, err = m.append(ctx, s, final); err != nil {
			return 0, err
		}
	}
	f, err := os.Open(m.path(id, "data"))
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()
	err = m.blobs.Put(ctx, d, s.Size, f)
	var mismatch *layerstore.DigestMismatchError
	if err != nil && !errors.As(err, &mismatch) {
		return 0, err
	}
	if rmErr := os.RemoveAll(m.path(id)); rmErr != nil && err == nil {
		return 0, fmt.Errorf("upload %s: removing the finished session: %w", id, rmErr)
	}
	if err != nil {
		return 0, err
	}
	return s.Size, nil
}

// Cancel removes the session, or returns an error wrapping
// uploads.ErrUnknown.
func (m *Sessions) Cancel(ctx context.Context, repo, id string) error {
	if _, err := m.Get(ctx, repo, id); err != nil {
		return err
	}
	release, err := m.acquire(id)
	if err != nil {
		return err
	}
	defer release()
	return os.RemoveAll(m.path(id))
}

// Sweep removes sessions whose data has not changed for the maximum age
// (abandoned uploads) and returns how many it removed. Sessions being
// written are left alone.
func (m *Sessions) Sweep(ctx context.Context, now time.Time) (int, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		id := e.Name()
		if !uploads.ValidID(id) {
			continue
		}
		info, err := os.Stat(m.path(id, "data"))
		if err != nil {
			// A session without data is a Start interrupted by a crash;
			// judge it by the directory's own time.
			if info, err = e.Info(); err != nil {
				continue
			}
		}
		if now.Sub(info.ModTime()) < m.maxAge {
			continue
		}
		release, err := m.acquire(id)
		if err != nil {
			continue
		}
		if err := os.RemoveAll(m.path(id)); err == nil {
			removed++
		}
		release()
	}
	return removed, nil
}
