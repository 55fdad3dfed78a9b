package uploads

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/envreg/envreg/layerstore"
)

// lease is a request's hold on a shared session: the record as this
// request last wrote it. Every later write is a compare-and-set against
// raw, so it fails once anyone else has written the record.
type lease struct {
	s  *Shared
	id string

	mu   sync.Mutex
	raw  []byte // the record's value as last written by this request
	rec  record // raw, decoded
	done bool   // the lease was given back or the session removed
}

// acquire takes the lease of session id of repo: ErrInUse while another
// request holds it, or when another request takes it first.
func (s *Shared) acquire(ctx context.Context, repo, id string) (*lease, error) {
	raw, rec, err := s.load(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if rec.leased(now) {
		return nil, fmt.Errorf("upload %s: %w", id, ErrInUse)
	}
	rec.Writer, rec.Until, rec.Updated = NewID()[:16], now.Add(s.lease), now
	rec.Seq++
	l := &lease{s: s, id: id, raw: raw, rec: rec}
	if err := l.write(ctx, rec); err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, leaseError(err))
	}
	return l, nil
}

// leaseError says what a failed compare-and-set means to the client: the
// record changed, so another request holds the session (or finished it).
func leaseError(err error) error {
	if errors.Is(err, ErrChanged) {
		return fmt.Errorf("%w (%w)", ErrInUse, err)
	}
	return err
}

// write replaces the record with next if it is still what this request
// last wrote.
func (l *lease) write(ctx context.Context, next record) error {
	b := next.encode()
	if err := l.s.records.Swap(ctx, l.id, l.raw, b, l.s.maxAge); err != nil {
		return err
	}
	l.raw, l.rec = b, next
	return nil
}

// renew extends the lease.
func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.rec
	now := l.s.now()
	next.Until, next.Updated = now.Add(l.s.lease), now
	next.Seq++
	return l.write(ctx, next)
}

// hold runs fn, renewing the lease every third of the lease time while it
// runs. If a renewal fails, fn's context is cancelled and hold returns why.
func (l *lease) hold(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost error
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(l.s.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := l.renew(ctx); err != nil {
					lost = fmt.Errorf("upload %s: renewing the lease: %w", l.id, leaseError(err))
					cancel()
					return
				}
			}
		}
	})
	err := fn(ctx)
	close(done)
	wg.Wait()
	if lost != nil {
		return lost
	}
	return err
}

// commit records next as the session's state, giving the lease back
// unless keep.
func (l *lease) commit(ctx context.Context, next record, keep bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.s.now()
	next.Updated = now
	if !keep {
		next.Writer, next.Until = "", time.Time{}
	}
	next.Seq = l.rec.Seq + 1
	if err := l.write(ctx, next); err != nil {
		return err
	}
	l.done = !keep
	return nil
}

// release gives the lease back when the request ends without committing
// (an error), so the client's retry need not wait for it to expire. It is
// best effort: the lease expires anyway.
func (l *lease) release(ctx context.Context) {
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_ = l.commit(ctx, l.rec, false)
}

// appendChunk streams c into a new chunk object and commits it to the
// record (see the package doc), keeping the lease when keep.
func (s *Shared) appendChunk(ctx context.Context, l *lease, c Chunk, keep bool) error {
	rec := l.rec
	if c.Body == nil {
		c.Body, c.Size = strings.NewReader(""), 0
	}
	switch {
	case c.Start >= 0 && c.Start != rec.Size:
		return &RangeError{Size: rec.Size, Start: c.Start}
	case s.maxSize > 0 && c.Size >= 0 && rec.Size+c.Size > s.maxSize:
		return &TooLargeError{Limit: s.maxSize}
	case len(rec.Chunks) >= MaxChunks:
		return &ChunkLimitError{Limit: MaxChunks}
	}
	h, err := rec.hasher()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%05d-%s", len(rec.Chunks), NewID()[:12])
	src := &hashingReader{r: layerstore.ContextReader(ctx, c.Body), h: h, limit: -1}
	if s.maxSize > 0 {
		src.limit = s.maxSize - rec.Size
	}
	var n int64
	err = l.hold(ctx, func(ctx context.Context) error {
		var err error
		n, err = s.chunks.PutChunk(ctx, l.id, name, c.Size, src)
		return err
	})
	if err == nil {
		err = src.check(n, c.Size)
	}
	if src.over {
		s.dropChunk(ctx, l.id, name)
		return &TooLargeError{Limit: s.maxSize}
	}
	if err != nil {
		s.dropChunk(ctx, l.id, name)
		return fmt.Errorf("upload %s: receiving: %w", l.id, err)
	}
	if n == 0 {
		s.dropChunk(ctx, l.id, name)
		if keep {
			return nil
		}
		if err := l.commit(ctx, l.rec, false); err != nil {
			return fmt.Errorf("upload %s: %w", l.id, leaseError(err))
		}
		return nil
	}
	next := l.rec
	next.Size += n
	next.Chunks = append(next.Chunks[:len(next.Chunks):len(next.Chunks)], StoredChunk{Name: name, Size: n})
	if next.Hash, err = marshalHash(h); err != nil {
		s.dropChunk(ctx, l.id, name)
		return err
	}
	if err := l.commit(ctx, next, keep); err != nil {
		s.dropChunk(ctx, l.id, name)
		return fmt.Errorf("upload %s: %w", l.id, leaseError(err))
	}
	return nil
}

// dropChunk deletes a chunk that was not committed, even after the
// request ended; what it misses is removed with its session.
func (s *Shared) dropChunk(ctx context.Context, id, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_ = s.chunks.DeleteChunk(ctx, id, name)
}

// hashingReader hashes what the chunk store reads, and stops one byte past
// the size limit so that an upload over it is caught without reading an
// unbounded body.
type hashingReader struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64 // bytes the session may still take; -1: no limit
	over  bool  // the body went past the limit
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.limit >= 0 && int64(len(p)) > h.limit-h.n+1 {
		p = p[:h.limit-h.n+1]
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if h.limit >= 0 && h.n > h.limit {
		h.over = true
		return n, errors.New("upload over the size limit")
	}
	return n, err
}

// check confirms that the store kept every byte read, and that the body
// had the length the client announced (no more: one more read must end).
func (h *hashingReader) check(stored, size int64) error {
	switch {
	case stored != h.n:
		return fmt.Errorf("the chunk store kept %d of %d bytes", stored, h.n)
	case size >= 0 && h.n != size:
		return fmt.Errorf("chunk of %d bytes, %d announced: %w", h.n, size, io.ErrUnexpectedEOF)
	}
	var one [1]byte
	if n, _ := h.r.Read(one[:]); n > 0 {
		return fmt.Errorf("chunk longer than the %d bytes announced", size)
	}
	return nil
}
