package manifestgen_test

import (
	"errors"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/manifestgen"
)

// TestReadCompositionRoundTrip reads back what Generate wrote, in both
// formats: the stack, every version and every platform's manifest.
func TestReadCompositionRoundTrip(t *testing.T) {
	for _, f := range formats {
		res := fixture()
		im := generate(t, res, f)
		c, err := manifestgen.ReadComposition(im.Index.Data, im.Index.Descriptor.MediaType)
		if err != nil {
			t.Fatalf("%v: ReadComposition: %v", f, err)
		}
		if c.Stack != "env" {
			t.Errorf("%v: Stack = %q, want env", f, c.Stack)
		}
		if len(c.Versions) != len(res.Releases) {
			t.Errorf("%v: %d versions, want %d: %v", f, len(c.Versions), len(res.Releases), c.Versions)
		}
		for _, rel := range res.Releases {
			if v := c.Versions[rel.Name]; v == nil || !v.Equal(rel.Version) {
				t.Errorf("%v: version of %s = %v, want %v", f, rel.Name, v, rel.Version)
			}
		}
		for _, p := range res.Platforms {
			m, _ := im.Manifest(p)
			if got := c.Manifests[p]; got != m.Descriptor.Digest {
				t.Errorf("%v: manifest of %s = %s, want %s", f, p, got, m.Descriptor.Digest)
			}
		}
	}
}

func TestReadCompositionRefuses(t *testing.T) {
	im := generate(t, fixture(), manifestgen.FormatOCI)
	for _, tc := range []struct {
		name, data, mediaType, reason string
	}{
		{"not JSON", "{", ocispec.MediaTypeImageIndex, "it is not JSON"},
		{"a manifest", `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `"}`, "",
			"it is a " + ocispec.MediaTypeImageManifest + ", not an image index (use the index digest, the one a pinned reference names)"},
		{"media type from the store", `{"schemaVersion":2}`, ocispec.MediaTypeImageManifest,
			"it is a " + ocispec.MediaTypeImageManifest + ", not an image index (use the index digest, the one a pinned reference names)"},
		{"no annotations", `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[]}`, "",
			"it has no io.envreg.package.* annotations"},
		{"bad version", `{"schemaVersion":2,"annotations":{"io.envreg.package.php":"8.2"}}`, ocispec.MediaTypeImageIndex,
			`annotation io.envreg.package.php="8.2" is not a version`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifestgen.ReadComposition([]byte(tc.data), tc.mediaType)
			var nc *manifestgen.NotComposedError
			if !errors.As(err, &nc) || nc.Reason != tc.reason {
				t.Fatalf("err = %v, want a NotComposedError with reason %q", err, tc.reason)
			}
		})
	}
	if _, err := manifestgen.ReadComposition(im.Index.Data, ""); err != nil {
		t.Errorf("index without a stored media type: %v", err)
	}
}
