package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport limits: what one slow or stalled client may hold.
//
// http.Server's ReadHeaderTimeout bounds the request line and headers.
// Nothing in net/http bounds a request body without also bounding the
// whole request (ReadTimeout, which would cut multi-gigabyte uploads), and
// a body that never comes holds its connection forever: even a handler
// that ignores the body (GET /v2/ with Content-Length: 10) is stuck,
// because the server reads what is left of a small body before it answers,
// to keep the connection. So each request with a body gets a read deadline
// through http.ResponseController:
//
//   - blob uploads (POST, PATCH, PUT under /blobs/uploads): StallTimeout,
//     extended whenever body bytes arrive, so a large upload may take as
//     long as it keeps moving;
//   - every other body (manifests, /api/v1, /auth/token): BodyTimeout for
//     the whole body; they are at most a few MiB.
//
// The deadline is cleared when the body has been read to its end: the
// server then reads the connection in the background to notice a client
// that goes away, and a deadline expiring there would cancel a request
// that is still working (a long manifest ingestion, the final PUT of an
// upload copying gigabytes to S3).
//
// Responses larger than stallChunk, and every body sent with ReadFrom
// (blobs, through http.ServeContent), get a write deadline of
// StallTimeout, extended as bytes go out, so a client that stops reading
// a blob download is dropped. Smaller responses get none: the socket
// buffers take them whole, and a deadline set when the handler writes
// could expire before net/http flushes them (it first reads what is left
// of an unread request body, for up to BodyTimeout). Bodies sent with
// sendfile(2) go out in chunks of stallChunk bytes so that progress can
// be seen between them; the unit of progress is therefore a chunk: a
// client must take at least stallChunk bytes per StallTimeout.
//
// MaxConnections caps open connections (limitListener): beyond it, new
// connections wait in the kernel's accept queue until one closes, as
// golang.org/x/net/netutil.LimitListener does.

// stallChunk is how much of a sendfile body goes out between two
// extensions of the write deadline.
const stallChunk = 256 << 10

// deadliner is what net/http's response writer offers through
// http.ResponseController.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// isBlobUpload reports whether r sends blob data (its body may be large
// and slow, so its read deadline moves with progress).
func isBlobUpload(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		return strings.HasPrefix(r.URL.Path, "/v2/") && strings.Contains(r.URL.Path, "/blobs/uploads")
	}
	return false
}

// boundBody gives a request with a body its read deadline (see above) and
// returns the request to pass on, with a body that extends or clears the
// deadline. Requests without a body, and writers without deadlines
// (httptest recorders), are returned as they are.
func (s *Server) boundBody(dl deadliner, r *http.Request) *http.Request {
	if dl == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r
	}
	b := &deadlineBody{rc: r.Body, dl: dl}
	switch {
	case isBlobUpload(r) && s.cfg.StallTimeout > 0:
		b.extend = s.cfg.StallTimeout
	case s.cfg.BodyTimeout > 0:
	default:
		return r
	}
	timeout := b.extend
	if timeout == 0 {
		timeout = s.cfg.BodyTimeout
	}
	b.last = time.Now()
	_ = dl.SetReadDeadline(b.last.Add(timeout))
	r2 := new(http.Request)
	*r2 = *r // a shallow copy: net/http keeps the original body for its own bookkeeping
	r2.Body = b
	return r2
}

// deadlineBody extends the read deadline by extend on progress (0: never)
// and clears it at the end of the body.
type deadlineBody struct {
	rc     io.ReadCloser
	dl     deadliner
	extend time.Duration
	last   time.Time
	done   bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if b.done {
		return n, err
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			b.done = true
			_ = b.dl.SetReadDeadline(time.Time{})
		}
		return n, err
	}
	if n > 0 && b.extend > 0 {
		// Extending costs a timer update: do it at most every extend/8.
		if now := time.Now(); now.Sub(b.last) >= b.extend/8 {
			b.last = now
			_ = b.dl.SetReadDeadline(now.Add(b.extend))
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

// progress extends the write deadline of a response as it makes progress.
type progress struct {
	dl    deadliner
	stall time.Duration
	last  time.Time // when the deadline was last set; zero: not yet
}

// extend moves the write deadline to now+stall (at most every stall/8).
func (p *progress) extend() {
	if p.dl == nil || p.stall <= 0 {
		return
	}
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < p.stall/8 {
		return
	}
	p.last = now
	_ = p.dl.SetWriteDeadline(now.Add(p.stall))
}

// readFromChunked copies src to dst in chunks of stallChunk, calling
// extend before each, and keeps sendfile(2): dst's ReadFrom sees an
// *io.LimitedReader over the original reader (net/http and net unwrap one
// LimitedReader to find an *os.File, not two).
func readFromChunked(dst io.Writer, src io.Reader, extend func()) (int64, error) {
	inner, remain := src, int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		inner, remain = lr.R, lr.N
		defer func() { lr.N = remain }()
	}
	var total int64
	for remain != 0 {
		chunk := int64(stallChunk)
		if remain > 0 {
			chunk = min(chunk, remain)
		}
		extend()
		n, err := io.Copy(dst, &io.LimitedReader{R: inner, N: chunk})
		total += n
		if remain > 0 {
			remain -= n
		}
		if err != nil {
			return total, err
		}
		if n < chunk {
			return total, nil // the source ended
		}
	}
	return total, nil
}

// limitListener caps the open connections of a listener at max (0: no
// cap) and counts them. Accept waits for a free slot before it accepts,
// so clients beyond the cap wait in the kernel's queue. The http.Server's
// ConnState hook (connState) gives a slot back when its connection is
// closed; the connections themselves are not wrapped, so that net/http
// still finds the *net.TCPConn (sendfile, CloseWrite) or *tls.Conn.
type limitListener struct {
	net.Listener
	slots     chan struct{} // nil: no cap
	open      atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, max int) *limitListener {
	ll := &limitListener{Listener: l, done: make(chan struct{})}
	if max > 0 {
		ll.slots = make(chan struct{}, max)
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return c, nil
}

// connState is the http.Server's ConnState hook: it counts connections
// and frees a slot when one closes (or is hijacked, which envreg never
// does).
func (l *limitListener) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		l.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		l.open.Add(-1)
		l.release()
	}
}

func (l *limitListener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}
