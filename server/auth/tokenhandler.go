package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxScopes bounds the scopes of one token request (clients ask for one to
// three: the repository, and the source of a cross-repository mount).
const maxScopes = 64

// maxFormBytes bounds a POST body.
const maxFormBytes = 64 << 10

// tokenResponse is the answer of the token endpoint: the fields of the
// token spec (token, expires_in, issued_at) and of its OAuth2 variant
// (access_token, scope, refresh_token) in one document, since clients
// read one or the other.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// TokenHandler serves the token endpoint (mount it at TokenPath): GET as
// in the token spec, with optional Basic credentials, and POST with the
// OAuth2 password and refresh_token grants. See the package doc.
func (a *Auth) TokenHandler() http.Handler { return http.HandlerFunc(a.serveToken) }

// tokenError is a refused token request: status, OAuth2 error code
// (RFC 6749 §5.2) and message.
type tokenError struct {
	status int
	oauth  string
	msg    string
}

func (a *Auth) serveToken(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	var (
		resp *tokenResponse
		terr *tokenError
	)
	switch r.Method {
	case http.MethodGet:
		resp, terr = a.tokenGet(r)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		resp, terr = a.tokenPost(r)
	default:
		h.Set("Allow", "GET, POST")
		terr = &tokenError{http.StatusMethodNotAllowed, "invalid_request", r.Method + " is not allowed on the token endpoint; use GET or POST"}
	}
	if terr != nil {
		writeTokenError(w, terr)
		return
	}
	body, err := json.Marshal(resp)
	if err != nil {
		writeTokenError(w, &tokenError{http.StatusInternalServerError, "server_error", "internal server error"})
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeTokenError writes the registry's error document, with the OAuth2
// error fields beside it for OAuth2 clients.
func writeTokenError(w http.ResponseWriter, e *tokenError) {
	code := "UNSUPPORTED"
	switch e.status {
	case http.StatusUnauthorized:
		code = "UNAUTHORIZED"
		w.Header().Set("WWW-Authenticate", `Basic realm="envreg token service"`)
	case http.StatusInternalServerError:
		code = "UNKNOWN"
	}
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors           []entry `json:"errors"`
		Error            string  `json:"error"`
		ErrorDescription string  `json:"error_description"`
	}{[]entry{{code, e.msg}}, e.oauth, e.msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// tokenGet serves GET ?service=&scope=&account=&offline_token=&client_id=
// (https://distribution.github.io/distribution/spec/auth/token/). account
// is ignored: the identity is the Basic credentials' user.
func (a *Auth) tokenGet(r *http.Request) (*tokenResponse, *tokenError) {
	q := r.URL.Query()
	if terr := a.checkService(q.Get("service")); terr != nil {
		return nil, terr
	}
	user := ""
	if h := r.Header.Get("Authorization"); h != "" {
		u, pass, ok := r.BasicAuth()
		if !ok {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "the token endpoint takes Basic credentials only"}
		}
		if !a.verifyPassword(u, pass) {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "invalid username or password"}
		}
		user = u
	} else if !a.anonPull {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "authentication required (anonymous pull is off)"}
	}
	return a.respond(user, q["scope"], user != "" && q.Get("offline_token") == "true", "")
}

// tokenPost serves the OAuth2 grants
// (https://distribution.github.io/distribution/spec/auth/oauth/).
func (a *Auth) tokenPost(r *http.Request) (*tokenResponse, *tokenError) {
	if err := r.ParseForm(); err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "reading the form: " + err.Error()}
	}
	f := r.PostForm
	if terr := a.checkService(f.Get("service")); terr != nil {
		return nil, terr
	}
	offline := f.Get("access_type") == "offline"
	switch gt := f.Get("grant_type"); gt {
	case "password":
		user, pass := f.Get("username"), f.Get("password")
		if user == "" || pass == "" {
			return nil, &tokenError{http.StatusBadRequest, "invalid_request", "the password grant needs username and password"}
		}
		if !a.verifyPassword(user, pass) {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_grant", "invalid username or password"}
		}
		return a.respond(user, f["scope"], offline, "")
	case "refresh_token":
		if !a.refresh {
			return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "refresh tokens need a configured token secret"}
		}
		rt := f.Get("refresh_token")
		if rt == "" {
			return nil, &tokenError{http.StatusBadRequest, "invalid_request", "the refresh_token grant needs refresh_token"}
		}
		c, err := a.tokens.verifyRefresh(rt, a.service)
		if err != nil {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_grant", "invalid refresh token: " + err.Error()}
		}
		if fp := a.users.fingerprint(c.Subject); fp == "" || fp != c.Fingerprint {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_grant", "refresh token revoked (the user's password changed or the user was removed); log in again"}
		}
		keep := ""
		if offline {
			keep = rt
		}
		return a.respond(c.Subject, f["scope"], false, keep)
	case "":
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "grant_type is missing"}
	default:
		return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported (use password or refresh_token)", gt)}
	}
}

func (a *Auth) checkService(s string) *tokenError {
	if s != "" && s != a.service {
		return &tokenError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("service %q is not %q", s, a.service)}
	}
	return nil
}

// respond grants user ("" anonymous) the requested scopes as far as
// allowed, and signs the token; with newRefresh it also issues a refresh
// token, else it returns refresh (possibly "").
func (a *Auth) respond(user string, rawScopes []string, newRefresh bool, refresh string) (*tokenResponse, *tokenError) {
	var requested []string
	for _, s := range rawScopes {
		requested = append(requested, strings.Fields(s)...)
	}
	if len(requested) > maxScopes {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", fmt.Sprintf("%d scopes requested; at most %d", len(requested), maxScopes)}
	}
	granted := a.grant(user, requested)
	now := a.now()
	tok, err := a.tokens.issueAccess(user, a.service, granted, now, a.ttl)
	if err != nil {
		return nil, &tokenError{http.StatusInternalServerError, "server_error", "internal server error"}
	}
	if newRefresh && a.refresh {
		if refresh, err = a.tokens.issueRefresh(user, a.users.fingerprint(user), a.service, now); err != nil {
			return nil, &tokenError{http.StatusInternalServerError, "server_error", "internal server error"}
		}
	}
	scopes := make([]string, len(granted))
	for i, g := range granted {
		scopes[i] = g.Type + ":" + g.Name + ":" + strings.Join(g.Actions, ",")
	}
	return &tokenResponse{
		Token:        tok,
		AccessToken:  tok,
		TokenType:    "Bearer",
		ExpiresIn:    int64(a.ttl / time.Second),
		IssuedAt:     now.UTC().Format(time.RFC3339),
		Scope:        strings.Join(scopes, " "),
		RefreshToken: refresh,
	}, nil
}

// grant intersects the requested scopes ("type:name:action,action") with
// what user ("" anonymous) may do. Malformed scopes and unknown resource
// types are granted nothing; the same resource asked twice is merged.
func (a *Auth) grant(user string, requested []string) []resourceActions {
	var out []resourceActions
	index := map[[2]string]int{}
	for _, s := range requested {
		typ, name, actions, ok := parseScope(s)
		if !ok {
			continue
		}
		for _, act := range actions {
			if user == "" {
				if !a.anonPull || !anonymousAction(typ, name, act) {
					continue
				}
			} else if !a.allowed(user, typ, name, act) {
				continue
			}
			k := [2]string{typ, name}
			i, seen := index[k]
			if !seen {
				i = len(out)
				index[k] = i
				out = append(out, resourceActions{Type: typ, Name: name, Actions: []string{}})
			}
			if !slices.Contains(out[i].Actions, act) {
				out[i].Actions = append(out[i].Actions, act)
			}
		}
	}
	return out
}

// parseScope splits "type[(class)]:name:actions". The name may contain
// ':' (a registry host with a port), so the actions follow the last ':'.
func parseScope(s string) (typ, name string, actions []string, ok bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", nil, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", "", nil, false
	}
	name, acts := rest[:i], rest[i+1:]
	if j := strings.IndexByte(typ, '('); j > 0 && strings.HasSuffix(typ, ")") {
		typ = typ[:j]
	}
	if typ == "" || name == "" || acts == "" {
		return "", "", nil, false
	}
	return typ, name, strings.Split(acts, ","), true
}
