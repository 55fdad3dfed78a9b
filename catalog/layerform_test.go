package catalog_test

import (
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

func TestLayerForms(t *testing.T) {
	l := catalog.Layer{Digest: digest.FromString("gz"), DiffID: digest.FromString("tar"), Size: 10,
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
	if got := l.Blobs(); len(got) != 1 || got[0].Digest != l.Digest {
		t.Errorf("without TarSize: blobs %+v, want the gzip one only", got)
	}
	if got := l.Served(catalog.CompressionNone); got.Digest != l.Digest || got.Size != 10 {
		t.Errorf("none without the tar form serves %+v, want the gzip blob", got)
	}
	l.TarSize = 30
	if got := l.Blobs(); len(got) != 2 || got[1] != (catalog.LayerBlob{Digest: l.DiffID, Size: 30, MediaType: "application/vnd.oci.image.layer.v1.tar"}) {
		t.Errorf("with TarSize: blobs %+v", got)
	}
	if got := l.Served(catalog.CompressionNone); got.Digest != l.DiffID || got.Size != 30 {
		t.Errorf("none serves %+v, want the tar", got)
	}
	for _, c := range []string{"", catalog.CompressionGzip} {
		if got := l.Served(c); got.Digest != l.Digest {
			t.Errorf("%q serves %+v, want the gzip blob", c, got)
		}
	}
	if got := l.Served(catalog.CompressionZstd); got.Digest != l.Digest {
		t.Errorf("zstd without the zstd form serves %+v, want the gzip blob", got)
	}
	l.ZstdDigest, l.ZstdSize = digest.FromString("zst"), 9
	zst := catalog.LayerBlob{Digest: l.ZstdDigest, Size: 9, MediaType: "application/vnd.oci.image.layer.v1.tar+zstd"}
	if got := l.Blobs(); len(got) != 3 || got[2] != zst {
		t.Errorf("with the zstd form: blobs %+v", got)
	}
	if got := l.Served(catalog.CompressionZstd); got != zst {
		t.Errorf("zstd serves %+v, want %+v", got, zst)
	}
	if got := l.Served(catalog.CompressionNone); got.Digest != l.DiffID {
		t.Errorf("none serves %+v with the zstd form stored, want the tar", got)
	}
	l.TarSize = 0
	if got := l.Served(catalog.CompressionZstd); got != zst {
		t.Errorf("zstd without the tar form serves %+v, want %+v", got, zst)
	}
	o := l
	o.TarSize, o.ZstdDigest, o.ZstdSize = 30, "", 0
	if !l.Equal(o) {
		t.Error("Equal compares the stored forms; one diffID is one layer")
	}
}

// TestMergeKeepsForms: republishing a layer in more forms adds them;
// republishing it in fewer removes none.
func TestMergeKeepsForms(t *testing.T) {
	l := catalog.Layer{Platform: catalog.Platform{OS: "linux", Architecture: "amd64"}, Digest: digest.FromString("gz"),
		DiffID: digest.FromString("tar"), Size: 10, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Distro: "debian-13"}
	more := l
	more.TarSize, more.ZstdDigest, more.ZstdSize = 30, digest.FromString("zst"), 9
	rel := func(l catalog.Layer) catalog.Release {
		return catalog.Release{Name: "php", Version: semver.MustParse("8.2.36"), Layers: []catalog.Layer{l}}
	}
	merged, err := catalog.Merge(rel(l), rel(more), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Layers[0]; got.TarSize != 30 || got.ZstdDigest != more.ZstdDigest || got.ZstdSize != 9 {
		t.Errorf("more forms: merged layer %+v, want the tar and zstd forms", got)
	}
	merged, err = catalog.Merge(rel(more), rel(l), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Layers[0]; got.TarSize != 30 || got.ZstdDigest != more.ZstdDigest {
		t.Errorf("fewer forms: merged layer %+v, want the stored forms kept", got)
	}
}

func TestStackLayerCompression(t *testing.T) {
	for _, tc := range []struct{ value, err string }{
		{"gzip", ""}, {"none", ""}, {"", ""},
		{"zstd", ""},
		{"brotli", `layerCompression "brotli": want gzip, none or zstd`},
	} {
		y := "name: web\nbase: [base]\n"
		if tc.value != "" {
			y += "layerCompression: " + tc.value + "\n"
		}
		st, err := catalog.ParseStackYAML([]byte(y))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.value, err, tc.err)
		case tc.err == "":
			out, err := catalog.MarshalStackYAML(st)
			if err != nil {
				t.Fatal(err)
			}
			again, err := catalog.ParseStackYAML(out)
			if err != nil || again.LayerCompression != tc.value {
				t.Errorf("%q: round trip gives %q, %v", tc.value, again.LayerCompression, err)
			}
		}
	}
}
