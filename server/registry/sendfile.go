package registry

import (
	"fmt"
	"io"
	"net/http"

	"github.com/envreg/envreg/server/peer"
)

// SendfileMode says how blob bodies reach the socket.
//
// With sendfile(2) (what net/http does for an *os.File) the server copies
// nothing: the kernel hands the socket the page-cache pages. A NIC sends
// them by DMA, so for a remote client that is the cheapest way. A client on
// the same host (a TLS-terminating proxy in front of envreg, the
// benchmark's load tool) receives those pages over loopback as 4 KiB
// fragments, and reading them costs it far more than reading data written
// with write(2): on the benchmark machine the receiver spent 0.58 s of CPU
// per GB from a sendfile sender against 0.24 s from a copying one, so that
// sender and receiver together used more CPU with sendfile (0.72 against
// 0.61 s/GB) and a saturated receiver got 0.6× the throughput
// (bench/analysis.md). For loopback peers copying is better on both counts.
type SendfileMode int

const (
	// SendfileAuto uses sendfile for remote peers and copies through a
	// 32 KiB buffer (net/http's) for loopback peers. The default.
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

// WithSendfile sets how blob bodies are sent (default SendfileAuto).
func WithSendfile(m SendfileMode) Option { return func(r *Registry) { r.sendfile = m } }

// blobBody returns what to hand http.ServeContent for a blob opened as rc:
// rc itself where sendfile should be used (net/http finds the *os.File),
// else rc behind a plain io.ReadSeeker so that net/http copies it.
func (reg *Registry) blobBody(r *http.Request, rc io.ReadSeeker) io.ReadSeeker {
	switch reg.sendfile {
	case SendfileAlways:
		return rc
	case SendfileNever:
		return struct{ io.ReadSeeker }{rc}
	}
	if peer.Loopback(r.RemoteAddr) {
		return struct{ io.ReadSeeker }{rc}
	}
	return rc
}
