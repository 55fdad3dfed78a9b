package catalog_test

import (
	"strings"
	"testing"

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
	o := l
	o.TarSize = 0
	if !l.Equal(o) {
		t.Error("Equal compares TarSize; one diffID is one tar")
	}
}

func TestStackLayerCompression(t *testing.T) {
	for _, tc := range []struct{ value, err string }{
		{"gzip", ""}, {"none", ""}, {"", ""},
		{"zstd", "zstd is not supported yet"},
		{"brotli", `layerCompression "brotli": want gzip or none`},
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
