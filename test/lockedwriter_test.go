package test

import (
	"bytes"
	"context"
	"sync"
)

// lockedWriter is a goroutine-safe buffer for a child's stderr. Tests wait
// on it for what the child logs (waitFor) instead of sleeping.
type lockedWriter struct {
	mu      sync.Mutex
	w       *bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written != nil {
		close(l.written)
		l.written = nil
	}
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// waitFor returns nil as soon as cond holds for what has been written,
// checking after every write, or ctx's error when ctx ends first. cond
// must not keep the slice.
func (l *lockedWriter) waitFor(ctx context.Context, cond func([]byte) bool) error {
	for {
		l.mu.Lock()
		if cond(l.w.Bytes()) {
			l.mu.Unlock()
			return nil
		}
		if l.written == nil {
			l.written = make(chan struct{})
		}
		written := l.written
		l.mu.Unlock()
		select {
		case <-written:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
