package auth

import (
	"fmt"
	"net/http"

	"github.com/envreg/envreg/server/peer"
	"github.com/envreg/envreg/server/registry"
)

// LoopbackWrites is the registry.Authorizer of a registry without
// authentication configured: anyone may pull and list the catalog, and
// pushes and deletes (any other action) are accepted only from a loopback
// TCP peer. It looks at r.RemoteAddr only, never at X-Forwarded-For: a
// reverse proxy on the same host makes every client local, so configure
// authentication before putting one in front of envreg.
type LoopbackWrites struct{}

var _ registry.Authorizer = LoopbackWrites{}

// Authorize allows reads from anyone and writes from loopback peers.
func (LoopbackWrites) Authorize(r *http.Request, access []registry.Access) error {
	for _, ac := range access {
		for _, act := range ac.Actions {
			if anonymousAction(ac.Type, ac.Name, act) || peer.Loopback(r.RemoteAddr) {
				continue
			}
			return &registry.AuthError{
				Status: http.StatusForbidden,
				Message: fmt.Sprintf("writes are accepted from loopback clients only while no authentication is configured (client address %s)",
					r.RemoteAddr),
				Access: access,
			}
		}
	}
	return nil
}
