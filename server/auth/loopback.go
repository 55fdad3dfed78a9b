package auth

import (
	"net/http"

	"github.com/envreg/envreg/server/peer"
	"github.com/envreg/envreg/server/registry"
)

// LoopbackWrites is the registry.Authorizer of a registry without
// authentication configured: anyone may pull and list the catalog, and
// pushes and deletes (any other action) are accepted only from this host
// (peer.Local: a loopback TCP peer that addresses the registry as a
// loopback address or localhost) and not on behalf of a web page of
// another origin (peer.SameOrigin). The operator's browser is a loopback
// peer, so without the last two checks any page it shows could push and
// delete, by a CORS-simple POST or through DNS rebinding.
//
// It looks at r.RemoteAddr only, never at X-Forwarded-For: a reverse
// proxy on the same host makes every client local, so configure
// authentication before putting one in front of envreg.
type LoopbackWrites struct{}

var _ registry.Authorizer = LoopbackWrites{}

// Authorize allows reads from anyone and writes from this host.
func (LoopbackWrites) Authorize(r *http.Request, access []registry.Access) error {
	for _, ac := range access {
		for _, act := range ac.Actions {
			if anonymousAction(ac.Type, ac.Name, act) {
				continue
			}
			err := peer.Local(r)
			if err == nil {
				err = peer.SameOrigin(r)
			}
			if err == nil {
				continue
			}
			return &registry.AuthError{
				Status:  http.StatusForbidden,
				Message: "writes are accepted from loopback clients only while no authentication is configured (--auth-htpasswd): " + err.Error(),
				Access:  access,
			}
		}
	}
	return nil
}
