package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/server/peer"
	"github.com/envreg/envreg/server/registry"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// MaxBodyBytes bounds request bodies (http.MaxBytesReader): a requirement
// set is a few hundred bytes, so 1 MiB is generous and still cheap to
// refuse.
const MaxBodyBytes = 1 << 20

// API is the /api/v1 provisioning API.
type API struct {
	catalog  catalog.Reader
	docs     catalog.Documents
	composer *manifestgen.Composer
	log      *slog.Logger
	auth     Authorizer  // nil: loopback clients only
	router   *mux.Router // the API alone, for ServeHTTP
}

// Authorizer decides whether a request may have access, with the
// registry's users, tokens and ACL (auth.Auth). The API asks for
// registry:catalog:* to list stacks and packages, read a package, the
// OpenAPI document and the catalog page, and repository:STACK:pull to read
// a stack or resolve against it (and against the stack of a "from"
// image). A resolve pins what it composes for good, so it asks
// AuthorizeUser: a user, never an anonymous client, even while anonymous
// pull is on. Both return nil or a *registry.AuthError.
type Authorizer interface {
	Authorize(r *http.Request, access []registry.Access) error
	AuthorizeUser(r *http.Request, access []registry.Access) error
}

// Option configures an API.
type Option func(*API)

// WithLogger sets the logger for failed requests (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// WithAuthorizer authorizes every route with az, once authentication is
// configured. Without it the API answers only loopback clients that
// address it as this host and are not a web page of another origin
// (LoopbackOnly).
func WithAuthorizer(az Authorizer) Option { return func(a *API) { a.auth = az } }

// New returns the API over cat (snapshots), docs (stored indexes, read for
// "from") and composer (which stores what a resolve pins).
func New(cat catalog.Reader, docs catalog.Documents, composer *manifestgen.Composer, opts ...Option) *API {
	a := &API{catalog: cat, docs: docs, composer: composer, log: slog.Default()}
	for _, o := range opts {
		o(a)
	}
	a.router = mux.NewRouter()
	a.Register(a.router)
	return a
}

// The access each route needs once authentication is configured, and
// whether it needs a user (it pins: see Authorizer).
type need func(*http.Request) (access []registry.Access, user bool)

var catalogAccess = []registry.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}

func readCatalog(*http.Request) ([]registry.Access, bool) { return catalogAccess, false }

func pullAccess(stack string) registry.Access {
	return registry.Access{Type: "repository", Name: stack, Actions: []string{registry.ActionPull}}
}

func readStack(r *http.Request) ([]registry.Access, bool) {
	return []registry.Access{pullAccess(mux.Vars(r)["stack"])}, false
}

func resolveStack(r *http.Request) ([]registry.Access, bool) {
	return []registry.Access{pullAccess(mux.Vars(r)["stack"])}, true
}

// pageAccess: the catalog; when the form was sent, pull on the stack, by a
// user (the page's resolve pins, as the API's).
func pageAccess(r *http.Request) ([]registry.Access, bool) {
	q := r.URL.Query()
	if !q.Has("requirements") {
		return catalogAccess, false
	}
	stack := q.Get("stack")
	if stack == "" {
		stack = catalog.DefaultStackName
	}
	return append(slices.Clone(catalogAccess), pullAccess(stack)), true
}

// Register mounts the API under Prefix on r, as a subrouter with its own
// JSON 404 and 405 answers, so that nothing under /api/v1 ever answers with
// the registry's OCI error body, and the catalog pages: "/" and
// "/packages/{name}".
func (a *API) Register(r *mux.Router) {
	r.Handle("/", a.guard(a.page, pageAccess, pageView)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/packages/{name}", a.guard(a.packagePage, readCatalog, onlyViews)).Methods(http.MethodGet, http.MethodHead)
	sub := r.PathPrefix(Prefix).Subrouter()
	var (
		paths   []string
		methods = map[string][]string{}
	)
	route := func(method, path string, h func(http.ResponseWriter, *http.Request) error, n need) {
		sub.Handle(path, a.guard(h, n, nil)).Methods(method)
		if _, ok := methods[path]; !ok {
			paths = append(paths, path)
		}
		methods[path] = append(methods[path], method)
	}
	route(http.MethodGet, "/openapi.yaml", a.openAPI, readCatalog)
	route(http.MethodGet, "/stacks", a.listStacks, readCatalog)
	route(http.MethodGet, "/stacks/{stack}", a.getStack, readStack)
	route(http.MethodPost, "/stacks/{stack}/resolve", a.resolve, resolveStack)
	route(http.MethodGet, "/packages", a.listPackages, readCatalog)
	route(http.MethodGet, "/packages/{name}", a.getPackage, readCatalog)
	route(http.MethodGet, "/packages/{name}/{version}/sbom", a.getPackageSBOM, readCatalog)
	// Other methods on a known path: 405. These routes come after every
	// method route and match any method, because mux (1.8) loses a method
	// mismatch inside a subrouter when a later route's prefix matches.
	for _, path := range paths {
		allow := strings.Join(methods[path], ", ")
		sub.Handle(path, a.guard(func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", allow)
			return newError(CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; use "+allow, nil, nil)
		}, readCatalog, nil))
	}
	sub.NotFoundHandler = a.guard(func(w http.ResponseWriter, r *http.Request) error {
		return newError(CodeNotFound, "no such API route: "+r.Method+" "+r.URL.Path+" (see "+Prefix+"/openapi.yaml)", nil, nil)
	}, readCatalog, nil)
}

// guard wraps h with the access check: with an Authorizer, the access
// n(r) names; without one, the loopback rule (checkLocal), where a
// request that view(r) reports as only viewing the page may come from a
// link on another site.
func (a *API) guard(h func(http.ResponseWriter, *http.Request) error, n need, view func(*http.Request) bool) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		if a.auth != nil {
			access, user := n(r)
			authorize := a.auth.Authorize
			if user {
				authorize = a.auth.AuthorizeUser
			}
			if err := authorize(r, access); err != nil {
				return err
			}
			return h(w, r)
		}
		if err := checkLocal(r, view != nil && view(r)); err != nil {
			return err
		}
		return h(w, r)
	})
}

// pageView reports whether a request of the catalog page only views it:
// it sends no requirements, so it stores nothing.
func pageView(r *http.Request) bool { return !r.URL.Query().Has("requirements") }

// onlyViews: a package page stores nothing, whatever it is sent.
func onlyViews(*http.Request) bool { return true }

// ServeHTTP serves the API alone on a router of its own (tests, embedding).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// handle adapts a handler that returns an error. The error is mapped once
// (ToError), logged once with the request id, and written as JSON with the
// request id in the body too.
func (a *API) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(w, r)
		err := h(w, r)
		if err == nil {
			return
		}
		e := ToError(err)
		if e == nil {
			a.log.Debug("client went away", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
			return
		}
		level := slog.LevelInfo
		if e.Status >= 500 {
			level = slog.LevelError
		}
		a.log.Log(r.Context(), level, "api request failed", "method", r.Method, "path", r.URL.Path,
			"status", e.Status, "code", e.Code, "request_id", id, "remote", r.RemoteAddr, "err", err)
		writeError(w, e, id)
	})
}

// requestID returns the id the server middleware put in the response
// headers, or makes one when the API is served alone.
func requestID(w http.ResponseWriter, r *http.Request) string {
	if id := w.Header().Get("X-Request-Id"); id != "" {
		return id
	}
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	return id
}

func writeError(w http.ResponseWriter, e *Error, id string) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	body := *e
	body.RequestID = id
	writeJSON(w, e.Status, &body)
}

// writeJSON sets every header, then the status, then writes v as JSON
// (without HTML escaping: messages such as "php <8.2" stay readable).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var data []byte
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"status":500,"code":"INTERNAL","message":"internal server error"}` + "\n")
	} else {
		data = buf.Bytes()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// decodeBody reads one JSON object of at most MaxBodyBytes into v. Unknown
// fields, trailing data and a body that is not JSON are bad requests; an
// oversized body is a *http.MaxBytesError (413).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json") {
			return newError(CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json", ct), nil, err)
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return err
		case errors.Is(err, io.EOF):
			return badRequest(err, "empty request body: send a JSON object")
		}
		return badRequest(err, "invalid JSON body: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest(err, "invalid JSON body: data after the first JSON value")
	}
	return nil
}

// LoopbackOnly is the API's access check while envreg has no
// authentication configured: it answers 403 unless the request comes from
// this host (peer.Local: a loopback TCP peer, never X-Forwarded-For, that
// addresses the server as a loopback address or localhost, so that a web
// page cannot reach it through DNS rebinding) and not from a web page of
// another origin (peer.SameOrigin: Origin, Sec-Fetch-Site). A reverse
// proxy on the same host makes every client look local, so do not put one
// in front of the API without authentication.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkLocal(r, false); err != nil {
			writeError(w, ToError(err), requestID(w, r))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkLocal is LoopbackOnly's rule; crossSiteOK skips peer.SameOrigin
// (for viewing the catalog page from a link).
func checkLocal(r *http.Request, crossSiteOK bool) error {
	err := peer.Local(r)
	if err == nil && !crossSiteOK {
		err = peer.SameOrigin(r)
	}
	if err != nil {
		return newError(CodeForbidden,
			"the provisioning API and the catalog page answer loopback clients only while no authentication is configured (--auth-htpasswd): "+err.Error(), nil, err)
	}
	return nil
}
