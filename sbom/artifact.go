package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Artifact is an SBOM as an OCI artifact: an image manifest with artifact
// type MediaType, the empty config, one layer (the SPDX document) and the
// platform manifest it describes as its subject (OCI image-spec 1.1,
// "artifacts guidance").
type Artifact struct {
	// Manifest is the artifact manifest's descriptor (with ArtifactType,
	// as the referrers API lists it) and Data its bytes.
	Manifest ocispec.Descriptor
	Data     []byte
	// SBOM is the SPDX document's descriptor and bytes.
	SBOM     ocispec.Descriptor
	SBOMData []byte
	// Config is the empty config's descriptor and bytes ("{}").
	Config     ocispec.Descriptor
	ConfigData []byte
}

// FileName is the file name an artifact gives its SPDX document
// (org.opencontainers.image.title).
const FileName = "sbom.spdx.json"

// NewArtifact wraps the SPDX document doc into an artifact whose subject
// is the manifest subject. Equal input gives equal bytes.
func NewArtifact(subject ocispec.Descriptor, doc []byte) (*Artifact, error) {
	a := &Artifact{
		SBOM:       ocispec.Descriptor{MediaType: MediaType, Digest: digest.FromBytes(doc), Size: int64(len(doc))},
		SBOMData:   doc,
		Config:     ocispec.DescriptorEmptyJSON,
		ConfigData: ocispec.DescriptorEmptyJSON.Data,
	}
	a.Config.Data = nil
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	// The title names the file oras pull writes the document to.
	layer := a.SBOM
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: FileName}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: MediaType, Config: a.Config, Layers: []ocispec.Descriptor{layer}, Subject: &subject,
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the SBOM artifact of %s: %w", subject.Digest, err)
	}
	a.Data = data
	a.Manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: MediaType,
		Digest: digest.FromBytes(data), Size: int64(len(data))}
	return a, nil
}

// Parse reads an SPDX 2.3 JSON document with the library, refusing other
// versions and documents that do not parse.
func Parse(data []byte) (*spdx.Document, error) {
	var doc spdx.Document
	if err := spdxjson.ReadInto(bytes.NewReader(data), &doc); err != nil {
		return nil, fmt.Errorf("reading SPDX document: %w", err)
	}
	if doc.SPDXVersion != spdx.Version {
		return nil, fmt.Errorf("reading SPDX document: version %q, want %s", doc.SPDXVersion, spdx.Version)
	}
	return &doc, nil
}
