package registry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
)

// Ordinary repositories: what clients pushed, served back unchanged, as
// any OCI registry does. Stacks (virtual repositories) keep their own
// handlers; these dispatchers choose.

// manifest serves /v2/<name>/manifests/<reference>.
func (reg *Registry) manifest(w http.ResponseWriter, r *http.Request) error {
	snap, st, virtual, err := reg.lookup(r)
	if err != nil {
		return err
	}
	name := vars(r).name
	switch {
	case virtual && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return reg.getManifest(w, r, snap, st)
	case virtual:
		return readOnly(r, name)
	case r.Method == http.MethodPut:
		return reg.putManifest(w, r, name)
	case r.Method == http.MethodDelete:
		return reg.deleteManifest(w, r, name)
	default:
		return reg.getRepoManifest(w, r, name)
	}
}

// blob serves /v2/<name>/blobs/<digest>.
func (reg *Registry) blob(w http.ResponseWriter, r *http.Request) error {
	snap, _, virtual, err := reg.lookup(r)
	if err != nil {
		return err
	}
	name := vars(r).name
	d, err := digest.Parse(vars(r).digest)
	if err != nil {
		return err
	}
	switch {
	case virtual && r.Method == http.MethodDelete:
		return readOnly(r, name)
	case virtual:
		// A stack serves the layers of the catalog's releases and what it
		// composed itself, never another repository's blobs.
		if err := reg.stackServes(r, snap, name, d, CodeBlobUnknown); err != nil {
			return err
		}
		return reg.getBlob(w, r, d)
	}
	if err := layerstoreDigest(d); err != nil {
		return err
	}
	linked, err := reg.repos.BlobLinked(r.Context(), name, d)
	if err != nil {
		return fmt.Errorf("looking up blob %s in %s: %w", d, name, err)
	}
	if !linked {
		return reg.unknownIn(r, name, &Error{ErrorCode: CodeBlobUnknown, Message: fmt.Sprintf("blob %s unknown to repository %s", d, name)})
	}
	if r.Method == http.MethodDelete {
		if err := reg.repos.UnlinkBlob(r.Context(), name, d); err != nil {
			return fmt.Errorf("deleting blob %s from %s: %w", d, name, err)
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return reg.getBlob(w, r, d)
}

// resolveReference returns the digest a tag or digest reference names in
// repository name, and the manifest's record.
func (reg *Registry) resolveReference(r *http.Request, name, ref string) (catalog.ManifestRecord, error) {
	ctx := r.Context()
	d := digest.Digest(ref)
	if strings.Contains(ref, ":") {
		var err error
		if d, err = digest.Parse(ref); err != nil {
			return catalog.ManifestRecord{}, err
		}
		if err := layerstoreDigest(d); err != nil {
			return catalog.ManifestRecord{}, err
		}
	} else {
		if err := catalog.ValidateTag(ref); err != nil {
			return catalog.ManifestRecord{}, &Error{ErrorCode: CodeTagInvalid, Message: err.Error(), cause: err}
		}
		var err error
		if d, err = reg.repos.Tag(ctx, name, ref); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return catalog.ManifestRecord{}, reg.unknownIn(r, name, &manifestUnknownError{reference: name + ":" + ref})
			}
			return catalog.ManifestRecord{}, fmt.Errorf("looking up tag %s:%s: %w", name, ref, err)
		}
	}
	rec, err := reg.repos.Manifest(ctx, name, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.ManifestRecord{}, reg.unknownIn(r, name, &manifestUnknownError{reference: name + "@" + d.String()})
	}
	if err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("looking up manifest %s@%s: %w", name, d, err)
	}
	return rec, nil
}

// unknownIn returns NAME_UNKNOWN when repository name holds nothing (no
// manifest, no blob), else notFound: a client that mistyped a repository
// name is told so rather than that one manifest or blob is missing.
func (reg *Registry) unknownIn(r *http.Request, name string, notFound error) error {
	if _, err := reg.repos.Tags(r.Context(), name); errors.Is(err, catalog.ErrNotFound) {
		return &nameUnknownError{name: name}
	}
	return notFound
}

// getRepoManifest serves GET/HEAD of a pushed manifest: the bytes as
// pushed, with the media type they were pushed with.
func (reg *Registry) getRepoManifest(w http.ResponseWriter, r *http.Request, name string) error {
	rec, err := reg.resolveReference(r, name, vars(r).reference)
	if err != nil {
		return err
	}
	doc, err := reg.docs.Document(r.Context(), rec.Digest)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return &manifestUnknownError{reference: name + "@" + rec.Digest.String()}
		}
		return fmt.Errorf("reading manifest %s: %w", rec.Digest, err)
	}
	writeDocument(w, r, rec.MediaType, rec.Digest, doc.Data)
	return nil
}

// listRepoTags serves tags/list of an ordinary repository.
func (reg *Registry) listRepoTags(w http.ResponseWriter, r *http.Request) error {
	name := vars(r).name
	tags, err := reg.repos.Tags(r.Context(), name)
	if errors.Is(err, catalog.ErrNotFound) {
		return &nameUnknownError{name: name}
	}
	if err != nil {
		return fmt.Errorf("listing tags of %s: %w", name, err)
	}
	page, next, err := paginate(r.URL.Query(), tags)
	if err != nil {
		return err
	}
	body := struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, page}
	return writeJSONList(w, r, body, next, "/v2/"+name+"/tags/list")
}

// listRepoReferrers serves the referrers API of an ordinary repository:
// an index of the manifests whose subject is d, filtered by artifactType.
func (reg *Registry) listRepoReferrers(w http.ResponseWriter, r *http.Request, d digest.Digest) error {
	name := vars(r).name
	if err := layerstoreDigest(d); err != nil {
		return err
	}
	recs, err := reg.repos.Referrers(r.Context(), name, d)
	if err != nil {
		return fmt.Errorf("listing referrers of %s@%s: %w", name, d, err)
	}
	filter := r.URL.Query().Get("artifactType")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, rec := range recs {
		if filter != "" && rec.ArtifactType != filter {
			continue
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: rec.MediaType, Digest: rec.Digest, Size: rec.Size,
			ArtifactType: rec.ArtifactType, Annotations: rec.Annotations,
		})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, idx)
}
