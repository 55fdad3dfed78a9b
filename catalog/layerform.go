package catalog

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Layer compression: the form a stack serves its layers in (Stack.LayerCompression).
//
// gzip, the default, is the form every release has. none serves the
// uncompressed tar, the blob whose digest is the layer's DiffID, as
// application/vnd.oci.image.layer.v1.tar (Docker:
// application/vnd.docker.image.rootfs.diff.tar): a node close to the
// registry then spends no CPU decompressing, for more bytes on the wire.
// Every client reads both (Docker 20.10 included). The form is the stack's
// choice, never negotiated per request: one tag, one digest. The diffIDs,
// and so the image configs, the overlap check and everything built on
// them, are the same in every form.
//
// A layer published before the publishing job stored the tar form (or
// pushed as a package, which stores the pushed form only) has only the
// compressed form: a stack with none serves that layer compressed.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// mediaTypeLayerTar is image-spec's MediaTypeImageLayer (catalog does not
// import image-spec).
const mediaTypeLayerTar = "application/vnd.oci.image.layer.v1.tar"

// LayerBlob is one stored form of a layer.
type LayerBlob struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
}

// Blobs lists the forms l is stored in: the published (compressed) blob
// first, then the uncompressed tar when TarSize records it.
func (l Layer) Blobs() []LayerBlob {
	out := []LayerBlob{{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}}
	if l.TarSize > 0 && l.DiffID != l.Digest {
		out = append(out, LayerBlob{Digest: l.DiffID, Size: l.TarSize, MediaType: mediaTypeLayerTar})
	}
	return out
}

// Served is the form of l a stack with the given layer compression
// serves: the tar for "none" when it is stored, else the published blob.
func (l Layer) Served(compression string) LayerBlob {
	forms := l.Blobs()
	if compression == CompressionNone && len(forms) > 1 {
		return forms[1]
	}
	return forms[0]
}

// validCompression checks a Stack.LayerCompression value.
func validCompression(c string) error {
	switch c {
	case "", CompressionGzip, CompressionNone:
		return nil
	case "zstd":
		return fmt.Errorf("layerCompression zstd is not supported yet (gzip or none)")
	}
	return fmt.Errorf("layerCompression %q: want gzip or none", c)
}
