package registry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/envreg/envreg/server/peer"
)

// SendfileMode says how blob bodies reach the socket.
//
// With sendfile(2) (what net/http does for an *os.File) the server copies
// nothing: the kernel hands the socket the page-cache pages. A NIC sends
// them by DMA, so for a remote client that is the cheapest way. A client on
// the same host (a TLS-terminating proxy in front of envreg, the
// benchmark's load tool) receives those pages over loopback, and then the
// one copy left, from the page cache into the client's buffer, is all done
// by the receiving process, 4 KiB page by page. With write(2) the sender
// does the read from the page cache and the receiver copies data that is
// still in the CPU cache, so the two processes share the work. Measured on
// the benchmark machine (bench/analysis.md), wrk -c8 on loopback fetching
// the same file: for bodies of 4 MiB and more, copying gave 1.6-1.7× the
// throughput and used less CPU in sender and receiver together (0.56-0.67
// against 0.66-0.75 s per GB); for 1 MiB and less, sendfile was as fast or
// faster and used less CPU in total (0.31-0.42 against 0.49-0.60 s per GB).
// So SendfileAuto copies only large bodies, and only to loopback peers.
type SendfileMode int

const (
	// SendfileAuto uses sendfile, except that a body of more than
	// copyThreshold bytes to a loopback peer is copied through a 32 KiB
	// buffer (net/http's). The default.
	SendfileAuto SendfileMode = iota
	// SendfileAlways uses sendfile for every peer.
	SendfileAlways
	// SendfileNever always copies.
	SendfileNever
)

// ParseSendfileMode parses "auto", "always" or "never".
func ParseSendfileMode(s string) (SendfileMode, error) {
	switch s {
	case "auto":
		return SendfileAuto, nil
	case "always":
		return SendfileAlways, nil
	case "never":
		return SendfileNever, nil
	}
	return 0, fmt.Errorf("invalid sendfile mode %q (want auto, always or never)", s)
}

func (m SendfileMode) String() string {
	switch m {
	case SendfileAlways:
		return "always"
	case SendfileNever:
		return "never"
	default:
		return "auto"
	}
}

// copyThreshold is the body size above which SendfileAuto copies to
// loopback peers: between the 1 MiB where sendfile still won and the 4 MiB
// where copying did.
const copyThreshold = 2 << 20

// WithSendfile sets how blob bodies are sent (default SendfileAuto).
func WithSendfile(m SendfileMode) Option { return func(r *Registry) { r.sendfile = m } }

// blobBody returns what to hand http.ServeContent for a blob of size
// bytes opened as rc: rc itself where sendfile should be used (net/http
// finds the *os.File), else rc behind a plain io.ReadSeeker so that
// net/http copies it.
func (reg *Registry) blobBody(r *http.Request, rc io.ReadSeeker, size int64) io.ReadSeeker {
	switch reg.sendfile {
	case SendfileAlways:
		return rc
	case SendfileNever:
		return struct{ io.ReadSeeker }{rc}
	}
	if peer.Loopback(r.RemoteAddr) && bodyLength(r.Header.Get("Range"), size) > copyThreshold {
		return struct{ io.ReadSeeker }{rc}
	}
	return rc
}

// bodyLength is how many bytes of a size-byte blob a GET with this Range
// header receives: the length of a single satisfiable "bytes=" range, else
// the whole size (no range, several ranges, or one net/http will refuse).
func bodyLength(rangeHeader string, size int64) int64 {
	spec, ok := strings.CutPrefix(rangeHeader, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return size
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return size
	}
	if first == "" { // a suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return size
		}
		return min(n, size)
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 || start >= size {
		return size
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return size
		}
		end = min(end, size-1)
	}
	return end - start + 1
}
