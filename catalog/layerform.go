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
// zstd serves the layer compressed with zstd
// (application/vnd.oci.image.layer.v1.tar+zstd, in Docker manifests too:
// Docker has no type of its own): about the bytes of gzip, unpacked
// faster (bench/layerforms.sh measures it on containerd). containerd (1.5 on), Docker (23 on),
// podman, skopeo and crane read it; Docker 20.10 does not, so it is a
// stack's choice for its clients, never the default.
//
// A layer published before the publishing job stored the stack's form (or
// pushed as a package, which stores the pushed form only) has only the
// published gzip form: a stack with none or zstd serves that layer as gzip.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
	CompressionZstd = "zstd"
)

// The media types of the stored forms (image-spec's; catalog does not
// import image-spec).
const (
	mediaTypeLayerTar  = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// LayerBlob is one stored form of a layer.
type LayerBlob struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
}

// Blobs lists the forms l is stored in: the published (compressed) blob
// first, then the uncompressed tar when TarSize records it, then the zstd
// form when ZstdDigest names it.
func (l Layer) Blobs() []LayerBlob {
	out := []LayerBlob{{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}}
	if l.TarSize > 0 && l.DiffID != l.Digest {
		out = append(out, LayerBlob{Digest: l.DiffID, Size: l.TarSize, MediaType: mediaTypeLayerTar})
	}
	if l.ZstdDigest != "" && l.ZstdSize > 0 && l.ZstdDigest != l.Digest {
		out = append(out, LayerBlob{Digest: l.ZstdDigest, Size: l.ZstdSize, MediaType: mediaTypeLayerZstd})
	}
	return out
}

// Served is the form of l a stack with the given layer compression
// serves: the tar for "none" and the zstd blob for "zstd" when that form
// is stored, else the published blob.
func (l Layer) Served(compression string) LayerBlob {
	var want string
	switch compression {
	case CompressionNone:
		want = mediaTypeLayerTar
	case CompressionZstd:
		want = mediaTypeLayerZstd
	}
	forms := l.Blobs()
	for _, f := range forms[1:] {
		if want != "" && f.MediaType == want {
			return f
		}
	}
	return forms[0]
}

// validCompression checks a Stack.LayerCompression value.
func validCompression(c string) error {
	switch c {
	case "", CompressionGzip, CompressionNone, CompressionZstd:
		return nil
	}
	return fmt.Errorf("layerCompression %q: want gzip, none or zstd", c)
}
