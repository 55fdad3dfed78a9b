package registry

import (
	"net/http"
	"strings"
)

// Actions on a repository, as in the Docker token scope
// "repository:<name>:<action>[,<action>...]".
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// Access is what one request needs: a resource and the actions on it.
// Type is "repository" (Name is a repository name) or "registry" (Name
// "catalog", action "*", for /v2/_catalog).
type Access struct {
	Type    string
	Name    string
	Actions []string
}

// Scope returns the Docker token scope string, e.g. "repository:foo:pull,push".
func (a Access) Scope() string { return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",") }

// Authorizer decides whether a request may do what it asks. The registry
// calls it before every handler with the access the route needs (empty
// for the base endpoint GET /v2/, which only checks credentials when
// authentication is configured).
//
// Authorize returns nil to allow, or an error; an *AuthError is sent as
// 401 UNAUTHORIZED (with its challenge in WWW-Authenticate) or 403 DENIED.
type Authorizer interface {
	Authorize(r *http.Request, access []Access) error
}

// AuthError refuses a request.
type AuthError struct {
	// Status is http.StatusUnauthorized (no or bad credentials: the client
	// may retry with credentials) or http.StatusForbidden (the credentials
	// are good but do not grant the access).
	Status int
	// Challenge is the WWW-Authenticate value of a 401, e.g.
	// `Bearer realm="https://reg/auth/token",service="envreg",scope="repository:foo:push,pull"`.
	Challenge string
	// Message is sent to the client.
	Message string
	// Access is what was refused (sent as the error detail).
	Access []Access
}

func (e *AuthError) Error() string { return e.Message }

// Detail is what was refused, as the error detail both HTTP faces send:
// one {type, name, action} per access.
func (e *AuthError) Detail() []map[string]any {
	detail := make([]map[string]any, 0, len(e.Access))
	for _, a := range e.Access {
		detail = append(detail, map[string]any{"type": a.Type, "name": a.Name, "action": strings.Join(a.Actions, ",")})
	}
	return detail
}

// AllowAll is the Authorizer of a registry without authentication: it
// allows everything.
type AllowAll struct{}

// Authorize allows.
func (AllowAll) Authorize(*http.Request, []Access) error { return nil }
