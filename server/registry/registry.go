// Package registry serves the OCI distribution-spec v1.1
// (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md).
//
// A repository is either a stack (virtual, read-only) or an ordinary one.
// For a stack, a manifest GET by tag parses the tag into a requirement set,
// resolves it against one catalog snapshot and returns the synthesized index
// or manifest (manifestgen.Composer); a GET by digest returns a stored
// document; blobs are layers published ahead of time and the synthesized
// configs; the referrers API lists the SBOM artifact of each platform
// manifest the stack composed (manifestgen.Composer.Referrers). Any other repository behaves like any OCI registry's (push.go,
// repo.go): uploads, mounts, manifests by tag and digest, deletes, the
// referrers API; and a tag push to packages/<name> is registered as a
// package version (ingest.go).
//
// Every request is authorized first (Authorizer). Handlers return errors;
// ServeHTTP-side wrapping maps them to the spec's JSON error bodies in one
// function, ToError: domain errors are classified by server/errcode's one
// table, and this package holds its OCI column. Backends are injected as
// the small interfaces each handler needs.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages/ingest"
)

// Registry is the /v2/ API.
type Registry struct {
	catalog  catalog.Reader
	docs     catalog.Documents
	blobs    layerstore.Reader
	composer *manifestgen.Composer
	tags     tagCache
	log      *slog.Logger
	router   *mux.Router

	// The push side (nil repos: every write is UNSUPPORTED).
	repos   catalog.Repositories
	store   layerstore.Writer
	uploads uploads.Sessions
	ingest  PackageIngester
	auth    Authorizer
	// mountWithoutFrom lets a mount request without "from" link any blob
	// the store holds (distribution-spec 1.1 "automatic content
	// discovery"); off when pulls need credentials, since it would reveal
	// blobs by digest.
	mountWithoutFrom bool
	// sendfile says how blob bodies are sent (sendfile.go).
	sendfile SendfileMode
	// budget bounds the new compositions per client (nil: unlimited).
	budget *Budget
	// progress says what background publishing is under way ("": none);
	// a MANIFEST_UNKNOWN answer mentions it (WithProgress).
	progress func() string
}

// PackageIngester registers a package version pushed to
// packages/<name>:<semver> (ingest.Ingestor).
type PackageIngester interface {
	Ingest(ctx context.Context, p ingest.Push) (catalog.Release, error)
}

// Option configures a Registry.
type Option func(*Registry)

// WithProgress makes every MANIFEST_UNKNOWN answer say what background
// publishing is under way while progress returns something (a seed still
// publishing: the version asked for may come).
func WithProgress(progress func() string) Option { return func(r *Registry) { r.progress = progress } }

// WithLogger sets the logger for server-side errors (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// WithPush enables the push side: ordinary repositories recorded in repos,
// monolithic uploads written to store, upload sessions kept by up (which
// commits to the same blob store).
func WithPush(repos catalog.Repositories, store layerstore.Writer, up uploads.Sessions) Option {
	return func(r *Registry) { r.repos, r.store, r.uploads = repos, store, up }
}

// WithIngester registers pushes to packages/<name>:<semver> as package
// versions (without it, such pushes are stored as ordinary images only).
func WithIngester(in PackageIngester) Option { return func(r *Registry) { r.ingest = in } }

// WithAuthorizer sets who may do what (default: AllowAll).
func WithAuthorizer(a Authorizer) Option { return func(r *Registry) { r.auth = a } }

// WithCompositionBudget bounds the new compositions each client can make
// the server store (default: unlimited).
func WithCompositionBudget(b *Budget) Option { return func(r *Registry) { r.budget = b } }

// WithMountWithoutFrom allows or refuses mounts without a "from"
// repository (default: allowed).
func WithMountWithoutFrom(ok bool) Option { return func(r *Registry) { r.mountWithoutFrom = ok } }

// New returns the /v2/ API over the given catalog, documents, blobs and composer.
func New(cat catalog.Reader, docs catalog.Documents, blobs layerstore.Reader, composer *manifestgen.Composer, opts ...Option) *Registry {
	reg := &Registry{catalog: cat, docs: docs, blobs: blobs, composer: composer, log: slog.Default(),
		auth: AllowAll{}, mountWithoutFrom: true}
	for _, o := range opts {
		o(reg)
	}
	reg.router = mux.NewRouter().SkipClean(true)
	reg.Register(reg.router)
	reg.router.NotFoundHandler = http.HandlerFunc(NotFound)
	reg.router.MethodNotAllowedHandler = http.HandlerFunc(MethodNotAllowed)
	return reg
}

// ServeHTTP serves the /v2/ API alone (tests, embedding).
func (reg *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) { reg.router.ServeHTTP(w, r) }

// Register adds the /v2/ API to r, as one route for the prefix: the
// registry routes its paths itself (route.go).
func (reg *Registry) Register(r *mux.Router) {
	r.PathPrefix("/v2/").HandlerFunc(reg.dispatch)
}

// access is what a request needs: pull for reads, push (and pull, as
// Docker clients ask) for writes, delete for DELETE; pull on the source
// repository of a mount; the registry catalog for /v2/_catalog; nothing
// for the base endpoint.
func access(r *http.Request) []Access {
	name := vars(r).name
	if name == "" {
		if strings.HasSuffix(r.URL.Path, "/_catalog") {
			return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
		}
		return nil
	}
	var actions []string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if vars(r).uuid != "" {
			actions = []string{ActionPull, ActionPush} // upload status
		} else {
			actions = []string{ActionPull}
		}
	case http.MethodDelete:
		if vars(r).uuid != "" {
			actions = []string{ActionPull, ActionPush} // cancel an upload
		} else {
			actions = []string{ActionDelete}
		}
	default:
		actions = []string{ActionPull, ActionPush}
	}
	out := []Access{{Type: "repository", Name: name, Actions: actions}}
	if from := r.URL.Query().Get("from"); from != "" && r.Method == http.MethodPost && from != name {
		out = append(out, Access{Type: "repository", Name: from, Actions: []string{ActionPull}})
	}
	return out
}

// serve runs a handler that returns an error. The request is first
// authorized; the error is mapped once, logged once (with the request id
// the server middleware put in the response headers) and written as the
// spec's error body.
func (reg *Registry) serve(w http.ResponseWriter, r *http.Request, h func(*Registry, http.ResponseWriter, *http.Request) error) {
	err := reg.auth.Authorize(r, access(r))
	if err == nil {
		err = h(reg, w, r)
	}
	if err == nil {
		return
	}
	e := ToError(err)
	if e == nil {
		reg.log.Debug("client went away", "method", r.Method, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"), "err", err)
		return
	}
	if e.ErrorCode == CodeManifestUnknown && reg.progress != nil {
		if p := reg.progress(); p != "" {
			e.Message += " (still publishing: " + p + ")"
		}
	}
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	reg.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path,
		"status", e.Status, "code", e.Code, "request_id", w.Header().Get("X-Request-Id"), "err", err)
	writeError(w, r, e)
}

// NotFound answers routes that do not exist with the spec's error body.
func NotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, newError(CodeNameUnknown, "no such route or repository: "+r.URL.Path, nil))
}

// MethodNotAllowed answers methods a route does not have.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, newError(CodeUnsupported, fmt.Sprintf("%s %s is not supported", r.Method, r.URL.Path), nil))
}

// readOnly is the answer to a write to a virtual repository (a stack).
func readOnly(r *http.Request, name string) error {
	return &Error{ErrorCode: CodeUnsupported, Message: fmt.Sprintf(
		"%s %s is not supported: %s is a virtual repository (a stack); its images are composed from the package catalog and cannot be pushed or deleted",
		r.Method, r.URL.Path, name), header: http.Header{"Allow": {"GET, HEAD"}}}
}

// base answers GET /v2/ (end-1 of the spec).
func (reg *Registry) base(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "{}")
	}
	return nil
}

// lookup returns the snapshot and, when the repository named in the
// route is a stack, the stack and virtual=true. Any other name is an
// ordinary repository when the push side is on, else NAME_UNKNOWN.
func (reg *Registry) lookup(r *http.Request) (snap *catalog.Snapshot, st catalog.Stack, virtual bool, err error) {
	name := vars(r).name
	snap, err = reg.catalog.Snapshot(r.Context())
	if err != nil {
		return nil, catalog.Stack{}, false, fmt.Errorf("reading catalog: %w", err)
	}
	if st, ok := snap.Stack(name); ok {
		return snap, st, true, nil
	}
	if reg.repos == nil {
		return nil, catalog.Stack{}, false, &nameUnknownError{name: name}
	}
	if err := catalog.ValidateRepository(name); err != nil {
		return nil, catalog.Stack{}, false, &Error{ErrorCode: CodeNameInvalid, Message: err.Error(), cause: err}
	}
	return snap, catalog.Stack{}, false, nil
}

// getManifest serves GET/HEAD /v2/<stack>/manifests/<reference> (end-3)
// of a virtual repository.
func (reg *Registry) getManifest(w http.ResponseWriter, r *http.Request, snap *catalog.Snapshot, st catalog.Stack) error {
	ref := vars(r).reference
	if strings.Contains(ref, ":") {
		d, err := digest.Parse(ref)
		if err != nil {
			return err
		}
		if err := reg.stackServes(r, snap, st.Name, d, CodeManifestUnknown); err != nil {
			return err
		}
		doc, err := reg.docs.Document(r.Context(), d)
		if errors.Is(err, catalog.ErrNotFound) {
			return &manifestUnknownError{reference: ref}
		}
		if err != nil {
			return fmt.Errorf("reading manifest %s: %w", d, err)
		}
		writeDocument(w, r, doc.MediaType, doc.Digest, doc.Data)
		return nil
	}

	req, err := reg.tags.parse(snap, st, ref)
	if err != nil {
		return err
	}
	want := negotiate(r.Header.Values("Accept"))
	ctx := r.Context()
	if admit := reg.budget.admission(r); admit != nil {
		ctx = manifestgen.WithAdmission(ctx, admit)
	}
	img, err := reg.composer.Compose(ctx, snap, st, req, want.format)
	if err != nil {
		return err
	}
	b := img.Index
	if !want.index {
		b = defaultManifest(img)
	}
	writeDocument(w, r, b.Descriptor.MediaType, b.Descriptor.Digest, b.Data)
	return nil
}

// stackServes returns nil when stack serves d (manifestgen.Composer.Serves),
// else the spec's "unknown" error with code (BLOB_UNKNOWN or
// MANIFEST_UNKNOWN): whether another repository holds d is not the
// stack's to tell.
func (reg *Registry) stackServes(r *http.Request, snap *catalog.Snapshot, stack string, d digest.Digest, code ErrorCode) error {
	if err := layerstoreDigest(d); err != nil {
		return err
	}
	ok, err := reg.composer.Serves(r.Context(), snap, stack, d)
	if err != nil {
		return err
	}
	if !ok {
		if code == CodeManifestUnknown {
			return &manifestUnknownError{reference: stack + "@" + d.String()}
		}
		return &Error{ErrorCode: CodeBlobUnknown, Message: fmt.Sprintf("blob %s unknown to repository %s", d, stack)}
	}
	return nil
}

// defaultManifest is what a client that cannot read an index gets: the
// linux/amd64 manifest, or the first platform's when there is none.
func defaultManifest(img *manifestgen.Image) manifestgen.Blob {
	for _, m := range img.Manifests {
		if p := m.Descriptor.Platform; p != nil && p.OS == "linux" && p.Architecture == "amd64" {
			return m
		}
	}
	return img.Manifests[0]
}

// writeDocument sets every header before the status line; HEAD gets the
// same headers as GET.
func writeDocument(w http.ResponseWriter, r *http.Request, mediaType string, d digest.Digest, data []byte) {
	h := w.Header()
	h.Set("Content-Type", mediaType)
	h.Set("Content-Length", itoa(len(data)))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	if match := r.Header.Get("If-None-Match"); match != "" && match == h.Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// wanted is the outcome of content negotiation.
type wanted struct {
	format manifestgen.Format
	index  bool
}

// negotiate picks the document type from the Accept headers (parsed with
// mime.ParseMediaType; a type with q=0 is refused). OCI is preferred: Docker
// schema2 is served only to a client that accepts no OCI manifest type. A
// client that accepts no index type gets a single manifest, and one that
// lists no manifest type at all (curl) gets the OCI index.
func negotiate(accept []string) wanted {
	var types []string
	for _, header := range accept {
		for _, v := range strings.Split(header, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(v))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
					continue
				}
			}
			types = append(types, mt)
		}
	}
	has := func(t string) bool { return slices.Contains(types, t) }
	switch {
	case has(ocispec.MediaTypeImageIndex):
		return wanted{manifestgen.FormatOCI, true}
	case has(ocispec.MediaTypeImageManifest):
		return wanted{manifestgen.FormatOCI, false}
	case has(manifestgen.MediaTypeDockerManifestList):
		return wanted{manifestgen.FormatDocker, true}
	case has(manifestgen.MediaTypeDockerManifest):
		return wanted{manifestgen.FormatDocker, false}
	default:
		return wanted{manifestgen.FormatOCI, true}
	}
}

// getBlob serves GET/HEAD /v2/<name>/blobs/<digest> (end-2) once the
// repository is known to hold d. GET may be redirected when the blob
// store can hand out URLs.
func (reg *Registry) getBlob(w http.ResponseWriter, r *http.Request, d digest.Digest) error {
	if rd, ok := reg.blobs.(layerstore.Redirector); ok && r.Method == http.MethodGet {
		u, err := rd.RedirectURL(r.Context(), d)
		if err != nil {
			return err
		}
		if u != "" {
			http.Redirect(w, r, u, http.StatusTemporaryRedirect)
			return nil
		}
	}
	rc, size, err := reg.blobs.Open(r.Context(), d)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	// Blobs are immutable: let caches keep them.
	h.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers HEAD, Range (206, multipart, 416) and
	// If-None-Match the same way for every blob.
	http.ServeContent(w, r, "", zeroTime, reg.blobBody(r, rc, size))
	return nil
}

// listTags serves GET /v2/<name>/tags/list (end-8a/8b). A virtual
// repository lists "latest" and one tag per published package version,
// "<name>-<version>" (build metadata dropped, since '+' is not allowed in
// tags), sorted lexically, paginated with n and last.
func (reg *Registry) listTags(w http.ResponseWriter, r *http.Request) error {
	snap, st, virtual, err := reg.lookup(r)
	if err != nil {
		return err
	}
	if !virtual {
		return reg.listRepoTags(w, r)
	}
	tags := []string{"latest"}
	for _, name := range snap.Names() {
		for _, rel := range snap.Releases(name) {
			if rel.Yanked {
				continue // never resolved by a tag any more
			}
			v := *rel.Version
			v, _ = v.SetMetadata("")
			tags = append(tags, name+"-"+v.String())
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	page, next, err := paginate(r.URL.Query(), tags)
	if err != nil {
		return err
	}
	body := struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{st.Name, page}
	return writeJSONList(w, r, body, next, "/v2/"+st.Name+"/tags/list")
}

// listReferrers serves GET /v2/<name>/referrers/<digest> (end-12a/12b).
// In a stack, a platform manifest it composed has one referrer, its SBOM
// artifact (manifestgen.Composer.Referrers, stored before it is named
// here); anything else has none, which the spec answers with an empty
// index rather than 404. An artifactType filter is applied and
// acknowledged with OCI-Filters-Applied.
func (reg *Registry) listReferrers(w http.ResponseWriter, r *http.Request) error {
	snap, st, virtual, err := reg.lookup(r)
	if err != nil {
		return err
	}
	d, err := digest.Parse(vars(r).digest)
	if err != nil {
		return err
	}
	if !virtual {
		return reg.listRepoReferrers(w, r, d)
	}
	if err := layerstoreDigest(d); err != nil {
		return err
	}
	refs, err := reg.composer.Referrers(r.Context(), snap, st.Name, d, reg.blobs)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, ref := range refs {
		if filter == "" || ref.ArtifactType == filter {
			idx.Manifests = append(idx.Manifests, ref)
		}
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, idx)
}

// listRepositories serves GET /v2/_catalog: the stacks.
func (reg *Registry) listRepositories(w http.ResponseWriter, r *http.Request) error {
	snap, err := reg.catalog.Snapshot(r.Context())
	if err != nil {
		return fmt.Errorf("reading catalog: %w", err)
	}
	var names []string
	for _, st := range snap.Stacks() {
		names = append(names, st.Name)
	}
	if reg.repos != nil {
		repos, err := reg.repos.RepositoryNames(r.Context())
		if err != nil {
			return fmt.Errorf("listing repositories: %w", err)
		}
		names = append(names, repos...)
		slices.Sort(names)
		names = slices.Compact(names)
	}
	page, next, err := paginate(r.URL.Query(), names)
	if err != nil {
		return err
	}
	body := struct {
		Repositories []string `json:"repositories"`
	}{page}
	return writeJSONList(w, r, body, next, "/v2/_catalog")
}

// paginate applies the spec's n and last parameters to a sorted list. next
// is the last element of the page when more follow.
func paginate(q url.Values, all []string) (page []string, next string, err error) {
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return nil, "", newError(CodeBadRequest, fmt.Sprintf("invalid n=%q: want a number >= 0", ns), nil)
		}
		if n < len(all) {
			page = all[:n]
			if n > 0 {
				next = page[n-1]
			}
			return nonNil(page), next, nil
		}
	}
	return nonNil(all), "", nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
