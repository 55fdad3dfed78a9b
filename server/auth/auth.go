package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/envreg/envreg/server/registry"
)

// TokenPath is where the server mounts TokenHandler, and the path of the
// realm derived from a request when Config.Realm is empty.
const TokenPath = "/auth/token"

// Defaults for the zero values of Config.
const (
	DefaultService  = "envreg"
	DefaultTokenTTL = 5 * time.Minute
)

// MinTokenSecret is the shortest accepted Config.TokenSecret, in bytes
// (the HMAC-SHA256 key size).
const MinTokenSecret = 32

// Config configures New.
type Config struct {
	// Htpasswd is the path of an htpasswd file of bcrypt entries
	// (htpasswd -B). Required.
	Htpasswd string
	// ACL is the path of an optional YAML access list (see the package
	// doc). Without one every authenticated user may pull, push and delete
	// everywhere.
	ACL string
	// AnonymousPull lets clients without credentials pull every repository
	// and list the catalog (the command line defaults it to true).
	AnonymousPull bool
	// Realm is the absolute URL of the token endpoint sent in challenges.
	// Empty: derived from each request (https when it came over TLS, its
	// Host, TokenPath); set it behind a TLS-terminating proxy.
	Realm string
	// Service is the token audience and the challenge's service (default
	// DefaultService).
	Service string
	// TokenSecret is the HMAC key tokens are signed with, at least
	// MinTokenSecret bytes. Empty: random per process, so tokens do not
	// survive a restart, replicas refuse each other's tokens, and no
	// refresh tokens are issued.
	TokenSecret []byte
	// TokenTTL is the lifetime of access tokens (default DefaultTokenTTL).
	TokenTTL time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Auth is the registry.Authorizer of a registry with authentication, and
// its token endpoint (TokenHandler). It is safe for concurrent use.
type Auth struct {
	htpasswdPath string
	users        *users
	aclPath      string
	acl          *acl // nil: every authenticated user may do everything
	anonPull     bool
	realm        string
	service      string
	tokens       *tokenKeys
	// refresh reports whether refresh tokens are issued (a configured,
	// stable secret).
	refresh bool
	ttl     time.Duration
	now     func() time.Time
	cache   *credCache
}

var _ registry.Authorizer = (*Auth)(nil)

// New loads the htpasswd file and the ACL of cfg and returns the Auth.
// Errors name the file (and line or rule) at fault.
func New(cfg Config) (*Auth, error) {
	if cfg.Htpasswd == "" {
		return nil, errors.New("authentication needs an htpasswd file")
	}
	a := &Auth{
		htpasswdPath: cfg.Htpasswd,
		aclPath:      cfg.ACL,
		anonPull:     cfg.AnonymousPull,
		realm:        cfg.Realm,
		service:      cfg.Service,
		ttl:          cfg.TokenTTL,
		now:          cfg.Now,
	}
	if a.service == "" {
		a.service = DefaultService
	}
	if a.ttl == 0 {
		a.ttl = DefaultTokenTTL
	}
	if a.ttl < 0 {
		return nil, fmt.Errorf("token lifetime %s is negative", a.ttl)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.realm != "" {
		u, err := url.Parse(a.realm)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("token realm %q is not an absolute http(s) URL", a.realm)
		}
	}
	secret := cfg.TokenSecret
	switch {
	case len(secret) == 0:
		secret = make([]byte, MinTokenSecret)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("making a token secret: %w", err)
		}
	case len(secret) < MinTokenSecret:
		return nil, fmt.Errorf("token secret is %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32)", len(secret), MinTokenSecret)
	default:
		a.refresh = true
	}
	a.tokens = newTokenKeys(secret)

	var err error
	if a.users, err = loadHtpasswd(cfg.Htpasswd); err != nil {
		return nil, err
	}
	if cfg.ACL != "" {
		if a.acl, err = loadACL(cfg.ACL); err != nil {
			return nil, err
		}
	}
	a.cache = newCredCache(time.Minute, 1024)
	return a, nil
}

// Describe is a one-line summary for the start-up log (no secrets).
func (a *Auth) Describe() string {
	var b strings.Builder
	n := a.users.len()
	fmt.Fprintf(&b, "authentication: htpasswd %s (%d user%s), token endpoint %s", a.htpasswdPath, n, plural(n), TokenPath)
	if a.realm != "" {
		fmt.Fprintf(&b, " (realm %s)", a.realm)
	} else {
		b.WriteString(" (realm from request)")
	}
	if a.anonPull {
		b.WriteString(", anonymous pull on")
	} else {
		b.WriteString(", anonymous pull off")
	}
	if a.acl != nil {
		fmt.Fprintf(&b, ", ACL %s (%d rule%s)", a.aclPath, len(a.acl.rules), plural(len(a.acl.rules)))
	} else {
		b.WriteString(", no ACL (every user may pull, push and delete)")
	}
	if a.refresh {
		b.WriteString(", token secret configured")
	} else {
		b.WriteString(", token secret random per process (no refresh tokens; replicas need a shared secret)")
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Authorize implements registry.Authorizer: see the package doc for the
// model. It returns nil or a *registry.AuthError.
func (a *Auth) Authorize(r *http.Request, access []registry.Access) error {
	return a.authorize(r, access, false)
}

// AuthorizeUser is Authorize for what a client without credentials may
// not do even while anonymous pull is on: it needs a user (Basic, or a
// token issued to a user) who may have access. The provisioning API's
// resolve pins what it composes for good, which an anonymous client must
// not be able to do without bound (a pull by tag stores a composition
// too, but gc collects it).
func (a *Auth) AuthorizeUser(r *http.Request, access []registry.Access) error {
	return a.authorize(r, access, true)
}

// anonymousNotEnough is the message of a refusal by AuthorizeUser.
const anonymousNotEnough = "authentication required: a resolve pins what it composes, so it needs a user even where anonymous clients may pull"

func (a *Auth) authorize(r *http.Request, access []registry.Access, needUser bool) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		if len(access) > 0 && a.anonymousAllows(access) {
			if !needUser {
				return nil
			}
			return a.unauthorized(r, access, "", anonymousNotEnough)
		}
		return a.unauthorized(r, access, "", "authentication required")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return a.unauthorized(r, access, "", "malformed basic credentials")
		}
		if !a.verifyPassword(user, pass) {
			return a.unauthorized(r, access, "", "invalid username or password")
		}
		return a.permit(user, access)
	case strings.EqualFold(scheme, "Bearer"):
		c, err := a.tokens.verifyAccess(strings.TrimSpace(cred), a.service, a.now())
		if err != nil {
			return a.unauthorized(r, access, "invalid_token", "invalid token: "+err.Error())
		}
		if needUser && c.Subject == "" {
			return a.unauthorized(r, access, "", anonymousNotEnough+" (this token was issued without credentials)")
		}
		missing := c.uncovered(access)
		if len(missing) == 0 {
			return nil
		}
		if c.Subject != "" {
			// The token is narrower than the request. If the user may not
			// do it anyway, say so (403); else the client should fetch a
			// token for the scope in the challenge (401).
			if err := a.permit(c.Subject, missing); err != nil {
				return err
			}
		}
		e := a.unauthorized(r, access, "insufficient_scope", "token does not grant "+scopes(missing))
		if c.Subject == "" {
			e.Message = "authentication required (anonymous token does not grant " + scopes(missing) + ")"
		}
		return e
	default:
		return a.unauthorized(r, access, "", "unsupported authorization scheme "+quoteScheme(scheme)+"; use Basic or Bearer")
	}
}

func quoteScheme(s string) string {
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// anonymousAllows reports whether a client without credentials may have
// access: pulls and the catalog, when AnonymousPull is on.
func (a *Auth) anonymousAllows(access []registry.Access) bool {
	if !a.anonPull {
		return false
	}
	for _, ac := range access {
		for _, act := range ac.Actions {
			if !anonymousAction(ac.Type, ac.Name, act) {
				return false
			}
		}
	}
	return true
}

func anonymousAction(typ, name, action string) bool {
	return (typ == "repository" && action == registry.ActionPull) || isCatalog(typ, name, action)
}

func isCatalog(typ, name, action string) bool {
	return typ == "registry" && name == "catalog" && action == "*"
}

// allowed reports whether the authenticated user may do action on the
// resource.
func (a *Auth) allowed(user, typ, name, action string) bool {
	if isCatalog(typ, name, action) {
		return true
	}
	if typ != "repository" {
		return false
	}
	if a.acl == nil {
		return action == registry.ActionPull || action == registry.ActionPush || action == registry.ActionDelete
	}
	return a.acl.allows(user, name, action)
}

// permit returns nil when user may have all of access, else a 403.
func (a *Auth) permit(user string, access []registry.Access) error {
	for _, ac := range access {
		for _, act := range ac.Actions {
			if !a.allowed(user, ac.Type, ac.Name, act) {
				return &registry.AuthError{
					Status:  http.StatusForbidden,
					Message: deniedMessage(user, ac.Type, ac.Name, act),
					Access:  access,
				}
			}
		}
	}
	return nil
}

func deniedMessage(user, typ, name, action string) string {
	if typ == "repository" {
		return fmt.Sprintf("access denied: user %q may not %s repository %q", user, action, name)
	}
	return fmt.Sprintf("access denied: user %q may not %s %s %q", user, action, typ, name)
}

// unauthorized builds the 401 with the Bearer challenge for access.
// bearerErr is the RFC 6750 error parameter ("invalid_token",
// "insufficient_scope"), or "" for none; containerd drops a cached token
// when it sees invalid_token.
func (a *Auth) unauthorized(r *http.Request, access []registry.Access, bearerErr, msg string) *registry.AuthError {
	var b strings.Builder
	b.WriteString(`Bearer realm=`)
	b.WriteString(quote(a.realmFor(r)))
	b.WriteString(`,service=`)
	b.WriteString(quote(a.service))
	if len(access) > 0 {
		b.WriteString(`,scope=`)
		b.WriteString(quote(scopes(access)))
	}
	if bearerErr != "" {
		b.WriteString(`,error=`)
		b.WriteString(quote(bearerErr))
	}
	return &registry.AuthError{Status: http.StatusUnauthorized, Challenge: b.String(), Message: msg, Access: access}
}

// realmFor is the token endpoint URL for a client of r.
func (a *Auth) realmFor(r *http.Request) string {
	if a.realm != "" {
		return a.realm
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + TokenPath
}

// scopes joins the scopes of access with spaces, as in the challenge's
// scope parameter.
func scopes(access []registry.Access) string {
	s := make([]string, len(access))
	for i, ac := range access {
		s[i] = ac.Scope()
	}
	return strings.Join(s, " ")
}

// quote makes s an HTTP quoted-string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
