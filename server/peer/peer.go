// Package peer decides whether a request comes from this host. The TCP
// peer (RemoteAddr) says where the connection comes from; a header a
// client or proxy sets to claim an address (X-Forwarded-For) is never
// believed.
//
// A loopback peer is not enough where envreg trusts this host without
// credentials (writes and the provisioning API while no authentication is
// configured): the operator's browser is a loopback peer too, and any web
// page it shows can make it send requests. Local therefore also asks that
// the request name this host as a loopback address or "localhost" (a page
// that reached envreg through DNS rebinding names its own host), and
// SameOrigin that a browser did not send it for a page of another origin
// (Origin, Sec-Fetch-Site). Clients that are not browsers (docker, crane,
// curl) send neither header and address the registry as they were told.
package peer

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

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

// LoopbackHost reports whether host (a Host header, with or without a
// port) names this host: a loopback IP address or "localhost". Other
// names are refused even when they resolve to 127.0.0.1, because a name
// that resolves to loopback now may be an attacker's name that resolved
// to the attacker's server a moment ago (DNS rebinding).
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// NotLocalError says why a request is not trusted as coming from this
// host; Reason is a sentence for the client.
type NotLocalError struct {
	Reason string
}

func (e *NotLocalError) Error() string { return e.Reason }

// Local returns nil when r comes from a loopback peer and its Host names
// this host (LoopbackHost), else a *NotLocalError.
func Local(r *http.Request) error {
	if !Loopback(r.RemoteAddr) {
		return &NotLocalError{Reason: fmt.Sprintf("client address %s is not a loopback address", r.RemoteAddr)}
	}
	if !LoopbackHost(r.Host) {
		return &NotLocalError{Reason: fmt.Sprintf(
			"the request is addressed to host %q, which is not a loopback address or localhost (refused against DNS rebinding); address this registry as localhost or 127.0.0.1",
			r.Host)}
	}
	return nil
}

// SameOrigin returns a *NotLocalError when a browser sent r for a page
// of another origin: Sec-Fetch-Site other than same-origin or none (the
// user typed the address), or an Origin whose host is not the request's
// Host (or "null", an opaque origin). A request with neither header, as
// every client but a browser sends, passes.
func SameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return &NotLocalError{Reason: fmt.Sprintf("the request was sent by a web page of another site (Sec-Fetch-Site: %s)", clip(site))}
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	return &NotLocalError{Reason: fmt.Sprintf("the request was sent by a web page of another origin (Origin: %s)", clip(origin))}
}

// clip keeps client-chosen text in messages short.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
