package manifestgen_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

// The Docker media types must be spelled as go-containerregistry spells them.
func TestMediaTypeConstants(t *testing.T) {
	for got, want := range map[string]types.MediaType{
		manifestgen.MediaTypeDockerManifest:     types.DockerManifestSchema2,
		manifestgen.MediaTypeDockerManifestList: types.DockerManifestList,
		manifestgen.MediaTypeDockerConfig:       types.DockerConfigJSON,
		manifestgen.MediaTypeDockerLayerGzip:    types.DockerLayer,
		manifestgen.MediaTypeDockerLayer:        types.DockerUncompressedLayer,
		ocispec.MediaTypeImageIndex:             types.OCIImageIndex,
		ocispec.MediaTypeImageManifest:          types.OCIManifestSchema1,
		ocispec.MediaTypeImageConfig:            types.OCIConfigJSON,
	} {
		if got != string(want) {
			t.Errorf("media type %q, go-containerregistry says %q", got, want)
		}
	}
}

// realLayer builds a gzipped tar with one file, so that digest, size and
// diff ID can be checked the way a client checks them.
func realLayer(t *testing.T, name string, p catalog.Platform) (catalog.Layer, []byte) {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	content := []byte("#!/bin/sh\necho " + name + " on " + p.String() + "\n")
	hdr := &tar.Header{Name: "opt/" + name + "/bin/" + name, Mode: 0o755, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := gzBuf.Bytes()
	return catalog.Layer{
		Platform:  p,
		Digest:    digest.FromBytes(blob),
		DiffID:    digest.FromBytes(tarBuf.Bytes()),
		Size:      int64(len(blob)),
		MediaType: ocispec.MediaTypeImageLayerGzip,
	}, blob
}

// TestValidateWithGGCR parses every generated document with
// go-containerregistry and checks what validate.Index and validate.Image
// check: every descriptor matches the bytes it points to (digest and size),
// media types are what ggcr expects of an index, manifest, config and
// layer, the config's platform matches the index, and each diff ID is the
// hash of the uncompressed layer. (validate itself needs go-cmp and
// klauspost/compress, which are not in go.sum; the checks are the same.)
func TestValidateWithGGCR(t *testing.T) {
	res := fixture()
	blobs := map[digest.Digest][]byte{}
	for i, r := range res.Releases {
		for j, l := range r.Layers {
			layer, data := realLayer(t, r.Name, l.Platform)
			res.Releases[i].Layers[j] = layer
			blobs[layer.Digest] = data
		}
	}
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			im := generate(t, res, f)
			store := map[digest.Digest][]byte{}
			for d, b := range blobs {
				store[d] = b
			}
			for _, b := range im.Blobs() {
				store[b.Descriptor.Digest] = b.Data
			}
			validateIndex(t, store, im.Index.Descriptor, res)
		})
	}
}

// fetch returns the bytes desc points to after checking digest and size.
func fetch(t *testing.T, store map[digest.Digest][]byte, d v1.Hash, size int64) []byte {
	t.Helper()
	b, ok := store[digest.Digest(d.String())]
	if !ok {
		t.Fatalf("blob %s is referenced but was not generated", d)
	}
	got, n, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != d || n != size {
		t.Fatalf("descriptor says %s (%d bytes), content is %s (%d bytes)", d, size, got, n)
	}
	return b
}

func validateIndex(t *testing.T, store map[digest.Digest][]byte, desc ocispec.Descriptor, res *resolver.Resolution) {
	t.Helper()
	h, err := v1.NewHash(desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	data := fetch(t, store, h, desc.Size)
	idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ParseIndexManifest: %v", err)
	}
	if !idx.MediaType.IsIndex() || string(idx.MediaType) != desc.MediaType || idx.SchemaVersion != 2 {
		t.Errorf("index mediaType %q schemaVersion %d, descriptor says %q", idx.MediaType, idx.SchemaVersion, desc.MediaType)
	}
	if len(idx.Manifests) != len(res.Platforms) {
		t.Fatalf("index lists %d manifests, want %d", len(idx.Manifests), len(res.Platforms))
	}
	for i, md := range idx.Manifests {
		p := res.Platforms[i]
		if want := (v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}); md.Platform == nil || !md.Platform.Equals(want) {
			t.Errorf("manifest %d platform %v, want %v", i, md.Platform, want)
		}
		t.Run(p.String(), func(t *testing.T) { validateImage(t, store, md, res) })
	}
}

func validateImage(t *testing.T, store map[digest.Digest][]byte, desc v1.Descriptor, res *resolver.Resolution) {
	data := fetch(t, store, desc.Digest, desc.Size)
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if !m.MediaType.IsImage() || m.MediaType != desc.MediaType || m.SchemaVersion != 2 {
		t.Errorf("manifest mediaType %q schemaVersion %d, descriptor says %q", m.MediaType, m.SchemaVersion, desc.MediaType)
	}
	if !m.Config.MediaType.IsConfig() {
		t.Errorf("config media type %q is not a config type", m.Config.MediaType)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(fetch(t, store, m.Config.Digest, m.Config.Size)))
	if err != nil {
		t.Fatalf("ParseConfigFile: %v", err)
	}
	if got := cfg.Platform(); got == nil || !got.Equals(*desc.Platform) {
		t.Errorf("config platform %v, index says %v", got, desc.Platform)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || len(m.Layers) != len(res.Releases) {
		t.Fatalf("%d diff IDs, %d layers, %d releases", len(cfg.RootFS.DiffIDs), len(m.Layers), len(res.Releases))
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(m.Layers) {
		t.Errorf("history has %d non-empty entries for %d layers", nonEmpty, len(m.Layers))
	}
	if cfg.Created.IsZero() || cfg.Created.Location() != time.UTC {
		t.Errorf("created = %v, want a UTC time", cfg.Created.Time)
	}
	for i, l := range m.Layers {
		if !l.MediaType.IsLayer() || !l.MediaType.IsDistributable() {
			t.Errorf("layer %d media type %q", i, l.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(fetch(t, store, l.Digest, l.Size)))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		diffID, _, err := v1.SHA256(zr)
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if diffID != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d uncompresses to %s, config says %s", i, diffID, cfg.RootFS.DiffIDs[i])
		}
	}
	var paths int
	for _, e := range cfg.Config.Env {
		if strings.HasPrefix(e, "PATH=") {
			paths++
		}
	}
	if paths != 1 || cfg.Config.Labels["io.envreg.stack"] != res.Stack.Name {
		t.Errorf("config Env %q Labels %v", cfg.Config.Env, cfg.Config.Labels)
	}
}
