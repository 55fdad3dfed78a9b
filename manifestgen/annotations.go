package manifestgen

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
)

// Composition is what an index composed by Generate says about itself: the
// stack it was composed for and the package versions (its io.envreg.*
// annotations), and the manifest of each platform. It is what a customer
// runs, read back from the stored index.
type Composition struct {
	// Stack is the io.envreg.stack annotation (empty if absent).
	Stack string
	// Versions are the io.envreg.package.* annotations: package -> version.
	Versions map[string]*semver.Version
	// Manifests are the index's manifest digests by platform.
	Manifests map[catalog.Platform]digest.Digest
}

// NotComposedError reports a document that is not an index Generate
// wrote: not JSON, not an index, or without valid package annotations.
type NotComposedError struct {
	// Reason says what is wrong, for a user: "it has no
	// io.envreg.package.* annotations".
	Reason string
}

func (e *NotComposedError) Error() string { return "not an index composed by envreg: " + e.Reason }

// ReadComposition decodes an index (or Docker manifest list) and the
// annotations Generate wrote into it. mediaType is the media type the
// document was stored with, used when the JSON carries none.
func ReadComposition(data []byte, mediaType string) (*Composition, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, &NotComposedError{Reason: "it is not JSON"}
	}
	mt := idx.MediaType
	if mt == "" {
		mt = mediaType
	}
	if mt != ocispec.MediaTypeImageIndex && mt != MediaTypeDockerManifestList {
		return nil, &NotComposedError{Reason: fmt.Sprintf("it is a %s, not an image index (use the index digest, the one a pinned reference names)", mt)}
	}
	c := &Composition{Stack: idx.Annotations[KeyStack],
		Versions: map[string]*semver.Version{}, Manifests: map[catalog.Platform]digest.Digest{}}
	for k, v := range idx.Annotations {
		name, ok := strings.CutPrefix(k, KeyPackagePrefix)
		if !ok {
			continue
		}
		ver, err := semver.StrictNewVersion(v)
		if err != nil {
			return nil, &NotComposedError{Reason: fmt.Sprintf("annotation %s=%q is not a version", k, v)}
		}
		c.Versions[name] = ver
	}
	if len(c.Versions) == 0 {
		return nil, &NotComposedError{Reason: "it has no " + KeyPackagePrefix + "* annotations"}
	}
	for _, m := range idx.Manifests {
		if p := m.Platform; p != nil {
			c.Manifests[catalog.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}] = m.Digest
		}
	}
	return c, nil
}
