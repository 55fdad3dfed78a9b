package manifestgen

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types. image-spec only defines the OCI ones
// (ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, …).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
)

// Format selects the media types of the generated documents.
type Format int

const (
	// FormatOCI: OCI image index, manifest and config.
	FormatOCI Format = iota
	// FormatDocker: Docker manifest list, schema 2 manifest and container
	// config, for clients that do not accept OCI media types.
	FormatDocker
)

// String returns "oci" or "docker".
func (f Format) String() string {
	switch f {
	case FormatOCI:
		return "oci"
	case FormatDocker:
		return "docker"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// IndexMediaType is the media type of the index (manifest list) in format f.
func (f Format) IndexMediaType() string {
	if f == FormatDocker {
		return MediaTypeDockerManifestList
	}
	return ocispec.MediaTypeImageIndex
}

// ManifestMediaType is the media type of a per-platform manifest in format f.
func (f Format) ManifestMediaType() string {
	if f == FormatDocker {
		return MediaTypeDockerManifest
	}
	return ocispec.MediaTypeImageManifest
}

// ConfigMediaType is the media type of the image config in format f.
func (f Format) ConfigMediaType() string {
	if f == FormatDocker {
		return MediaTypeDockerConfig
	}
	return ocispec.MediaTypeImageConfig
}

// LayerMediaType is how a layer stored with media type mt is described in
// format f: OCI layers as stored; Docker maps the OCI tar and tar+gzip
// types to their Docker equivalents and keeps any other type unchanged.
func (f Format) LayerMediaType(mt string) string {
	if f == FormatDocker {
		switch mt {
		case ocispec.MediaTypeImageLayerGzip:
			return MediaTypeDockerLayerGzip
		case ocispec.MediaTypeImageLayer:
			return MediaTypeDockerLayer
		}
	}
	return mt
}

func (f Format) valid() bool { return f == FormatOCI || f == FormatDocker }

// ForeignLayer reports a layer a registry need not hold: one with URLs to
// fetch it from elsewhere, or a non-distributable (OCI, deprecated) or
// foreign (Docker) media type. The registry accepts manifests naming such
// layers without them, and envreg verify does not look for them.
func ForeignLayer(d ocispec.Descriptor) bool {
	return len(d.URLs) > 0 || strings.Contains(d.MediaType, "foreign") || strings.Contains(d.MediaType, "nondistributable")
}
