// Package uploads keeps the blob upload sessions of the push API (the
// distribution-spec's POST, PATCH, PUT on /v2/<name>/blobs/uploads/) on the
// local disk until they are committed to a layerstore.Writer.
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
// modified) is abandoned and removed by Sweep.
//
// Sessions live on the disk of the process that started them. Behind a
// load balancer with several replicas, either route /v2/<name>/blobs/uploads/
// with session affinity, give every replica the same (shared) directory,
// or have clients upload monolithically (one POST or PUT), which needs no
// session state between requests.
package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"
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

// Session is the state of one upload.
type Session struct {
	ID   string
	Repo string
	Size int64 // bytes received so far
}

// Manager owns the sessions under one directory. It is safe for
// concurrent use; one request at a time may write to a session.
type Manager struct {
	dir     string
	maxAge  time.Duration
	maxSize int64

	mu     sync.Mutex
	active map[string]bool
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// New opens (creating if needed) the session directory. maxAge is the idle
// time after which Sweep removes a session (0: DefaultMaxAge); maxSize
// bounds one upload (<= 0: no limit).
func New(dir string, maxAge time.Duration, maxSize int64) (*Manager, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening upload directory: %w", err)
	}
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("opening upload directory %s: %w", dir, err)
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return &Manager{dir: dir, maxAge: maxAge, maxSize: maxSize, active: map[string]bool{}}, nil
}

// MaxSize is the size limit of one upload (<= 0: none).
func (m *Manager) MaxSize() int64 { return m.maxSize }

func (m *Manager) path(id string, elem ...string) string {
	return filepath.Join(append([]string{m.dir, id}, elem...)...)
}

// Start creates an empty session for repo.
func (m *Manager) Start(repo string) (Session, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Session{}, err
	}
	id := hex.EncodeToString(b[:])
	if err := os.Mkdir(m.path(id), 0o755); err != nil {
		return Session{}, fmt.Errorf("starting upload: %w", err)
	}
	if err := os.WriteFile(m.path(id, "repo"), []byte(repo), 0o644); err != nil {
		os.RemoveAll(m.path(id))
		return Session{}, fmt.Errorf("starting upload: %w", err)
	}
	if err := os.WriteFile(m.path(id, "data"), nil, 0o644); err != nil {
		os.RemoveAll(m.path(id))
		return Session{}, fmt.Errorf("starting upload: %w", err)
	}
	return Session{ID: id, Repo: repo}, nil
}

// Get returns the session id of repo, or an error wrapping ErrUnknown.
func (m *Manager) Get(repo, id string) (Session, error) {
	if !idPattern.MatchString(id) {
		return Session{}, fmt.Errorf("upload %q: %w", id, ErrUnknown)
	}
	owner, err := os.ReadFile(m.path(id, "repo"))
	if err != nil || string(owner) != repo {
		return Session{}, fmt.Errorf("upload %s in %s: %w", id, repo, ErrUnknown)
	}
	info, err := os.Stat(m.path(id, "data"))
	if err != nil {
		return Session{}, fmt.Errorf("upload %s in %s: %w", id, repo, ErrUnknown)
	}
	return Session{ID: id, Repo: repo, Size: info.Size()}, nil
}

// acquire marks the session as being written, or fails with ErrInUse.
func (m *Manager) acquire(id string) (release func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[id] {
		return nil, fmt.Errorf("upload %s: %w", id, ErrInUse)
	}
	m.active[id] = true
	return func() {
		m.mu.Lock()
		delete(m.active, id)
		m.mu.Unlock()
	}, nil
}

// Append adds r to the session. start is where the client says the chunk
// begins (-1: wherever the session ends); it must equal the session's
// size, else a *RangeError. What was written before a read error stays
// (the client asks for the status and resumes from there).
func (m *Manager) Append(ctx context.Context, repo, id string, start int64, r io.Reader) (Session, error) {
	s, err := m.Get(repo, id)
	if err != nil {
		return Session{}, err
	}
	release, err := m.acquire(id)
	if err != nil {
		return Session{}, err
	}
	defer release()
	return m.append(ctx, s, start, r)
}

func (m *Manager) append(ctx context.Context, s Session, start int64, r io.Reader) (Session, error) {
	f, err := os.OpenFile(m.path(s.ID, "data"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return Session{}, fmt.Errorf("upload %s: %w", s.ID, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Session{}, fmt.Errorf("upload %s: %w", s.ID, err)
	}
	s.Size = info.Size()
	if start >= 0 && start != s.Size {
		return s, &RangeError{Size: s.Size, Start: start}
	}
	src := io.Reader(layerstore.ContextReader(ctx, r))
	if m.maxSize > 0 {
		src = io.LimitReader(src, m.maxSize-s.Size+1)
	}
	n, err := io.Copy(f, src)
	s.Size += n
	if m.maxSize > 0 && s.Size > m.maxSize {
		// Keep the session as it was: drop what went over the limit.
		_ = f.Truncate(s.Size - n)
		s.Size -= n
		return s, &TooLargeError{Limit: m.maxSize}
	}
	if err != nil {
		return s, fmt.Errorf("upload %s: receiving: %w", s.ID, err)
	}
	return s, nil
}

// Finish appends final (may be nil) to the session, stores the whole
// content in blobs under d (which verifies digest and size), and removes
// the session. On a digest mismatch the session is removed as well (the
// spec's "cancel on invalid digest"); on other errors it is kept, so the
// client can retry.
func (m *Manager) Finish(ctx context.Context, repo, id string, start int64, final io.Reader, d digest.Digest, blobs layerstore.Writer) (int64, error) {
	s, err := m.Get(repo, id)
	if err != nil {
		return 0, err
	}
	release, err := m.acquire(id)
	if err != nil {
		return 0, err
	}
	defer release()
	if final != nil {
		if s, err = m.append(ctx, s, start, final); err != nil {
			return 0, err
		}
	}
	f, err := os.Open(m.path(id, "data"))
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()
	err = blobs.Put(ctx, d, s.Size, f)
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

// Cancel removes the session, or returns an error wrapping ErrUnknown.
func (m *Manager) Cancel(repo, id string) error {
	if _, err := m.Get(repo, id); err != nil {
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
func (m *Manager) Sweep(now time.Time) (int, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		id := e.Name()
		if !idPattern.MatchString(id) {
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

// Run sweeps every interval until ctx ends, reporting each sweep's result
// to report (may be nil).
func (m *Manager) Run(ctx context.Context, interval time.Duration, report func(removed int, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := m.Sweep(now)
			if report != nil {
				report(n, err)
			}
		}
	}
}
