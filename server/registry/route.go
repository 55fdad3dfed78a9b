package registry

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/envreg/envreg/catalog"
)

// Routing of /v2/. The routes are the distribution-spec's endpoints:
//
//	/v2/                                   GET HEAD
//	/v2/_catalog                           GET HEAD
//	/v2/<name>/blobs/uploads/              POST
//	/v2/<name>/blobs/uploads               POST
//	/v2/<name>/blobs/uploads/<uuid>        GET PATCH PUT DELETE
//	/v2/<name>/manifests/<reference>       GET HEAD PUT DELETE
//	/v2/<name>/blobs/<digest>              GET HEAD DELETE
//	/v2/<name>/tags/list                   GET HEAD
//	/v2/<name>/referrers/<digest>          GET HEAD
//
// <name> is a repository name (catalog.ValidRepositoryName); <uuid>,
// <reference> and <digest> are one non-empty path segment. Routes are
// matched by splitting the path, in the order above: the first route whose path and method match serves; a path
// that matches only with other methods is 405, any other is 404. That is
// what gorilla/mux did with one regular expression per route, which was
// about half of a warm manifest GET's CPU (the name grammar backtracks, and
// mux runs each route's expression again to extract the variables).

// routeVars are the variables of a matched route ("" when the route has none).
type routeVars struct {
	name, reference, digest, uuid string
}

type varsKey struct{}

// vars returns the variables of the route that is serving r.
func vars(r *http.Request) routeVars {
	v, _ := r.Context().Value(varsKey{}).(*routeVars)
	if v == nil {
		return routeVars{}
	}
	return *v
}

// route is one endpoint: match splits the path after "/v2/".
type route struct {
	methods []string
	match   func(rest string) (routeVars, bool)
	serve   func(*Registry, http.ResponseWriter, *http.Request) error
}

var (
	getHead = []string{http.MethodGet, http.MethodHead}
	routes  = []route{
		{getHead, exact(""), (*Registry).base},
		{getHead, exact("_catalog"), (*Registry).listRepositories},
		{[]string{http.MethodPost}, suffix("/blobs/uploads/"), (*Registry).startUpload},
		{[]string{http.MethodPost}, suffix("/blobs/uploads"), (*Registry).startUpload},
		{[]string{http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete},
			segment("/blobs/uploads/", func(v *routeVars, s string) { v.uuid = s }), (*Registry).upload},
		{[]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
			segment("/manifests/", func(v *routeVars, s string) { v.reference = s }), (*Registry).manifest},
		{[]string{http.MethodGet, http.MethodHead, http.MethodDelete},
			segment("/blobs/", func(v *routeVars, s string) { v.digest = s }), (*Registry).blob},
		{getHead, suffix("/tags/list"), (*Registry).listTags},
		{getHead, segment("/referrers/", func(v *routeVars, s string) { v.digest = s }), (*Registry).listReferrers},
	}
)

// exact matches one fixed path.
func exact(p string) func(string) (routeVars, bool) {
	return func(rest string) (routeVars, bool) { return routeVars{}, rest == p }
}

// suffix matches <name><s>.
func suffix(s string) func(string) (routeVars, bool) {
	return func(rest string) (routeVars, bool) {
		name, ok := strings.CutSuffix(rest, s)
		if !ok || !catalog.ValidRepositoryName(name) {
			return routeVars{}, false
		}
		return routeVars{name: name}, true
	}
}

// segment matches <name><s><last>, where last is one non-empty segment.
func segment(s string, set func(*routeVars, string)) func(string) (routeVars, bool) {
	return func(rest string) (routeVars, bool) {
		i := strings.LastIndexByte(rest, '/')
		if i < 0 || i == len(rest)-1 {
			return routeVars{}, false
		}
		name, ok := strings.CutSuffix(rest[:i+1], s)
		if !ok || !catalog.ValidRepositoryName(name) {
			return routeVars{}, false
		}
		v := routeVars{name: name}
		set(&v, rest[i+1:])
		return v, true
	}
}

// dispatch serves every path under /v2/, as the client sent it: routes are
// matched on the escaped path, never on a cleaned one (the router's path
// cleaning answered dot segments with a redirect to another resource), so
// "sha256:..%2F..%2Fetc%2Fpasswd" is one digest segment, which is invalid.
func (reg *Registry) dispatch(w http.ResponseWriter, r *http.Request) {
	i, v, status := matchRoute(r.Method, r.URL.EscapedPath())
	v.reference, v.digest, v.uuid = unescape(v.reference), unescape(v.digest), unescape(v.uuid)
	switch status {
	case http.StatusOK:
		r = r.WithContext(context.WithValue(r.Context(), varsKey{}, &v))
		reg.serve(w, r, routes[i].serve)
	case http.StatusMethodNotAllowed:
		MethodNotAllowed(w, r)
	default:
		NotFound(w, r)
	}
}

// unescape decodes a segment, unless it is malformed or would decode to
// more than one segment: then it stays as sent and fails as what it is
// (an invalid digest, tag or upload id).
func unescape(seg string) string {
	u, err := url.PathUnescape(seg)
	if err != nil || strings.Contains(u, "/") {
		return seg
	}
	return u
}

// matchRoute returns the index in routes of the route that serves method
// and path, and its variables; else 405 or 404.
func matchRoute(method, path string) (int, routeVars, int) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return -1, routeVars{}, http.StatusNotFound
	}
	status := http.StatusNotFound
	for i := range routes {
		v, ok := routes[i].match(rest)
		if !ok {
			continue
		}
		if slices.Contains(routes[i].methods, method) {
			return i, v, http.StatusOK
		}
		status = http.StatusMethodNotAllowed
	}
	return -1, routeVars{}, status
}
