package catalog

import (
	"context"
	"fmt"
	"regexp"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Ordinary repositories.
//
// Besides stacks (virtual, read-only repositories whose images are composed
// on every GET), envreg is a plain OCI registry: clients push blobs and
// manifests to any other repository name and pull them back unchanged.
// The manifests' bytes live in Documents (by digest, shared by every
// repository); Repositories records which repository holds which
// manifests, tags and blobs, and which manifests refer to which (the
// referrers API).

// TagPattern is the distribution-spec tag grammar.
var TagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// RepositoryNamePattern is the distribution-spec repository name grammar.
var RepositoryNamePattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$`)

// MaxRepositoryNameLength bounds repository names (as distribution does).
const MaxRepositoryNameLength = 255

// ValidateRepository checks a repository name against the spec's grammar
// and MaxRepositoryNameLength.
func ValidateRepository(name string) error {
	if len(name) > MaxRepositoryNameLength || !ValidRepositoryName(name) {
		return fmt.Errorf("invalid repository name %q", name)
	}
	return nil
}

// ValidRepositoryName reports whether name matches RepositoryNamePattern
// (any length). It is the same grammar scanned by hand, without the
// regular expression's backtracking: the registry checks it on every
// request.
func ValidRepositoryName(name string) bool {
	// Each '/'-separated component is [a-z0-9]+ runs joined by one
	// separator: ".", "_", "__" or any number of "-".
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
	i := 0
	for {
		// A component starts with an alphanumeric run.
		if i >= len(name) || !alnum(name[i]) {
			return false
		}
		for i < len(name) && alnum(name[i]) {
			i++
		}
		if i == len(name) {
			return true
		}
		switch name[i] {
		case '/', '.':
			i++
		case '_':
			i++
			if i < len(name) && name[i] == '_' {
				i++
			}
		case '-':
			for i < len(name) && name[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// ValidateTag checks a tag against the spec's grammar.
func ValidateTag(tag string) error {
	if !TagPattern.MatchString(tag) {
		return fmt.Errorf("invalid tag %q", tag)
	}
	return nil
}

// ManifestRecord is a manifest held by an ordinary repository: what the
// referrers API and tag listing need without reading the document.
type ManifestRecord struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// ArtifactType is the manifest's artifactType, else (for an image
	// manifest) its config media type; "" for an index without one.
	ArtifactType string `json:"artifactType,omitempty"`
	// Annotations are the manifest's annotations (shown by referrers).
	Annotations map[string]string `json:"annotations,omitempty"`
	// Subject is the digest of the manifest this one refers to, or "".
	Subject digest.Digest `json:"subject,omitempty"`
}

// Validate checks the record's digest and subject (sha256 or sha512, as
// layerstore.ValidateDigest accepts, since they name files and keys), its
// media type and size.
func (m ManifestRecord) Validate() error {
	if err := layerstore.ValidateDigest(m.Digest); err != nil {
		return fmt.Errorf("manifest record: digest: %w", err)
	}
	if m.MediaType == "" || m.Size < 0 {
		return fmt.Errorf("manifest record %s: media type %q, size %d", m.Digest, m.MediaType, m.Size)
	}
	if m.Subject != "" {
		if err := layerstore.ValidateDigest(m.Subject); err != nil {
			return fmt.Errorf("manifest record %s: subject: %w", m.Digest, err)
		}
	}
	return nil
}

// ValidateTags checks tags against the spec's grammar.
func ValidateTags(tags ...string) error {
	for _, tag := range tags {
		if err := ValidateTag(tag); err != nil {
			return err
		}
	}
	return nil
}

// Repositories records the content of ordinary repositories. Every method
// validates the repository name (ValidateRepository), tags (ValidateTag)
// and digests before they reach storage. Missing things are reported with
// errors wrapping ErrNotFound. Changes are atomic: a reader (in this or
// another process or replica) sees a PutManifest with its tags whole or
// not at all, and a change is visible to every handle on the same storage
// as soon as the call returns.
type Repositories interface {
	// PutManifest records m in repo and points each tag at it (moving a tag
	// that pointed elsewhere). The document itself must already be stored
	// with PutDocument. Recording the same manifest again updates nothing
	// but the tags.
	PutManifest(ctx context.Context, repo string, m ManifestRecord, tags ...string) error
	// Manifest returns repo's record of d, or ErrNotFound.
	Manifest(ctx context.Context, repo string, d digest.Digest) (ManifestRecord, error)
	// Tag returns the digest tag points at in repo, or ErrNotFound.
	Tag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// Tags lists repo's tags in lexical (byte) order; ErrNotFound when the
	// repository does not exist (it exists from its first linked blob or
	// manifest until it holds nothing).
	Tags(ctx context.Context, repo string) ([]string, error)
	// Manifests lists repo's manifest records, sorted by digest.
	Manifests(ctx context.Context, repo string) ([]ManifestRecord, error)
	// DeleteTag removes a tag (not the manifest), or returns ErrNotFound.
	DeleteTag(ctx context.Context, repo, tag string) error
	// DeleteManifest removes d from repo together with every tag that
	// points at it and its referrers entry, or returns ErrNotFound. The
	// document stays in Documents (other repositories may hold it; gc
	// removes what nothing references).
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// Referrers lists the records of repo's manifests whose subject is d,
	// sorted by digest (empty, not ErrNotFound, when there are none).
	Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ManifestRecord, error)
	// LinkBlob makes blob d (already in the blob store) part of repo.
	// Linking a linked blob is a no-op.
	LinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// BlobLinked reports whether d is part of repo.
	BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error)
	// UnlinkBlob removes d from repo (not from the blob store), or returns
	// ErrNotFound.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// Blobs lists the blobs linked to repo, sorted.
	Blobs(ctx context.Context, repo string) ([]digest.Digest, error)
	// RepositoryNames lists the ordinary repositories, sorted.
	RepositoryNames(ctx context.Context) ([]string, error)
}
