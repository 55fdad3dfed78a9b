package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/server/auth"
)

// newAuthPublished is the whole server with authentication: users alice
// (may pull env and team), bob (may pull and push bob/**, nothing of env)
// and carol (may pull env), and anonymous pull as given. The API uses the registry's
// authorizer, as serve --auth-htpasswd wires it.
func newAuthPublished(t *testing.T, anonymousPull bool) *published {
	t.Helper()
	dir := t.TempDir()
	var htpasswd strings.Builder
	for _, u := range []string{"alice", "bob", "carol"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd.WriteString(u + ":" + string(h) + "\n")
	}
	acl := `access:
  - user: alice
    repositories: [env, team]
    actions: [pull]
  - user: bob
    repositories: ["bob/**"]
    actions: [pull, push]
  - user: carol
    repositories: [env]
    actions: [pull]
`
	for name, content := range map[string]string{"htpasswd": htpasswd.String(), "acl.yaml": acl} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := auth.New(auth.Config{Htpasswd: filepath.Join(dir, "htpasswd"), ACL: filepath.Join(dir, "acl.yaml"), AnonymousPull: anonymousPull})
	if err != nil {
		t.Fatal(err)
	}
	return newPublishedWith(t, func(d *server.Deps) {
		d.Auth, d.APIAuth = a, a
		d.Token, d.TokenPath = a.TokenHandler(), auth.TokenPath
	})
}

// TestAuthorizedAPI: with authentication configured, the provisioning API
// and the catalog page use the registry's users, tokens and ACL instead of
// the loopback rule: a client on another host with credentials is served,
// a resolve of stack S needs pull on S, the catalog routes need the
// catalog scope, and refusals are 401 with the Bearer challenge (no or bad
// credentials) or 403 naming what is missing.
func TestAuthorizedAPI(t *testing.T) {
	p := newAuthPublished(t, false)
	body := `{"requirements":{"php":"^8.2"}}`
	type want struct {
		status    int
		code      string
		challenge string // a fragment of WWW-Authenticate
		message   string
	}
	call := func(method, path, remote, host, authz string) (*httptest.ResponseRecorder, *api.Error) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr, req.Host = remote, host
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		p.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			return rec, nil
		}
		var e api.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s %s: %d with a body that is not an API error: %s", method, path, rec.Code, rec.Body)
		}
		return rec, &e
	}
	basic := func(user string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, user+"-pw")
		return r.Header.Get("Authorization")
	}
	const remote, host = "198.51.100.20:40000", "registry.example:5000" // another host, its own name
	for _, tc := range []struct {
		name, method, path, authz string
		want                      want
	}{
		{"resolve, alice from another host", "POST", "/api/v1/stacks/env/resolve", basic("alice"), want{status: 200}},
		{"stack, alice", "GET", "/api/v1/stacks/env", basic("alice"), want{status: 200}},
		{"stacks, alice", "GET", "/api/v1/stacks", basic("alice"), want{status: 200}},
		{"packages, bob (catalog: every user)", "GET", "/api/v1/packages/php", basic("bob"), want{status: 200}},
		{"openapi, bob", "GET", "/api/v1/openapi.yaml", basic("bob"), want{status: 200}},
		{"page resolve, alice", "GET", "/?stack=env&requirements=php", basic("alice"), want{status: 200}},
		{"package page, bob (catalog: every user)", "GET", "/packages/php", basic("bob"), want{status: 200}},
		{"package page, anonymous", "GET", "/packages/php", "", want{status: 401, code: "UNAUTHORIZED", challenge: `scope="registry:catalog:*"`}},
		{"resolve, bob", "POST", "/api/v1/stacks/env/resolve", basic("bob"), want{status: 403, code: "FORBIDDEN",
			message: `access denied: user "bob" may not pull repository "env"`}},
		{"stack, bob", "GET", "/api/v1/stacks/env", basic("bob"), want{status: 403, code: "FORBIDDEN", message: `may not pull repository "env"`}},
		{"page resolve, bob", "GET", "/?stack=env&requirements=php", basic("bob"), want{status: 403, code: "FORBIDDEN", message: `may not pull repository "env"`}},
		{"resolve, anonymous", "POST", "/api/v1/stacks/env/resolve", "", want{status: 401, code: "UNAUTHORIZED",
			challenge: `scope="repository:env:pull"`, message: "authentication required"}},
		{"stacks, anonymous", "GET", "/api/v1/stacks", "", want{status: 401, code: "UNAUTHORIZED", challenge: `scope="registry:catalog:*"`}},
		{"unknown route, anonymous", "GET", "/api/v1/nothing", "", want{status: 401, code: "UNAUTHORIZED"}},
		{"resolve, wrong password", "POST", "/api/v1/stacks/env/resolve", "Basic YWxpY2U6bm8=", want{status: 401, code: "UNAUTHORIZED",
			message: "invalid username or password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, e := call(tc.method, tc.path, remote, host, tc.authz)
			if rec.Code != tc.want.status {
				t.Fatalf("%d, want %d\n%.400s", rec.Code, tc.want.status, rec.Body)
			}
			if e == nil {
				return
			}
			c := rec.Header().Get("WWW-Authenticate")
			if e.Code != tc.want.code || !strings.Contains(e.Message, tc.want.message) || e.RequestID == "" {
				t.Errorf("error %+v, want code %s saying %q", e, tc.want.code, tc.want.message)
			}
			if tc.want.status == 401 && (!strings.HasPrefix(c, `Bearer realm="http://`+host+auth.TokenPath+`",service="envreg"`) || !strings.Contains(c, tc.want.challenge)) {
				t.Errorf("challenge %q, want one with %s", c, tc.want.challenge)
			}
			if tc.want.status != 401 && c != "" {
				t.Errorf("challenge %q on a %d", c, tc.want.status)
			}
		})
	}

	// A token from the token endpoint, as a control plane would use it.
	token := func(scope string) string {
		t.Helper()
		req := httptest.NewRequest("GET", auth.TokenPath+"?service=envreg&scope="+url.QueryEscape(scope), nil)
		req.RemoteAddr, req.Host = remote, host
		req.SetBasicAuth("alice", "alice-pw")
		rec := httptest.NewRecorder()
		p.srv.Config.Handler.ServeHTTP(rec, req)
		var tok struct{ Token string }
		if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.Token == "" {
			t.Fatalf("token: %d %s", rec.Code, rec.Body)
		}
		return "Bearer " + tok.Token
	}
	if rec, e := call("POST", "/api/v1/stacks/env/resolve", remote, host, token("repository:env:pull")); rec.Code != 200 {
		t.Errorf("resolve with a token for repository:env:pull: %d %+v", rec.Code, e)
	}
	rec, e := call("POST", "/api/v1/stacks/env/resolve", remote, host, token("registry:catalog:*"))
	if rec.Code != 401 || e.Code != "UNAUTHORIZED" || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("resolve with a token for the catalog only: %d %+v %q", rec.Code, e, rec.Header().Get("WWW-Authenticate"))
	}
	if rec, e := call("GET", "/api/v1/stacks", remote, host, token("registry:catalog:*")); rec.Code != 200 {
		t.Errorf("stacks with a catalog token: %d %+v", rec.Code, e)
	}

	// "from" shows what the from image runs: pull on the stack it was
	// composed for is needed too. alice may pull team, carol may not.
	if err := p.cat.PutStack(t.Context(), catalog.Stack{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	body = `{"requirements":{"php":"^8.2"}}`
	rec, e = call("POST", "/api/v1/stacks/team/resolve", remote, host, basic("alice"))
	var team api.ResolveResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &team); rec.Code != 200 || err != nil {
		t.Fatalf("resolve team as alice: %d %+v", rec.Code, e)
	}
	body = `{"requirements":{"php":"^8.2"},"from":"` + team.Digest + `"}`
	if rec, e := call("POST", "/api/v1/stacks/env/resolve", remote, host, basic("alice")); rec.Code != 200 {
		t.Errorf("resolve env from a team image as alice: %d %+v", rec.Code, e)
	}
	rec, e = call("POST", "/api/v1/stacks/env/resolve", remote, host, basic("carol"))
	if rec.Code != 403 || e.Code != "FORBIDDEN" || !strings.Contains(e.Message, `user "carol" may not pull repository "team"`) {
		t.Errorf("resolve env from a team image as carol: %d %+v", rec.Code, e)
	}
}

// TestAuthorizedAPIAnonymous: with anonymous pull on, clients without
// credentials may read the catalog through the API, from any host, as
// they may pull; but a resolve pins what it composes for good, so it
// needs a user (the ACL does not govern anonymous clients).
func TestAuthorizedAPIAnonymous(t *testing.T) {
	p := newAuthPublished(t, true)
	send := func(method, path, body, authz string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr, req.Host = "198.51.100.20:40000", "registry.example"
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		p.srv.Config.Handler.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/api/v1/stacks", "/api/v1/stacks/env", "/api/v1/packages/php", "/", "/packages/php"} {
		if rec := send("GET", path, "", ""); rec.Code != 200 {
			t.Errorf("GET %s anonymously from another host: %d\n%.300s", path, rec.Code, rec.Body)
		}
	}
	// An anonymous token, as docker gets one for a pull.
	tr := send("GET", auth.TokenPath+"?service=envreg&scope="+url.QueryEscape("repository:env:pull"), "", "")
	var tok struct{ Token string }
	if err := json.Unmarshal(tr.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		t.Fatalf("anonymous token: %d %s", tr.Code, tr.Body)
	}
	for _, tc := range []struct{ name, method, path, body, authz string }{
		{"resolve", "POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`, ""},
		{"resolve with an anonymous token", "POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`, "Bearer " + tok.Token},
		{"the page's form", "GET", "/?requirements=php", "", ""},
	} {
		rec := send(tc.method, tc.path, tc.body, tc.authz)
		var e api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 401 || e.Code != "UNAUTHORIZED" || !strings.Contains(e.Message, "a resolve pins what it composes") ||
			!strings.Contains(rec.Header().Get("WWW-Authenticate"), `scope="`) {
			t.Errorf("%s anonymously: %d %+v %q", tc.name, rec.Code, e, rec.Header().Get("WWW-Authenticate"))
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("alice", "alice-pw")
	if rec := send("POST", "/api/v1/stacks/env/resolve", `{"requirements":{"php":"*"}}`, r.Header.Get("Authorization")); rec.Code != 200 {
		t.Errorf("resolve as alice: %d\n%.300s", rec.Code, rec.Body)
	}
}

// TestOpenAPIAccess keeps the scopes in openapi.yaml true: each
// operation's x-envreg-access is the scope the server's challenge names
// when a client without credentials calls it (anonymous pull off).
func TestOpenAPIAccess(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]map[string]any `yaml:"paths"`
		Security   []map[string][]string                `yaml:"security"`
		Components struct {
			SecuritySchemes map[string]map[string]any `yaml:"securitySchemes"`
		}
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"basicAuth", "bearerAuth"} {
		if doc.Components.SecuritySchemes[scheme]["type"] != "http" {
			t.Errorf("security scheme %s: %v", scheme, doc.Components.SecuritySchemes[scheme])
		}
	}
	if len(doc.Security) != 3 {
		t.Errorf("security requirements %v, want anonymous, basicAuth, bearerAuth", doc.Security)
	}
	p, anon := newAuthPublished(t, false), newAuthPublished(t, true)
	n := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			access, _ := op["x-envreg-access"].(string)
			if access == "" {
				t.Errorf("%s %s: no x-envreg-access", method, path)
				continue
			}
			concrete := strings.NewReplacer("{stack}", "env", "{name}", "php").Replace(path)
			req := httptest.NewRequest(strings.ToUpper(method), concrete, strings.NewReader("{}"))
			req.RemoteAddr = "198.51.100.20:40000"
			rec := httptest.NewRecorder()
			p.srv.Config.Handler.ServeHTTP(rec, req)
			want := `scope="` + strings.ReplaceAll(access, "{stack}", "env") + `"`
			if c := rec.Header().Get("WWW-Authenticate"); rec.Code != 401 || !strings.Contains(c, want) {
				t.Errorf("%s %s anonymously: %d %q, want 401 with %s", method, concrete, rec.Code, c, want)
			}
			if _, ok := op["responses"].(map[string]any)["401"]; !ok {
				t.Errorf("%s %s: no 401 response documented", method, path)
			}
			// x-envreg-user: refused to a client without credentials even
			// while anonymous pull is on.
			user, _ := op["x-envreg-user"].(bool)
			req = httptest.NewRequest(strings.ToUpper(method), concrete, strings.NewReader(`{"requirements":{"php":"*"}}`))
			req.RemoteAddr = "198.51.100.20:40000"
			rec = httptest.NewRecorder()
			anon.srv.Config.Handler.ServeHTTP(rec, req)
			if refused := rec.Code == 401; refused != user {
				t.Errorf("%s %s anonymously with anonymous pull on: %d, x-envreg-user %v", method, concrete, rec.Code, user)
			}
			n++
		}
	}
	if n < 6 {
		t.Errorf("checked %d operations", n)
	}
}
