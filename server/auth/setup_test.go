package auth

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/envreg/envreg/server/registry"
)

// bcryptHash hashes pw at MinCost (fast tests).
func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Test users and their passwords.
var testUsers = map[string]string{"alice": "alice-pw", "ci": "ci-pw", "reader": "reader-pw"}

// htpasswdFile writes an htpasswd file of testUsers.
func htpasswdFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# envreg users\n\n")
	for _, u := range []string{"alice", "ci", "reader"} {
		b.WriteString(u + ":" + bcryptHash(t, testUsers[u]) + "\n")
	}
	return writeFile(t, "htpasswd", b.String())
}

// clock is an adjustable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newAuth(t *testing.T, cfg Config) *Auth {
	t.Helper()
	if cfg.Htpasswd == "" {
		cfg.Htpasswd = htpasswdFile(t)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accessFor is the access a registry route needs, in the spirit of
// server/registry: GET /v2/ nothing, /v2/_catalog the catalog,
// manifests GET/HEAD pull, PUT pull+push, DELETE delete.
func accessFor(r *http.Request) []registry.Access {
	p := r.URL.Path
	switch {
	case p == "/v2/":
		return nil
	case p == "/v2/_catalog":
		return []registry.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	name, _, ok := strings.Cut(strings.TrimPrefix(p, "/v2/"), "/manifests/")
	if !ok {
		return nil
	}
	var actions []string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		actions = []string{registry.ActionPull}
	case http.MethodPut:
		actions = []string{registry.ActionPull, registry.ActionPush}
	case http.MethodDelete:
		actions = []string{registry.ActionDelete}
	}
	return []registry.Access{{Type: "repository", Name: name, Actions: actions}}
}

// newServer serves a on loopback: the token endpoint at TokenPath, and
// under /v2/ a handler that calls Authorize and answers 200 "ok" or the
// AuthError as the registry would.
func newServer(t *testing.T, a registry.Authorizer) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if au, ok := a.(*Auth); ok {
		mux.Handle(TokenPath, au.TokenHandler())
	}
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		err := a.Authorize(r, accessFor(r))
		if err == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		var ae *registry.AuthError
		if !errors.As(err, &ae) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		code := "DENIED"
		if ae.Status == http.StatusUnauthorized {
			code = "UNAUTHORIZED"
			w.Header().Set("WWW-Authenticate", ae.Challenge)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ae.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": ae.Message}}})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// result is a response, read.
type result struct {
	status    int
	challenge string
	body      string
}

// errorMessage is the message of the first error in the body.
func (r result) errorMessage(t *testing.T) (code, msg string) {
	t.Helper()
	var b struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || len(b.Errors) == 0 {
		t.Fatalf("body %q is not an error document: %v", r.body, err)
	}
	return b.Errors[0].Code, b.Errors[0].Message
}

// do sends method url with the Authorization header auth ("" none).
func do(t *testing.T, method, u, auth string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)}
}

func basic(user, pw string) string {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, pw)
	return req.Header.Get("Authorization")
}

// tokenReply is the token endpoint's answer.
type tokenReply struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}
