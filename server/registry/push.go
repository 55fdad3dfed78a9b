package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/manifestgen"
)

// The push side of the distribution-spec (end-4a to end-11, end-12).

// MaxManifestSize bounds a pushed manifest or index (as distribution does).
const MaxManifestSize = 4 << 20

// writable returns the ordinary repository a write goes to, refusing
// writes to stacks and to a registry without a push side.
func (reg *Registry) writable(r *http.Request) (string, error) {
	_, _, virtual, err := reg.lookup(r)
	name := vars(r).name
	if err != nil {
		var unknown *nameUnknownError
		if errors.As(err, &unknown) && reg.repos == nil {
			return "", &Error{ErrorCode: CodeUnsupported, Message: fmt.Sprintf(
				"%s %s is not supported: this registry serves composed images only (push is disabled)", r.Method, r.URL.Path)}
		}
		return "", err
	}
	if virtual {
		return "", readOnly(r, name)
	}
	return name, nil
}

// clientBody records why reading a request body failed, so that a client
// that goes away or stalls mid-body (a 400, logged at info level) is told
// apart from a storage failure (a 500) when the copy that read it fails.
type clientBody struct {
	r   io.Reader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// blame returns err, or a 400 BLOB_UPLOAD_INVALID saying that the client
// did not send the body (what names it) when reading it is what failed.
func (b *clientBody) blame(err error, what string) error {
	if err == nil || b.err == nil {
		return err
	}
	return &Error{ErrorCode: CodeBlobUploadInvalid, Message: what + ": " + bodyFailure(b.err), cause: err}
}

// bodyFailure says in words why a request body could not be read.
func bodyFailure(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "the client sent no data for too long (the server's --stall-timeout or --body-timeout)"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the client closed the connection before the end of the body"
	default:
		return "the request body could not be read: " + err.Error()
	}
}

// uploadRange is the Range header of an upload holding size bytes:
// "0-<last byte>", and "0-0" while it is empty (as distribution sends).
func uploadRange(size int64) string {
	if size > 0 {
		size--
	}
	return "0-" + strconv.FormatInt(size, 10)
}

// uploadAccepted answers 202 with the session's location and progress.
func uploadAccepted(w http.ResponseWriter, name, id string, size int64, status int) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	h.Set("Range", uploadRange(size))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// blobCreated answers 201 for a blob that is now in the repository.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// queryDigest parses the digest query parameter.
func queryDigest(q url.Values, key string) (digest.Digest, error) {
	s := q.Get(key)
	if s == "" {
		return "", &Error{ErrorCode: CodeDigestInvalid, Message: "the " + key + " query parameter is required"}
	}
	d, err := digest.Parse(s)
	if err != nil {
		return "", err
	}
	if err := layerstoreDigest(d); err != nil {
		return "", err
	}
	return d, nil
}

// contentRange parses a Content-Range header "<start>-<end>" (the spec's
// form; "bytes " prefixes and "/<size>" suffixes are accepted too). It
// returns -1, -1 when there is none.
func contentRange(r *http.Request) (start, end int64, err error) {
	v := strings.TrimSpace(r.Header.Get("Content-Range"))
	if v == "" {
		return -1, -1, nil
	}
	v = strings.TrimPrefix(v, "bytes ")
	v, _, _ = strings.Cut(v, "/")
	a, b, ok := strings.Cut(v, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, &Error{ErrorCode: CodeRangeInvalid, Message: fmt.Sprintf("invalid Content-Range %q: want <start>-<end>", r.Header.Get("Content-Range"))}
	}
	if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
		return 0, 0, &Error{ErrorCode: CodeSizeInvalid, Message: fmt.Sprintf(
			"Content-Range %q covers %d bytes but Content-Length is %d", r.Header.Get("Content-Range"), end-start+1, r.ContentLength)}
	}
	return start, end, nil
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a mount
// (?mount=&from=), a monolithic upload (?digest=, the blob in the body), or
// a new session for PATCH/PUT.
func (reg *Registry) startUpload(w http.ResponseWriter, r *http.Request) error {
	name, err := reg.writable(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()

	if q.Has("mount") {
		d, err := queryDigest(q, "mount")
		if err != nil {
			return err
		}
		ok, err := reg.mountable(r, q.Get("from"), d)
		if err != nil {
			return err
		}
		if ok {
			if err := reg.repos.LinkBlob(ctx, name, d); err != nil {
				return fmt.Errorf("mounting blob %s into %s: %w", d, name, err)
			}
			blobCreated(w, name, d)
			return nil
		}
		// Not mountable: the spec says to start an ordinary upload.
	} else if q.Has("digest") {
		d, err := queryDigest(q, "digest")
		if err != nil {
			return err
		}
		body := &clientBody{r: r.Body}
		if err := reg.putBlob(r, name, d, body, r.ContentLength); err != nil {
			return body.blame(err, "blob upload")
		}
		blobCreated(w, name, d)
		return nil
	}

	s, err := reg.uploads.Start(ctx, name)
	if err != nil {
		return err
	}
	lim := reg.uploads.Limits()
	if lim.MaxSize > 0 {
		w.Header().Set("OCI-Chunk-Max-Length", strconv.FormatInt(lim.MaxSize, 10))
	}
	if lim.MinChunk > 0 {
		w.Header().Set("OCI-Chunk-Min-Length", strconv.FormatInt(lim.MinChunk, 10))
	}
	uploadAccepted(w, name, s.ID, 0, http.StatusAccepted)
	return nil
}

// mountable reports whether blob d may be linked from repository from
// (the request was authorized to pull from it): it must be linked there,
// or, when from is a stack, be something the stack serves
// (manifestgen.Composer.Serves). Without from, any stored blob is
// mountable when mountWithoutFrom is on.
func (reg *Registry) mountable(r *http.Request, from string, d digest.Digest) (bool, error) {
	ctx := r.Context()
	switch {
	case from == "":
		if !reg.mountWithoutFrom {
			return false, nil
		}
	case catalog.ValidateRepository(from) != nil:
		return false, nil
	default:
		snap, err := reg.catalog.Snapshot(ctx)
		if err != nil {
			return false, fmt.Errorf("reading catalog: %w", err)
		}
		var ok bool
		if _, isStack := snap.Stack(from); isStack {
			ok, err = reg.composer.Serves(ctx, snap, from, d)
		} else {
			ok, err = reg.repos.BlobLinked(ctx, from, d)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	if _, err := reg.blobs.Stat(ctx, d); err != nil {
		if errors.Is(err, layerstore.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("looking up blob %s: %w", d, err)
	}
	return true, nil
}

// putBlob stores a whole blob from body (verified against d) and links
// it into the repository.
func (reg *Registry) putBlob(r *http.Request, name string, d digest.Digest, body io.Reader, size int64) error {
	if max := reg.uploads.Limits().MaxSize; max > 0 {
		if size > max {
			return &Error{ErrorCode: CodeTooLarge, Message: fmt.Sprintf("blob of %d bytes exceeds the size limit of %d bytes", size, max)}
		}
		body = http.MaxBytesReader(nil, io.NopCloser(body), max)
	}
	if err := reg.store.Put(r.Context(), d, size, body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{ErrorCode: CodeTooLarge, Message: fmt.Sprintf("blob exceeds the size limit of %d bytes", tooBig.Limit), cause: err}
		}
		return err
	}
	if err := reg.repos.LinkBlob(r.Context(), name, d); err != nil {
		return fmt.Errorf("linking blob %s into %s: %w", d, name, err)
	}
	return nil
}

// upload serves GET (status), PATCH (a chunk), PUT (the last chunk and
// the digest) and DELETE (cancel) of /v2/<name>/blobs/uploads/<uuid>.
func (reg *Registry) upload(w http.ResponseWriter, r *http.Request) error {
	name, err := reg.writable(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := vars(r).uuid
	switch r.Method {
	case http.MethodGet:
		s, err := reg.uploads.Get(ctx, name, id)
		if err != nil {
			return err
		}
		uploadAccepted(w, name, id, s.Size, http.StatusNoContent)
		return nil

	case http.MethodDelete:
		if err := reg.uploads.Cancel(ctx, name, id); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil

	case http.MethodPatch:
		start, _, err := contentRange(r)
		if err != nil {
			return err
		}
		body := &clientBody{r: r.Body}
		s, err := reg.uploads.Append(ctx, name, id, uploads.Chunk{Start: start, Size: r.ContentLength, Body: body})
		if err != nil {
			return body.blame(err, "upload chunk")
		}
		uploadAccepted(w, name, id, s.Size, http.StatusAccepted)
		return nil

	default: // PUT
		d, err := queryDigest(r.URL.Query(), "digest")
		if err != nil {
			return err
		}
		start, _, err := contentRange(r)
		if err != nil {
			return err
		}
		body := &clientBody{r: r.Body}
		final := uploads.Chunk{Start: start, Size: r.ContentLength}
		if r.ContentLength != 0 {
			final.Body = body
		}
		if _, err := reg.uploads.Finish(ctx, name, id, final, d); err != nil {
			return body.blame(err, "final upload chunk")
		}
		if err := reg.repos.LinkBlob(ctx, name, d); err != nil {
			return fmt.Errorf("linking blob %s into %s: %w", d, name, err)
		}
		blobCreated(w, name, d)
		return nil
	}
}

// pushedManifest is what envreg reads of a pushed manifest or index: the
// fields of both OCI types and of Docker schema2 (which share names).
type pushedManifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// manifestTypes are the media types a manifest PUT accepts; true for the
// index types.
var manifestTypes = map[string]bool{
	ocispec.MediaTypeImageManifest:          false,
	ocispec.MediaTypeImageIndex:             true,
	manifestgen.MediaTypeDockerManifest:     false,
	manifestgen.MediaTypeDockerManifestList: true,
}

// ParseManifest parses and checks a pushed manifest or index. contentType
// is the request's Content-Type ("" to go by the document's mediaType).
// It checks structure only; whether the referenced content exists is
// checked by the caller.
func ParseManifest(contentType string, data []byte) (*pushedManifest, string, error) {
	// One JSON document and nothing else: json.Decoder.More does not see
	// a stray closing brace after it (found by FuzzParseManifest), and
	// the digest covers every byte, so trailing data must be refused.
	if !json.Valid(data) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, "", manifestInvalid("not a JSON document: %v", err)
		}
		return nil, "", manifestInvalid("not a single JSON document")
	}
	var m pushedManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, "", manifestInvalid("not a JSON document: %v", err)
	}
	if m.SchemaVersion != 2 {
		return nil, "", manifestInvalid("schemaVersion %d is not supported (want 2)", m.SchemaVersion)
	}
	mt, err := m.mediaType(contentType)
	if err != nil {
		return nil, "", err
	}
	isIndex, ok := manifestTypes[mt]
	if !ok {
		return nil, "", manifestInvalid("media type %q is not a manifest type this registry accepts (OCI image manifest or index, Docker schema2 manifest or list)", mt)
	}
	if isIndex {
		err = m.checkIndex()
	} else {
		err = m.checkImage()
	}
	if err != nil {
		return nil, "", err
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", *m.Subject); err != nil {
			return nil, "", err
		}
	}
	return &m, mt, nil
}

// manifestInvalid is a MANIFEST_INVALID error.
func manifestInvalid(format string, args ...any) error {
	return &Error{ErrorCode: CodeManifestInvalid, Message: "manifest invalid: " + fmt.Sprintf(format, args...)}
}

// mediaType is the manifest's media type: the request's Content-Type,
// which must agree with the document's mediaType; else the document's;
// else, as an OCI document may omit it, told apart by shape.
func (m *pushedManifest) mediaType(contentType string) (string, error) {
	mt := m.MediaType
	if ct, _, _ := strings.Cut(contentType, ";"); strings.TrimSpace(ct) != "" {
		ct = strings.TrimSpace(ct)
		if mt != "" && mt != ct {
			return "", manifestInvalid("Content-Type %q does not match the document's mediaType %q", ct, mt)
		}
		mt = ct
	}
	if mt == "" {
		if m.Manifests != nil {
			mt = ocispec.MediaTypeImageIndex
		} else {
			mt = ocispec.MediaTypeImageManifest
		}
	}
	return mt, nil
}

// checkIndex checks the structure of an index.
func (m *pushedManifest) checkIndex() error {
	if m.Config != nil || m.Layers != nil {
		return manifestInvalid("an index has no config or layers")
	}
	for i, d := range m.Manifests {
		if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), d); err != nil {
			return err
		}
	}
	return nil
}

// checkImage checks the structure of an image manifest.
func (m *pushedManifest) checkImage() error {
	if m.Config == nil {
		return manifestInvalid("an image manifest needs a config")
	}
	if m.Manifests != nil {
		return manifestInvalid("an image manifest has no manifests list")
	}
	if err := checkDescriptor("config", *m.Config); err != nil {
		return err
	}
	for i, d := range m.Layers {
		if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), d); err != nil {
			return err
		}
	}
	return nil
}

// checkDescriptor checks the digest, size and media type of what's
// descriptor.
func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return manifestInvalid("%s: digest %q: %v", what, d.Digest, err)
	}
	if d.Size < 0 {
		return manifestInvalid("%s: size %d", what, d.Size)
	}
	if d.MediaType == "" {
		return manifestInvalid("%s: no mediaType", what)
	}
	return nil
}

// artifactType is what the referrers API reports for m.
func (m *pushedManifest) artifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil {
		return m.Config.MediaType
	}
	return ""
}

// putManifest serves PUT /v2/<name>/manifests/<reference> (end-7).
func (reg *Registry) putManifest(w http.ResponseWriter, r *http.Request, name string) error {
	if reg.repos == nil {
		_, err := reg.writable(r)
		return err
	}
	ctx := r.Context()
	data, err := readManifest(r)
	if err != nil {
		return err
	}
	m, mediaType, err := ParseManifest(r.Header.Get("Content-Type"), data)
	if err != nil {
		return err
	}
	d, tags, err := manifestDigest(vars(r).reference, r.URL.Query()["tag"], data)
	if err != nil {
		return err
	}
	if err := reg.checkReferences(ctx, name, m); err != nil {
		return err
	}
	if pkg, ok := strings.CutPrefix(name, PackagesPrefix); ok && reg.ingest != nil {
		if err := reg.ingestPackage(r, name, pkg, tags, m); err != nil {
			return err
		}
	}
	if err := reg.docs.PutDocument(ctx, catalog.Document{MediaType: mediaType, Digest: d, Data: data}); err != nil {
		return fmt.Errorf("storing manifest %s: %w", d, err)
	}
	rec := catalog.ManifestRecord{Digest: d, MediaType: mediaType, Size: int64(len(data)),
		ArtifactType: m.artifactType(), Annotations: m.Annotations}
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
	}
	if err := reg.repos.PutManifest(ctx, name, rec, tags...); err != nil {
		return fmt.Errorf("recording manifest %s in %s: %w", d, name, err)
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest.String())
	}
	for _, t := range tags {
		h.Add("OCI-Tag", t) // the tags now pointing at it (distribution-spec 1.1+dev)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readManifest reads a manifest PUT's body, at most MaxManifestSize bytes.
func readManifest(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxManifestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{ErrorCode: CodeTooLarge, Message: fmt.Sprintf("manifest exceeds %d bytes", MaxManifestSize), cause: err}
		}
		// Reading the body failed: the client's doing, not the server's.
		return nil, &Error{ErrorCode: CodeManifestInvalid, Message: "reading the manifest: " + bodyFailure(err), cause: err}
	}
	return data, nil
}

// manifestDigest is the digest of a manifest pushed to ref (with the
// reference's algorithm when pushed by digest, which it must match, else
// sha256) and the tags it gets: ref if it is a tag, and the tag query
// parameters.
func manifestDigest(ref string, tagParams []string, data []byte) (digest.Digest, []string, error) {
	var tags []string
	alg := digest.SHA256
	var want digest.Digest
	if strings.Contains(ref, ":") {
		var err error
		if want, err = digest.Parse(ref); err != nil {
			return "", nil, err
		}
		if err := layerstoreDigest(want); err != nil {
			return "", nil, err
		}
		alg = want.Algorithm()
	} else {
		if err := catalog.ValidateTag(ref); err != nil {
			return "", nil, &Error{ErrorCode: CodeTagInvalid, Message: err.Error(), cause: err}
		}
		tags = append(tags, ref)
	}
	for _, t := range tagParams {
		if err := catalog.ValidateTag(t); err != nil {
			return "", nil, &Error{ErrorCode: CodeTagInvalid, Message: err.Error(), cause: err}
		}
		tags = append(tags, t)
	}
	d := alg.FromBytes(data)
	if want != "" && d != want {
		return "", nil, &Error{ErrorCode: CodeDigestInvalid, Message: fmt.Sprintf("manifest content has digest %s, not %s", d, want)}
	}
	return d, tags, nil
}

// checkReferences checks that everything m needs is in repository name
// already: its config and layers (but foreign layers), and an index's
// manifests.
func (reg *Registry) checkReferences(ctx context.Context, name string, m *pushedManifest) error {
	for _, desc := range append(m.Layers, derefConfig(m.Config)...) {
		if manifestgen.ForeignLayer(desc) {
			continue
		}
		linked, err := reg.repos.BlobLinked(ctx, name, desc.Digest)
		if err != nil {
			return fmt.Errorf("looking up blob %s in %s: %w", desc.Digest, name, err)
		}
		if linked {
			// A link outlives its blob only until gc unlinks it.
			switch _, err := reg.blobs.Stat(ctx, desc.Digest); {
			case errors.Is(err, layerstore.ErrNotFound):
				linked = false
			case err != nil:
				return fmt.Errorf("looking up blob %s: %w", desc.Digest, err)
			}
		}
		if !linked {
			return &Error{ErrorCode: CodeManifestBlobUnknown,
				Message: fmt.Sprintf("manifest references blob %s, which is not in repository %s: push it first", desc.Digest, name),
				Detail:  map[string]string{"digest": desc.Digest.String()}}
		}
	}
	for _, desc := range m.Manifests {
		if _, err := reg.repos.Manifest(ctx, name, desc.Digest); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return &Error{ErrorCode: CodeManifestUnknown,
					Message: fmt.Sprintf("index references manifest %s, which is not in repository %s: push it first", desc.Digest, name),
					Detail:  map[string]string{"digest": desc.Digest.String()}}
			}
			return fmt.Errorf("looking up manifest %s in %s: %w", desc.Digest, name, err)
		}
	}
	return nil
}

func derefConfig(d *ocispec.Descriptor) []ocispec.Descriptor {
	if d == nil {
		return nil
	}
	return []ocispec.Descriptor{*d}
}

// deleteManifest serves DELETE /v2/<name>/manifests/<reference> (end-9):
// a digest removes the manifest and its tags; a tag removes the tag only.
func (reg *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, name string) error {
	if reg.repos == nil {
		_, err := reg.writable(r)
		return err
	}
	ctx := r.Context()
	ref := vars(r).reference
	if strings.Contains(ref, ":") {
		rec, err := reg.resolveReference(r, name, ref)
		if err != nil {
			return err
		}
		if err := reg.repos.DeleteManifest(ctx, name, rec.Digest); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return &manifestUnknownError{reference: name + "@" + rec.Digest.String()}
			}
			return fmt.Errorf("deleting manifest %s from %s: %w", rec.Digest, name, err)
		}
	} else {
		if err := catalog.ValidateTag(ref); err != nil {
			return &Error{ErrorCode: CodeTagInvalid, Message: err.Error(), cause: err}
		}
		if err := reg.repos.DeleteTag(ctx, name, ref); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return &manifestUnknownError{reference: name + ":" + ref}
			}
			return fmt.Errorf("deleting tag %s:%s: %w", name, ref, err)
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
