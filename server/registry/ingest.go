package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/ingest"
)

// PackagesPrefix starts the repositories whose tagged pushes become
// package versions: an image or index pushed to packages/<name>:<semver>
// registers its single layer per platform as <name> <semver>.
const PackagesPrefix = "packages/"

// maxConfigSize bounds an image config read for ingestion.
const maxConfigSize = 4 << 20

// ingestPackage registers a manifest pushed to packages/<pkg> by tag as a
// package version, before the manifest itself is recorded: a refused
// package leaves nothing behind. Pushes by digest (the platform manifests
// of an index, pushed first) are stored only.
func (reg *Registry) ingestPackage(r *http.Request, repo, pkg string, tags []string, m *pushedManifest) error {
	if len(tags) == 0 {
		return nil
	}
	if len(tags) > 1 {
		return &catalog.ValidationError{Problems: []string{fmt.Sprintf(
			"tags: a push to %s registers one version; got tags %v", repo, tags)}}
	}
	ctx := r.Context()
	push := ingest.Push{Name: pkg, Version: tags[0], Annotations: m.Annotations}
	if m.Manifests != nil {
		for i, desc := range m.Manifests {
			if desc.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
				desc.Platform != nil && desc.Platform.OS == "unknown" {
				continue // buildx provenance and SBOM attestations
			}
			rec, err := reg.repos.Manifest(ctx, repo, desc.Digest)
			if err != nil {
				return fmt.Errorf("reading manifests[%d] %s: %w", i, desc.Digest, err)
			}
			doc, err := reg.docs.Document(ctx, desc.Digest)
			if err != nil {
				return fmt.Errorf("reading manifests[%d] %s: %w", i, desc.Digest, err)
			}
			child, _, err := ParseManifest(rec.MediaType, doc.Data)
			if err != nil || child.Config == nil {
				return &catalog.ValidationError{Problems: []string{fmt.Sprintf(
					"manifests[%d]: %s is not an image manifest", i, desc.Digest)}}
			}
			img, err := reg.pushedImage(r, child, desc.Platform)
			if err != nil {
				return fmt.Errorf("manifests[%d]: %w", i, err)
			}
			push.Images = append(push.Images, img)
		}
	} else {
		img, err := reg.pushedImage(r, m, nil)
		if err != nil {
			return err
		}
		push.Images = append(push.Images, img)
	}
	rel, err := reg.ingest.Ingest(ctx, push)
	if err != nil {
		return err
	}
	reg.log.InfoContext(ctx, "package pushed", "name", rel.Name, "version", rel.Version.String(),
		"platforms", len(rel.Layers), "repository", repo, "request_id", r.Header.Get("X-Request-Id"))
	return nil
}

// pushedImage reads the config of image manifest m and describes it for
// ingestion. The platform comes from the index descriptor when there is
// one, else from the config.
func (reg *Registry) pushedImage(r *http.Request, m *pushedManifest, platform *ocispec.Platform) (ingest.PushedImage, error) {
	cfg, err := reg.readConfig(r, m.Config.Digest)
	if err != nil {
		return ingest.PushedImage{}, err
	}
	p := catalog.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if platform != nil {
		p = catalog.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant}
	}
	return ingest.PushedImage{Platform: p, Config: cfg, Layers: m.Layers, Annotations: m.Annotations}, nil
}

// readConfig reads and decodes an image config blob.
func (reg *Registry) readConfig(r *http.Request, d digest.Digest) (ocispec.Image, error) {
	rc, size, err := reg.blobs.Open(r.Context(), d)
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("reading config %s: %w", d, err)
	}
	defer rc.Close()
	if size > maxConfigSize {
		return ocispec.Image{}, &catalog.ValidationError{Problems: []string{fmt.Sprintf(
			"config %s: %d bytes is more than the %d bytes allowed", d, size, maxConfigSize)}}
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("reading config %s: %w", d, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syntax) || errors.As(err, &typ) {
			return ocispec.Image{}, &catalog.ValidationError{Problems: []string{fmt.Sprintf(
				"config %s is not an image config: %v", d, err)}}
		}
		return ocispec.Image{}, err
	}
	return cfg, nil
}
