// Package peer answers questions about a request's TCP peer (its
// RemoteAddr), never about headers a client or proxy can set.
package peer

import "net/netip"

// Loopback reports whether remote (an http.Request's RemoteAddr,
// "host:port", or a bare address) is a loopback address, IPv4-mapped IPv6
// included.
func Loopback(remote string) bool {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	addr, err := netip.ParseAddr(remote)
	return err == nil && addr.Unmap().IsLoopback()
}
