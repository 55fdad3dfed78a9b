package auth

// End-to-end tests: the real registry (server/registry with the push side
// on) behind httptest on loopback, with the token endpoint mounted at
// TokenPath in front of it, driven by go-containerregistry and by raw HTTP.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/envreg/envreg/layerstore/uploads/disk"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/server/registry"
	"github.com/envreg/envreg/test/fixtures"
)

// flowRequest is one request the flow server saw.
type flowRequest struct {
	method, path string
	scheme       string // scheme of the Authorization header, "" none
	basicUser    string // user of Basic credentials
	scopes       []string
}

// flowServer is the real registry, push side on, over the fixture stores,
// with a's token endpoint (when a is an *Auth) at TokenPath.
type flowServer struct {
	url  string
	host string

	mu   sync.Mutex
	seen []flowRequest
}

func newFlowServer(t *testing.T, a registry.Authorizer) *flowServer {
	t.Helper()
	st := fixtures.NewStores(t)
	up, err := disk.New(t.TempDir(), st.Blobs, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(st.Catalog, st.Catalog, st.Blobs, manifestgen.NewComposer(st.Catalog, st.Blobs),
		registry.WithLogger(slog.New(slog.DiscardHandler)), registry.WithPush(st.Catalog, st.Blobs, up),
		registry.WithAuthorizer(a))
	mux := http.NewServeMux()
	if au, ok := a.(*Auth); ok {
		mux.Handle(TokenPath, au.TokenHandler())
	}
	mux.Handle("/v2/", reg)
	fs := &flowServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.record(r)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	fs.url, fs.host = srv.URL, u.Host
	return fs
}

func (fs *flowServer) record(r *http.Request) {
	fr := flowRequest{method: r.Method, path: r.URL.Path}
	fr.scheme, _, _ = strings.Cut(r.Header.Get("Authorization"), " ")
	if u, _, ok := r.BasicAuth(); ok {
		fr.basicUser = u
	}
	for _, s := range r.URL.Query()["scope"] {
		fr.scopes = append(fr.scopes, strings.Fields(s)...)
	}
	fs.mu.Lock()
	fs.seen = append(fs.seen, fr)
	fs.mu.Unlock()
}

// requests returns the requests seen since the last call.
func (fs *flowServer) requests() []flowRequest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s := fs.seen
	fs.seen = nil
	return s
}

func (fs *flowServer) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(fs.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// realm is the realm the registry derives for this server.
func (fs *flowServer) realm() string { return fs.url + TokenPath }

// challenge is the exact Bearer challenge expected for scope ("" none)
// and bearer error ("" none).
func (fs *flowServer) challenge(scope, bearerErr string) string {
	c := `Bearer realm="` + fs.realm() + `",service="envreg"`
	if scope != "" {
		c += `,scope="` + scope + `"`
	}
	if bearerErr != "" {
		c += `,error="` + bearerErr + `"`
	}
	return c
}

// flowResp is a response, read.
type flowResp struct {
	status int
	header http.Header
	body   string
}

// code returns the code and message of the first error in the body.
func (r flowResp) code(t *testing.T) (code, msg string) {
	t.Helper()
	var b struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || len(b.Errors) == 0 {
		t.Fatalf("body %q is not an error document: %v", r.body, err)
	}
	return b.Errors[0].Code, b.Errors[0].Message
}

// flowDo sends method path (relative to the server) with the
// Authorization header auth ("" none) and an empty body.
func (fs *flowServer) do(t *testing.T, method, path, auth string) flowResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, fs.url+path, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return flowSend(t, req)
}

func flowSend(t *testing.T, req *http.Request) flowResp {
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
	return flowResp{resp.StatusCode, resp.Header, string(b)}
}

// tokenGet asks the token endpoint with GET for scopes.
func (fs *flowServer) tokenGet(t *testing.T, auth string, scopes ...string) flowResp {
	t.Helper()
	q := url.Values{"service": {"envreg"}, "scope": scopes}
	return fs.do(t, http.MethodGet, TokenPath+"?"+q.Encode(), auth)
}

// tokenPost sends form to the token endpoint.
func (fs *flowServer) tokenPost(t *testing.T, form url.Values) flowResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fs.url+TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return flowSend(t, req)
}

// token decodes a 200 token answer.
func (r flowResp) token(t *testing.T) tokenReply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token endpoint: status %d, body %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("token endpoint: Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("token endpoint: Cache-Control %q, want no-store", cc)
	}
	var tr tokenReply
	if err := json.Unmarshal([]byte(r.body), &tr); err != nil {
		t.Fatalf("token body %q: %v", r.body, err)
	}
	if tr.Token == "" || tr.Token != tr.AccessToken {
		t.Fatalf("token %q and access_token %q: want equal and non-empty", tr.Token, tr.AccessToken)
	}
	return tr
}

// wantStatus fails unless r has status.
func (r flowResp) wantStatus(t *testing.T, what string, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, body %s; want %d", what, r.status, r.body, status)
	}
}

// wantUnauthorized checks a registry 401: code UNAUTHORIZED, the exact
// challenge, and (when msg is not "") the message.
func (r flowResp) wantUnauthorized(t *testing.T, what, challenge, msg string) {
	t.Helper()
	r.wantStatus(t, what, http.StatusUnauthorized)
	code, m := r.code(t)
	if code != "UNAUTHORIZED" {
		t.Errorf("%s: code %s, want UNAUTHORIZED", what, code)
	}
	if msg != "" && m != msg {
		t.Errorf("%s: message %q, want %q", what, m, msg)
	}
	if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != challenge {
		t.Errorf("%s: WWW-Authenticate %q, want [%q]", what, got, challenge)
	}
}

// wantDenied checks a registry 403: code DENIED, the message, and no
// challenge.
func (r flowResp) wantDenied(t *testing.T, what, msg string) {
	t.Helper()
	r.wantStatus(t, what, http.StatusForbidden)
	code, m := r.code(t)
	if code != "DENIED" {
		t.Errorf("%s: code %s, want DENIED", what, code)
	}
	if m != msg {
		t.Errorf("%s: message %q, want %q", what, m, msg)
	}
	if c := r.header.Get("WWW-Authenticate"); c != "" {
		t.Errorf("%s: a 403 carries the challenge %q", what, c)
	}
}

// wantClientError checks that err is a go-containerregistry transport
// error with status and, when the failed request was not a HEAD (whose
// answer has no body), the error code.
func wantClientError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want status %d", what, status)
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		t.Fatalf("%s: error %v (%T) is not a transport error", what, err, err)
	}
	if te.StatusCode != status {
		t.Fatalf("%s: status %d (%v), want %d", what, te.StatusCode, err, status)
	}
	if te.Request != nil && te.Request.Method == http.MethodHead {
		return
	}
	if len(te.Errors) == 0 {
		t.Fatalf("%s: no error diagnostics in %v", what, err)
	}
	if got := string(te.Errors[0].Code); got != code {
		t.Fatalf("%s: code %s (%v), want %s", what, got, err, code)
	}
}

func randomImage(t *testing.T) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

func creds(user string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: testUsers[user]})
}

// pullDigest pulls ref and returns its digest.
func pullDigest(t *testing.T, ref name.Reference, opts ...remote.Option) (v1.Hash, error) {
	t.Helper()
	img, err := remote.Image(ref, append(opts, remote.WithContext(t.Context()))...)
	if err != nil {
		return v1.Hash{}, err
	}
	// Read the config and layers too: blobs go through the same checks.
	if _, err := img.ConfigFile(); err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
	}
	return img.Digest()
}

func push(ref name.Reference, img v1.Image, opts ...remote.Option) error {
	return remote.Write(ref, img, opts...)
}

// hasActions reports whether scopes has a scope "repository:<repo>:<actions>"
// whose actions are exactly want, in any order.
func hasActions(scopes []string, repo string, want ...string) bool {
	for _, s := range scopes {
		rest, ok := strings.CutPrefix(s, "repository:"+repo+":")
		if !ok {
			continue
		}
		got := strings.Split(rest, ",")
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if slices.Equal(got, w) {
			return true
		}
	}
	return false
}

// TestFlowClientPushPull: crane's library pushes and pulls with htpasswd
// credentials through the Bearer token flow.
func TestFlowClientPushPull(t *testing.T) {
	t.Parallel()
	fs := newFlowServer(t, newAuth(t, Config{AnonymousPull: true}))
	img, want := randomImage(t)
	ref := fs.ref(t, "team/app:v1")

	if err := push(ref, img, creds("alice")); err != nil {
		t.Fatalf("push: %v", err)
	}
	reqs := fs.requests()
	var tokenAsked, manifestPut bool
	for _, r := range reqs {
		switch {
		case r.path == TokenPath:
			if r.method != http.MethodGet || r.scheme != "Basic" || r.basicUser != "alice" {
				t.Errorf("token request %+v: want GET with alice's Basic credentials", r)
			}
			if hasActions(r.scopes, "team/app", "pull", "push") {
				tokenAsked = true
			}
		case strings.HasPrefix(r.path, "/v2/team/app/"):
			// Every repository request carries the token, never the password.
			if r.scheme != "Bearer" {
				t.Errorf("%s %s: Authorization scheme %q, want Bearer", r.method, r.path, r.scheme)
			}
			if r.method == http.MethodPut && r.path == "/v2/team/app/manifests/v1" {
				manifestPut = true
			}
		case r.path == "/v2/":
			// The client's ping: anonymous, answered with the challenge.
		default:
			t.Errorf("unexpected request %s %s", r.method, r.path)
		}
	}
	if !tokenAsked {
		t.Errorf("push never asked the token endpoint for repository:team/app:pull,push: %+v", reqs)
	}
	if !manifestPut {
		t.Errorf("push never sent PUT /v2/team/app/manifests/v1: %+v", reqs)
	}

	got, err := pullDigest(t, ref, creds("alice"))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if got != want {
		t.Fatalf("pulled %s, pushed %s", got, want)
	}
	// By digest, too.
	if got, err := pullDigest(t, fs.ref(t, "team/app@"+want.String()), creds("alice")); err != nil || got != want {
		t.Fatalf("pull by digest: %s, %v; want %s", got, err, want)
	}

	// A wrong password fails at the token endpoint with 401.
	bad := remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})
	_, err = pullDigest(t, ref, bad)
	wantClientError(t, "pull with a wrong password", err, http.StatusUnauthorized, "UNAUTHORIZED")
	img2, _ := randomImage(t)
	err = push(fs.ref(t, "team/app:v2"), img2, bad)
	wantClientError(t, "push with a wrong password", err, http.StatusUnauthorized, "UNAUTHORIZED")
	// And v2 was not written.
	r := fs.do(t, http.MethodGet, "/v2/team/app/manifests/v2", basic("alice", "alice-pw"))
	r.wantStatus(t, "GET the refused tag", http.StatusNotFound)
}

// TestFlowAnonymous: with AnonymousPull on, anonymous clients pull pushed
// images and stacks and list the catalog, and may not push or delete.
func TestFlowAnonymous(t *testing.T) {
	t.Parallel()
	fs := newFlowServer(t, newAuth(t, Config{AnonymousPull: true}))
	img, want := randomImage(t)
	ref := fs.ref(t, "team/app:v1")
	if err := push(ref, img, creds("alice")); err != nil {
		t.Fatalf("push: %v", err)
	}
	fs.requests()

	got, err := pullDigest(t, ref)
	if err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	if got != want {
		t.Fatalf("anonymous pull: %s, want %s", got, want)
	}
	anonToken := false
	for _, r := range fs.requests() {
		if r.scheme == "Basic" {
			t.Errorf("anonymous pull sent Basic credentials: %+v", r)
		}
		if r.path == TokenPath && r.scheme == "" && hasActions(r.scopes, "team/app", "pull") {
			anonToken = true
		}
	}
	if !anonToken {
		t.Error("anonymous pull did not fetch an anonymous token for repository:team/app:pull")
	}

	// The fixture stack "env" at "latest" is a composed index.
	desc, err := remote.Get(fs.ref(t, "env:latest"), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("anonymous pull of env:latest: %v", err)
	}
	if desc.MediaType != types.OCIImageIndex {
		t.Fatalf("env:latest: media type %s, want %s", desc.MediaType, types.OCIImageIndex)
	}

	// Raw requests: reads pass without credentials.
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "").wantStatus(t, "anonymous GET manifest", http.StatusOK)
	r := fs.do(t, http.MethodGet, "/v2/_catalog", "")
	r.wantStatus(t, "anonymous catalog", http.StatusOK)
	if !strings.Contains(r.body, `"team/app"`) || !strings.Contains(r.body, `"env"`) {
		t.Fatalf("anonymous catalog %s lacks team/app or env", r.body)
	}
	fs.do(t, http.MethodGet, "/v2/team/app/tags/list", "").wantStatus(t, "anonymous tags/list", http.StatusOK)

	// Writes do not.
	pushScope := "repository:team/app:pull,push"
	fs.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", "").
		wantUnauthorized(t, "anonymous upload", fs.challenge(pushScope, ""), "authentication required")
	fs.do(t, http.MethodPut, "/v2/team/app/manifests/v9", "").
		wantUnauthorized(t, "anonymous manifest PUT", fs.challenge(pushScope, ""), "authentication required")
	fs.do(t, http.MethodDelete, "/v2/team/app/manifests/"+want.String(), "").
		wantUnauthorized(t, "anonymous DELETE", fs.challenge("repository:team/app:delete", ""), "authentication required")
	// A mount needs pull on the source as well; both scopes are in the challenge.
	fs.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/?from=other/src&mount="+want.String(), "").
		wantUnauthorized(t, "anonymous mount", fs.challenge(pushScope+" repository:other/src:pull", ""), "authentication required")

	// An anonymous token grants pull only, whatever is asked.
	tr := fs.tokenGet(t, "", pushScope).token(t)
	if tr.Scope != "repository:team/app:pull" {
		t.Fatalf("anonymous token scope %q, want repository:team/app:pull", tr.Scope)
	}
	if tr.RefreshToken != "" {
		t.Fatal("anonymous token came with a refresh token")
	}
	fs.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", "Bearer "+tr.Token).
		wantUnauthorized(t, "upload with an anonymous token", fs.challenge(pushScope, "insufficient_scope"),
			"authentication required (anonymous token does not grant repository:team/app:push)")
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "Bearer "+tr.Token).
		wantStatus(t, "GET with an anonymous token", http.StatusOK)

	// The client: the push fails with 401 and writes nothing.
	img2, _ := randomImage(t)
	err = push(fs.ref(t, "team/app:v2"), img2)
	wantClientError(t, "anonymous push", err, http.StatusUnauthorized, "UNAUTHORIZED")
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v2", "").wantStatus(t, "GET the refused tag", http.StatusNotFound)

	// Bad credentials are refused, not treated as anonymous.
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", basic("alice", "wrong")).
		wantUnauthorized(t, "GET with a wrong password", fs.challenge("repository:team/app:pull", ""), "invalid username or password")
}

// TestFlowAnonymousPullOff: without AnonymousPull every repository request
// needs credentials.
func TestFlowAnonymousPullOff(t *testing.T) {
	t.Parallel()
	fs := newFlowServer(t, newAuth(t, Config{AnonymousPull: false}))
	img, want := randomImage(t)
	ref := fs.ref(t, "team/app:v1")
	if err := push(ref, img, creds("alice")); err != nil {
		t.Fatalf("push: %v", err)
	}

	pull := "repository:team/app:pull"
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "").
		wantUnauthorized(t, "anonymous GET manifest", fs.challenge(pull, ""), "authentication required")
	fs.do(t, http.MethodGet, "/v2/team/app/blobs/"+want.String(), "").
		wantUnauthorized(t, "anonymous GET blob", fs.challenge(pull, ""), "authentication required")
	fs.do(t, http.MethodGet, "/v2/env/manifests/latest", "").
		wantUnauthorized(t, "anonymous GET stack", fs.challenge("repository:env:pull", ""), "authentication required")
	fs.do(t, http.MethodGet, "/v2/_catalog", "").
		wantUnauthorized(t, "anonymous catalog", fs.challenge("registry:catalog:*", ""), "authentication required")

	// No anonymous tokens either.
	r := fs.tokenGet(t, "", pull)
	r.wantStatus(t, "anonymous token", http.StatusUnauthorized)
	if code, _ := r.code(t); code != "UNAUTHORIZED" {
		t.Fatalf("anonymous token: code %s", code)
	}

	// The client: anonymous fails, with credentials works.
	_, err := pullDigest(t, ref)
	wantClientError(t, "anonymous pull", err, http.StatusUnauthorized, "UNAUTHORIZED")
	got, err := pullDigest(t, ref, creds("reader"))
	if err != nil || got != want {
		t.Fatalf("pull as reader: %s, %v; want %s", got, err, want)
	}
	fs.do(t, http.MethodGet, "/v2/_catalog", basic("reader", "reader-pw")).wantStatus(t, "catalog with Basic", http.StatusOK)
	fs.do(t, http.MethodGet, "/v2/env/manifests/latest", basic("reader", "reader-pw")).wantStatus(t, "stack with Basic", http.StatusOK)
}

// TestFlowBase: GET /v2/ answers 401 to anonymous clients whether or not
// anonymous pulls are allowed (docker login relies on it), and 200 to
// valid credentials.
func TestFlowBase(t *testing.T) {
	t.Parallel()
	for _, anon := range []bool{true, false} {
		fs := newFlowServer(t, newAuth(t, Config{AnonymousPull: anon}))
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			r := fs.do(t, method, "/v2/", "")
			if method == http.MethodGet {
				r.wantUnauthorized(t, "anonymous GET /v2/", fs.challenge("", ""), "authentication required")
			} else {
				r.wantStatus(t, "anonymous HEAD /v2/", http.StatusUnauthorized)
				if c := r.header.Get("WWW-Authenticate"); c != fs.challenge("", "") {
					t.Errorf("anonymous HEAD /v2/: challenge %q", c)
				}
			}
		}
		r := fs.do(t, http.MethodGet, "/v2/", basic("alice", "alice-pw"))
		r.wantStatus(t, "GET /v2/ with Basic", http.StatusOK)
		if r.body != "{}" {
			t.Errorf("GET /v2/ with Basic: body %q, want {}", r.body)
		}
		fs.do(t, http.MethodGet, "/v2/", basic("alice", "bad")).
			wantUnauthorized(t, "GET /v2/ with a bad password", fs.challenge("", ""), "invalid username or password")
		fs.do(t, http.MethodGet, "/v2/", basic("nobody", "alice-pw")).
			wantUnauthorized(t, "GET /v2/ with an unknown user", fs.challenge("", ""), "invalid username or password")
		// A token (any scope, even none) logs in too.
		tr := fs.tokenGet(t, basic("alice", "alice-pw")).token(t)
		if tr.Scope != "" {
			t.Errorf("token without scopes: scope %q", tr.Scope)
		}
		fs.do(t, http.MethodGet, "/v2/", "Bearer "+tr.Token).wantStatus(t, "GET /v2/ with a token", http.StatusOK)
		// What docker login does: ping, then authenticate through the token flow.
		if _, err := transport.NewWithContext(t.Context(), fs.ref(t, "x:y").Context().Registry,
			&authn.Basic{Username: "alice", Password: "alice-pw"}, http.DefaultTransport, nil); err != nil {
			t.Errorf("anonymous pull %v: client login: %v", anon, err)
		}
		_, err := transport.NewWithContext(t.Context(), fs.ref(t, "x:y").Context().Registry,
			&authn.Basic{Username: "alice", Password: "bad"}, http.DefaultTransport, nil)
		wantClientError(t, "client login with a bad password", err, http.StatusUnauthorized, "UNAUTHORIZED")
	}
}

const flowACL = `
access:
  - user: ci
    repositories: ["team/**"]
    actions: [pull, push, delete]
  - user: reader
    repositories: ["team/**"]
    actions: [pull]
  - user: reader
    repositories: ["mine/*"]
    actions: [pull, push]
`

// TestFlowACL: an ACL that lets reader pull team/** and push mine/*.
func TestFlowACL(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{AnonymousPull: true, ACL: writeFile(t, "acl.yaml", flowACL)})
	fs := newFlowServer(t, a)
	img, want := randomImage(t)
	if err := push(fs.ref(t, "team/app:v1"), img, creds("ci")); err != nil {
		t.Fatalf("push as ci: %v", err)
	}

	// reader pulls team/app, through the client and with Basic.
	if got, err := pullDigest(t, fs.ref(t, "team/app:v1"), creds("reader")); err != nil || got != want {
		t.Fatalf("reader pulls team/app: %s, %v; want %s", got, err, want)
	}
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", basic("reader", "reader-pw")).
		wantStatus(t, "reader GET team/app with Basic", http.StatusOK)

	// reader may not push team/app: 403 DENIED from the client...
	img2, want2 := randomImage(t)
	err := push(fs.ref(t, "team/app:v2"), img2, creds("reader"))
	wantClientError(t, "reader pushes team/app", err, http.StatusForbidden, "DENIED")
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v2", "").wantStatus(t, "GET the refused tag", http.StatusNotFound)
	// ...and from raw requests, with Basic and with a token.
	deniedPush := `access denied: user "reader" may not push repository "team/app"`
	fs.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", basic("reader", "reader-pw")).
		wantDenied(t, "reader POST upload with Basic", deniedPush)
	fs.do(t, http.MethodPut, "/v2/team/app/manifests/v2", basic("reader", "reader-pw")).
		wantDenied(t, "reader PUT manifest with Basic", deniedPush)
	fs.do(t, http.MethodDelete, "/v2/team/app/manifests/"+want.String(), basic("reader", "reader-pw")).
		wantDenied(t, "reader DELETE with Basic", `access denied: user "reader" may not delete repository "team/app"`)
	// The token endpoint grants less than asked instead of refusing.
	tr := fs.tokenGet(t, basic("reader", "reader-pw"), "repository:team/app:pull,push").token(t)
	if tr.Scope != "repository:team/app:pull" {
		t.Fatalf("reader's token for team/app:pull,push: scope %q, want repository:team/app:pull", tr.Scope)
	}
	fs.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", "Bearer "+tr.Token).
		wantDenied(t, "reader POST upload with a pull token", deniedPush)
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "Bearer "+tr.Token).
		wantStatus(t, "reader GET with a pull token", http.StatusOK)

	// reader pushes and pulls mine/app.
	ref := fs.ref(t, "mine/app:v1")
	if err := push(ref, img2, creds("reader")); err != nil {
		t.Fatalf("reader pushes mine/app: %v", err)
	}
	if got, err := pullDigest(t, ref, creds("reader")); err != nil || got != want2 {
		t.Fatalf("reader pulls mine/app: %s, %v; want %s", got, err, want2)
	}
	// "mine/*" is one component: mine/a/b is not covered.
	err = push(fs.ref(t, "mine/a/b:v1"), img2, creds("reader"))
	wantClientError(t, "reader pushes mine/a/b", err, http.StatusForbidden, "DENIED")
	fs.do(t, http.MethodPost, "/v2/mine/a/b/blobs/uploads/", basic("reader", "reader-pw")).
		wantDenied(t, "reader POST upload to mine/a/b", `access denied: user "reader" may not pull repository "mine/a/b"`)
	// ci's rule does not reach mine/.
	err = push(fs.ref(t, "mine/app:v2"), img, creds("ci"))
	wantClientError(t, "ci pushes mine/app", err, http.StatusForbidden, "DENIED")
	fs.do(t, http.MethodPut, "/v2/mine/app/manifests/v2", basic("ci", "ci-pw")).
		wantDenied(t, "ci PUT manifest to mine/app", `access denied: user "ci" may not pull repository "mine/app"`)
	if got, err := pullDigest(t, ref, creds("reader")); err != nil || got != want2 {
		t.Fatalf("mine/app after ci's refused push: %s, %v; want %s", got, err, want2)
	}
	fs.do(t, http.MethodGet, "/v2/mine/app/manifests/v2", basic("reader", "reader-pw")).
		wantStatus(t, "GET the refused tag mine/app:v2", http.StatusNotFound)

	// Users and repositories without a rule.
	fs.do(t, http.MethodGet, "/v2/other/app/manifests/v1", basic("reader", "reader-pw")).
		wantDenied(t, "reader GET other/app", `access denied: user "reader" may not pull repository "other/app"`)
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", basic("alice", "alice-pw")).
		wantDenied(t, "alice GET team/app", `access denied: user "alice" may not pull repository "team/app"`)
	_, err = pullDigest(t, fs.ref(t, "team/app:v1"), creds("alice"))
	wantClientError(t, "alice pulls team/app", err, http.StatusForbidden, "DENIED")
	// Anonymous clients are not governed by the ACL.
	if got, err := pullDigest(t, fs.ref(t, "team/app:v1")); err != nil || got != want {
		t.Fatalf("anonymous pull of team/app with an ACL: %s, %v; want %s", got, err, want)
	}
	// The catalog is open to every authenticated user.
	fs.do(t, http.MethodGet, "/v2/_catalog", basic("alice", "alice-pw")).wantStatus(t, "alice lists the catalog", http.StatusOK)
}

// tamper replaces the payload of token by payload, keeping the signature.
func tamperPayload(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	p, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

// TestFlowTokenEndpoint: the token endpoint's answers, and the registry's
// answers to the tokens.
func TestFlowTokenEndpoint(t *testing.T) {
	t.Parallel()
	clk := newClock()
	secret := []byte(strings.Repeat("s", MinTokenSecret))
	a := newAuth(t, Config{AnonymousPull: true, Now: clk.Now, TokenSecret: secret})
	fs := newFlowServer(t, a)
	img, want := randomImage(t)
	if err := push(fs.ref(t, "team/app:v1"), img, creds("alice")); err != nil {
		t.Fatalf("push: %v", err)
	}
	alice := basic("alice", "alice-pw")
	pushScope := "repository:team/app:pull,push"
	upload := "/v2/team/app/blobs/uploads/"

	// GET with Basic.
	tr := fs.tokenGet(t, alice, pushScope).token(t)
	if tr.ExpiresIn != 300 {
		t.Errorf("expires_in %d, want 300", tr.ExpiresIn)
	}
	if tr.IssuedAt != "2026-03-01T12:00:00Z" {
		t.Errorf("issued_at %q, want the injected clock's 2026-03-01T12:00:00Z", tr.IssuedAt)
	}
	if tr.Scope != pushScope {
		t.Errorf("scope %q, want %q", tr.Scope, pushScope)
	}
	if tr.RefreshToken != "" {
		t.Errorf("refresh token without offline_token")
	}
	r := fs.do(t, http.MethodPost, upload, "Bearer "+tr.Token)
	r.wantStatus(t, "upload with a push token", http.StatusAccepted)
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, upload) {
		t.Errorf("upload Location %q", loc)
	}
	fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "Bearer "+tr.Token).wantStatus(t, "GET with a push token", http.StatusOK)
	// The token is for team/app only. alice may push elsewhere (no ACL), so
	// the answer is 401 asking for a token with that scope, not 403.
	fs.do(t, http.MethodPost, "/v2/team/other/blobs/uploads/", "Bearer "+tr.Token).
		wantUnauthorized(t, "upload to another repository", fs.challenge("repository:team/other:pull,push", "insufficient_scope"),
			"token does not grant repository:team/other:pull,push")

	// A pull token: reads pass, an upload gets 401 insufficient_scope
	// (the user could get a push token; see Authorize).
	pt := fs.tokenGet(t, alice, "repository:team/app:pull").token(t)
	if pt.Scope != "repository:team/app:pull" {
		t.Fatalf("pull token scope %q", pt.Scope)
	}
	r = fs.do(t, http.MethodGet, "/v2/team/app/manifests/v1", "Bearer "+pt.Token)
	r.wantStatus(t, "GET with a pull token", http.StatusOK)
	if d := r.header.Get("Docker-Content-Digest"); d != want.String() {
		t.Errorf("GET with a pull token: digest %q, want %s", d, want)
	}
	fs.do(t, http.MethodPost, upload, "Bearer "+pt.Token).
		wantUnauthorized(t, "upload with a pull token", fs.challenge(pushScope, "insufficient_scope"),
			"token does not grant repository:team/app:push")
	fs.do(t, http.MethodGet, "/v2/_catalog", "Bearer "+pt.Token).
		wantUnauthorized(t, "catalog with a repository token", fs.challenge("registry:catalog:*", "insufficient_scope"),
			"token does not grant registry:catalog:*")
	ct := fs.tokenGet(t, alice, "registry:catalog:*").token(t)
	fs.do(t, http.MethodGet, "/v2/_catalog", "Bearer "+ct.Token).wantStatus(t, "catalog with a catalog token", http.StatusOK)

	// Bad credentials at the token endpoint.
	for _, tc := range []struct{ name, auth string }{
		{"wrong password", basic("alice", "nope")},
		{"unknown user", basic("mallory", "alice-pw")},
		{"bearer", "Bearer " + tr.Token},
	} {
		r := fs.tokenGet(t, tc.auth, pushScope)
		r.wantStatus(t, "token with "+tc.name, http.StatusUnauthorized)
		if code, _ := r.code(t); code != "UNAUTHORIZED" {
			t.Errorf("token with %s: code %s", tc.name, code)
		}
		if c := r.header.Get("WWW-Authenticate"); c != `Basic realm="envreg token service"` {
			t.Errorf("token with %s: WWW-Authenticate %q", tc.name, c)
		}
		var oauth struct{ Error string }
		if err := json.Unmarshal([]byte(r.body), &oauth); err != nil || oauth.Error != "invalid_client" {
			t.Errorf("token with %s: OAuth error %q (%v), want invalid_client", tc.name, oauth.Error, err)
		}
	}
	r = fs.do(t, http.MethodGet, TokenPath+"?service=other&scope="+url.QueryEscape(pushScope), alice)
	r.wantStatus(t, "token for another service", http.StatusBadRequest)

	// Tampered tokens.
	sig := strings.LastIndexByte(tr.Token, '.') + 1
	flip := byte('A')
	if tr.Token[sig] == 'A' {
		flip = 'B'
	}
	flipped := tr.Token[:sig] + string(flip) + tr.Token[sig+1:]
	fs.do(t, http.MethodPost, upload, "Bearer "+flipped).
		wantUnauthorized(t, "flipped signature", fs.challenge(pushScope, "invalid_token"), "invalid token: bad signature")
	escalated := tamperPayload(t, pt.Token, func(m map[string]any) {
		m["access"] = []map[string]any{{"type": "repository", "name": "team/app", "actions": []string{"pull", "push"}}}
	})
	fs.do(t, http.MethodPost, upload, "Bearer "+escalated).
		wantUnauthorized(t, "pull token edited to push", fs.challenge(pushScope, "invalid_token"), "invalid token: bad signature")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) +
		tr.Token[strings.IndexByte(tr.Token, '.'):strings.LastIndexByte(tr.Token, '.')+1]
	fs.do(t, http.MethodPost, upload, "Bearer "+none).
		wantUnauthorized(t, "alg none", fs.challenge(pushScope, "invalid_token"), `invalid token: unsupported algorithm "none"`)
	// Another secret's token (another deployment) is refused.
	other := newAuth(t, Config{AnonymousPull: true, Now: clk.Now, TokenSecret: []byte(strings.Repeat("o", MinTokenSecret))})
	foreign, err := other.tokens.issueAccess("alice", "envreg",
		[]resourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}, clk.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fs.do(t, http.MethodPost, upload, "Bearer "+foreign).
		wantUnauthorized(t, "token of another secret", fs.challenge(pushScope, "invalid_token"), "invalid token: bad signature")
	// The refresh key cannot sign access tokens.
	rk, err := a.tokens.issueRefresh("alice", a.users.fingerprint("alice"), "envreg", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	fs.do(t, http.MethodPost, upload, "Bearer "+rk).
		wantUnauthorized(t, "refresh token as access token", fs.challenge(pushScope, "invalid_token"), "invalid token: bad signature")

	// POST, password grant, with a refresh token; then the refresh grant.
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"},
		"scope": {pushScope}, "service": {"envreg"}, "client_id": {"flow-test"}, "access_type": {"offline"}}
	pw := fs.tokenPost(t, form).token(t)
	if pw.Scope != pushScope || pw.ExpiresIn != 300 {
		t.Errorf("password grant: scope %q expires_in %d", pw.Scope, pw.ExpiresIn)
	}
	if pw.RefreshToken == "" {
		t.Fatal("password grant with access_type=offline: no refresh token")
	}
	fs.do(t, http.MethodPost, upload, "Bearer "+pw.Token).wantStatus(t, "upload with a password-grant token", http.StatusAccepted)
	rf := fs.tokenPost(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.RefreshToken},
		"scope": {pushScope}, "service": {"envreg"}, "client_id": {"flow-test"}}).token(t)
	if rf.Scope != pushScope {
		t.Errorf("refresh grant: scope %q", rf.Scope)
	}
	fs.do(t, http.MethodPost, upload, "Bearer "+rf.Token).wantStatus(t, "upload with a refreshed token", http.StatusAccepted)
	form.Set("password", "nope")
	r = fs.tokenPost(t, form)
	r.wantStatus(t, "password grant with a bad password", http.StatusUnauthorized)
	var oauth struct{ Error string }
	if err := json.Unmarshal([]byte(r.body), &oauth); err != nil || oauth.Error != "invalid_grant" {
		t.Errorf("password grant with a bad password: OAuth error %q (%v), want invalid_grant", oauth.Error, err)
	}

	// Expiry: valid until exp plus 30 s of leeway, not a second longer.
	fresh := fs.tokenGet(t, alice, pushScope).token(t)
	clk.Add(DefaultTokenTTL + leeway - time.Second)
	fs.do(t, http.MethodPost, upload, "Bearer "+fresh.Token).wantStatus(t, "upload just before expiry", http.StatusAccepted)
	clk.Add(time.Second)
	fs.do(t, http.MethodPost, upload, "Bearer "+fresh.Token).
		wantUnauthorized(t, "upload with an expired token", fs.challenge(pushScope, "invalid_token"), "invalid token: expired")
	fs.do(t, http.MethodGet, "/v2/", "Bearer "+fresh.Token).
		wantUnauthorized(t, "GET /v2/ with an expired token", fs.challenge("", "invalid_token"), "invalid token: expired")
	// A token issued now works again.
	fs.do(t, http.MethodPost, upload, "Bearer "+fs.tokenGet(t, alice, pushScope).token(t).Token).
		wantStatus(t, "upload with a new token", http.StatusAccepted)
}

// TestFlowLoopbackWrites: without authentication, writes only from
// loopback peers.
func TestFlowLoopbackWrites(t *testing.T) {
	t.Parallel()
	pushAccess := []registry.Access{{Type: "repository", Name: "team/app", Actions: []string{registry.ActionPull, registry.ActionPush}}}
	deleteAccess := []registry.Access{{Type: "repository", Name: "team/app", Actions: []string{registry.ActionDelete}}}
	pullAccess := []registry.Access{{Type: "repository", Name: "team/app", Actions: []string{registry.ActionPull}}}
	catalogAccess := []registry.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	req := func(remote string, header ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v2/team/app/blobs/uploads/", nil)
		r.RemoteAddr, r.Host = remote, "127.0.0.1:5000"
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	var lw LoopbackWrites

	withHost := func(r *http.Request, host string) *http.Request { r.Host = host; return r }
	for _, tc := range []struct {
		name   string
		r      *http.Request
		access []registry.Access
		why    string // a fragment of the message; default "client address <RemoteAddr>"
	}{
		{"remote push", req("203.0.113.5:1234"), pushAccess, ""},
		{"remote delete", req("203.0.113.5:1234"), deleteAccess, ""},
		{"remote push with X-Forwarded-For loopback", req("203.0.113.5:1234", "X-Forwarded-For", "127.0.0.1", "X-Real-Ip", "127.0.0.1"), pushAccess, ""},
		{"IPv4-mapped remote", req("[::ffff:203.0.113.5]:1234"), pushAccess, ""},
		{"IPv6 remote", req("[2001:db8::1]:1234"), pushAccess, ""},
		{"host name", req("localhost:1234"), pushAccess, ""},
		{"no address", req(""), pushAccess, ""},
		{"pull plus push", req("203.0.113.5:1234"), append(slices.Clone(pullAccess), catalogAccess[0], pushAccess[0]), ""},
		// A browser on this host is a loopback peer: a page it shows must
		// not write, neither through DNS rebinding nor cross-site.
		{"DNS rebinding push", withHost(req("127.0.0.1:5"), "attacker.example:5000"), pushAccess,
			`addressed to host "attacker.example:5000", which is not a loopback address or localhost`},
		{"DNS rebinding delete", withHost(req("127.0.0.1:5"), "attacker.example"), deleteAccess, `host "attacker.example"`},
		{"no Host", withHost(req("127.0.0.1:5"), ""), pushAccess, `host ""`},
		{"cross-site push", req("127.0.0.1:5", "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"), pushAccess,
			"sent by a web page of another site (Sec-Fetch-Site: cross-site)"},
		{"cross-origin push (Origin only)", req("127.0.0.1:5", "Origin", "http://localhost:8080"), pushAccess,
			"another origin (Origin: http://localhost:8080)"},
		{"same-site page on another port", req("[::1]:5", "Sec-Fetch-Site", "same-site"), deleteAccess, "Sec-Fetch-Site: same-site"},
	} {
		err := lw.Authorize(tc.r, tc.access)
		var ae *registry.AuthError
		if !errors.As(err, &ae) {
			t.Errorf("%s: got %v (%T), want a *registry.AuthError", tc.name, err, err)
			continue
		}
		if ae.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, ae.Status)
		}
		if ae.Challenge != "" {
			t.Errorf("%s: challenge %q on a 403", tc.name, ae.Challenge)
		}
		why := tc.why
		if why == "" {
			why = "client address " + tc.r.RemoteAddr
		}
		if !strings.Contains(ae.Message, "loopback") || !strings.Contains(ae.Message, why) {
			t.Errorf("%s: message %q", tc.name, ae.Message)
		}
		if len(ae.Access) != len(tc.access) {
			t.Errorf("%s: access %v, want %v", tc.name, ae.Access, tc.access)
		}
	}

	for _, tc := range []struct {
		name   string
		r      *http.Request
		access []registry.Access
	}{
		{"remote pull", req("203.0.113.5:1234"), pullAccess},
		{"remote catalog", req("203.0.113.5:1234"), catalogAccess},
		{"remote base", req("203.0.113.5:1234"), nil},
		{"remote pull and catalog", req("203.0.113.5:1234"), append(slices.Clone(pullAccess), catalogAccess[0])},
		{"IPv4 loopback push", req("127.0.0.1:5"), pushAccess},
		{"IPv6 loopback push", req("[::1]:5"), pushAccess},
		{"IPv4 loopback delete", req("127.0.0.1:5"), deleteAccess},
		{"127/8 push", req("127.8.9.10:80"), pushAccess},
		{"IPv4-mapped loopback push", req("[::ffff:127.0.0.1]:5"), pushAccess},
		{"bare loopback address", req("::1"), pushAccess},
		{"localhost", withHost(req("127.0.0.1:5"), "localhost:5000"), pushAccess},
		{"IPv6 Host", withHost(req("[::1]:5"), "[::1]:5000"), deleteAccess},
		{"same-origin page", req("127.0.0.1:5", "Origin", "http://127.0.0.1:5000", "Sec-Fetch-Site", "same-origin"), pushAccess},
		{"typed into the address bar", req("127.0.0.1:5", "Sec-Fetch-Site", "none"), deleteAccess},
		{"cross-site pull", withHost(req("127.0.0.1:5", "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"), "attacker.example"), pullAccess},
	} {
		if err := lw.Authorize(tc.r, tc.access); err != nil {
			t.Errorf("%s: %v, want allowed", tc.name, err)
		}
	}

	// The real registry on loopback: the client pushes and pulls without
	// credentials, and never meets a challenge.
	fs := newFlowServer(t, lw)
	img, want := randomImage(t)
	ref := fs.ref(t, "team/app:v1")
	if err := push(ref, img); err != nil {
		t.Fatalf("loopback push: %v", err)
	}
	if got, err := pullDigest(t, ref); err != nil || got != want {
		t.Fatalf("loopback pull: %s, %v; want %s", got, err, want)
	}
	for _, r := range fs.requests() {
		if r.path == TokenPath || r.scheme != "" {
			t.Errorf("request %+v: no token flow expected without authentication", r)
		}
	}
	r := fs.do(t, http.MethodGet, "/v2/", "")
	r.wantStatus(t, "GET /v2/ without authentication", http.StatusOK)
	if c := r.header.Get("WWW-Authenticate"); c != "" {
		t.Errorf("GET /v2/ without authentication: challenge %q", c)
	}
}
