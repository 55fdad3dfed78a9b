package maintenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
)

// document is the part of an image index or manifest that references
// other content.
type document struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
	Subject   *ocispec.Descriptor  `json:"subject"`
	// ArtifactType tells SBOM artifacts (sbom.MediaType) from images.
	ArtifactType string `json:"artifactType"`
	// Annotations tell composed indexes (manifestgen.KeyStack) from pushed
	// documents.
	Annotations map[string]string `json:"annotations"`
}

// stack returns the stack a composed index names in its annotations, or
// "" (a manifest, or a pushed index).
func (d *document) stack() string {
	if d == nil || !isIndex(d.MediaType) {
		return ""
	}
	st := d.Annotations[manifestgen.KeyStack]
	if catalog.ValidateName(st) != nil {
		return ""
	}
	return st
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == manifestgen.MediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == manifestgen.MediaTypeDockerManifest
}

// parseDocument parses a stored index or manifest and checks its shape.
func parseDocument(d catalog.Document) (document, error) {
	var doc document
	if !isIndex(d.MediaType) && !isManifest(d.MediaType) {
		return doc, fmt.Errorf("unknown media type %q", d.MediaType)
	}
	if err := json.Unmarshal(d.Data, &doc); err != nil {
		return doc, fmt.Errorf("%s does not parse: %w", d.MediaType, err)
	}
	if doc.MediaType != "" && doc.MediaType != d.MediaType {
		return doc, fmt.Errorf("stored as %s but says mediaType %s", d.MediaType, doc.MediaType)
	}
	doc.MediaType = d.MediaType
	if isManifest(d.MediaType) && doc.Config == nil {
		return doc, errors.New("manifest without a config")
	}
	for _, desc := range slices.Concat(doc.Layers, doc.Manifests, descs(doc.Config, doc.Subject)) {
		if err := desc.Digest.Validate(); err != nil {
			return doc, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
		}
	}
	return doc, nil
}

func descs(ds ...*ocispec.Descriptor) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, d := range ds {
		if d != nil {
			out = append(out, *d)
		}
	}
	return out
}

// digestPattern finds digests mentioned anywhere in a document.
var digestPattern = regexp.MustCompile(`\bsha256:[a-f0-9]{64}\b|\bsha512:[a-f0-9]{128}\b`)

// stored is what gc keeps of one stored document: every digest it
// mentions, and its parsed form when it is an index or manifest gc
// understands (nil otherwise).
type stored struct {
	mentions []digest.Digest
	doc      *document
}

// readStored reads what d references. A document counts with every digest
// its JSON mentions (config, layers, manifests, subject, annotations
// alike), and one that is not JSON with every digest in its bytes: a
// document gc does not understand keeps what it points to.
func readStored(d catalog.Document) stored {
	var st stored
	var val any
	if err := json.Unmarshal(d.Data, &val); err != nil {
		for _, m := range digestPattern.FindAll(d.Data, -1) {
			st.mentions = append(st.mentions, digest.Digest(m))
		}
		return st
	}
	mentioned := map[digest.Digest]bool{}
	markStrings(val, mentioned)
	st.mentions = slices.Sorted(maps.Keys(mentioned))
	if doc, err := parseDocument(d); err == nil {
		st.doc = &doc
	}
	return st
}

// markStrings marks every string in a decoded JSON value that is a valid
// digest.
func markStrings(v any, refs map[digest.Digest]bool) {
	switch v := v.(type) {
	case string:
		if d := digest.Digest(v); d.Validate() == nil {
			refs[d] = true
		}
	case []any:
		for _, e := range v {
			markStrings(e, refs)
		}
	case map[string]any:
		for _, e := range v {
			markStrings(e, refs)
		}
	}
}
