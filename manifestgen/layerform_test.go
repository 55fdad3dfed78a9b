package manifestgen_test

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
)

// TestLayerCompressionNone: a stack with layerCompression none describes
// each layer stored as a tar by its diffID, its tar size and the tar media
// type of the format; a layer without the tar form stays as published. The
// configs are the same as the gzip stack's: only the layer descriptors,
// and so the manifests and the index, differ.
func TestLayerCompressionNone(t *testing.T) {
	for _, f := range []manifestgen.Format{manifestgen.FormatOCI, manifestgen.FormatDocker} {
		t.Run(f.String(), func(t *testing.T) {
			gz := fixture()
			tar := fixture()
			tar.Stack.LayerCompression = catalog.CompressionNone
			for _, r := range []int{0, 1} { // base and nodejs have the tar form, php not
				for j := range tar.Releases[r].Layers {
					tar.Releases[r].Layers[j].TarSize = 5000 + int64(j)
					gz.Releases[r].Layers[j].TarSize = 5000 + int64(j)
				}
			}
			gzImg, tarImg := generate(t, gz, f), generate(t, tar, f)
			wantTar := ocispec.MediaTypeImageLayer
			if f == manifestgen.FormatDocker {
				wantTar = manifestgen.MediaTypeDockerLayer
			}
			for i := range tarImg.Manifests {
				if string(gzImg.Configs[i].Data) != string(tarImg.Configs[i].Data) {
					t.Errorf("platform %d: the configs differ", i)
				}
				gm, tm := decode[ocispec.Manifest](t, gzImg.Manifests[i]), decode[ocispec.Manifest](t, tarImg.Manifests[i])
				for j, l := range tm.Layers {
					stored := tar.Releases[j].Layers[i]
					want := ocispec.Descriptor{MediaType: wantTar, Digest: stored.DiffID, Size: stored.TarSize}
					if stored.TarSize == 0 {
						want = gm.Layers[j] // no tar form: as published
					}
					if l.MediaType != want.MediaType || l.Digest != want.Digest || l.Size != want.Size {
						t.Errorf("platform %d layer %d = %+v, want %+v", i, j, l, want)
					}
					if gm.Layers[j].Digest != stored.Digest {
						t.Errorf("the gzip stack serves layer %d as %s, want the published %s", j, gm.Layers[j].Digest, stored.Digest)
					}
				}
			}
			if gzImg.Index.Descriptor.Digest == tarImg.Index.Descriptor.Digest {
				t.Error("the gzip and the none stack answer the same index")
			}
		})
	}
}
