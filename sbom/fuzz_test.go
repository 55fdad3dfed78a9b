package sbom_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/sbom"
)

// FuzzScan feeds Scan pushed-layer-like input: a gzip tar whose dpkg
// record, copyright file and os-release are arbitrary. Scan must not
// panic, and what it returns must render as an SBOM that parses back.
func FuzzScan(f *testing.F) {
	f.Add([]byte("Package: a\nVersion: 1\nArchitecture: amd64\n"), []byte("Format: copyright-format\n\nFiles: *\nLicense: GPL-2+ with X exception\n"), []byte("ID=debian\nVERSION_ID=12\n"))
	f.Add([]byte("Package: \xff\nVersion: 1:2~3+4\n\n\nPackage: b\nStatus: deinstall\nVersion: 2\n"), []byte(""), []byte("ID='x'"))
	f.Fuzz(func(t *testing.T, record, copyright, osRelease []byte) {
		layer := layerTar(t, [][2]string{
			{"etc/os-release", string(osRelease)},
			{"usr/share/doc/a/copyright", string(copyright)},
			{"var/lib/dpkg/status.d/a", string(record)},
		})
		c, err := sbom.Scan(t.Context(), bytes.NewReader(layer))
		if err != nil {
			t.Fatal(err)
		}
		p := catalog.Platform{OS: "linux", Architecture: "amd64"}
		rel := catalog.Release{Name: "a", Version: semver.MustParse("1.0.0"), Published: time.Unix(0, 0), Layers: []catalog.Layer{{
			Platform: p, Digest: digest.FromBytes(layer), DiffID: digest.FromString("d"), Size: int64(len(layer)),
			MediaType: ocispec.MediaTypeImageLayerGzip, Components: c.Components, Distro: c.Distro}}}
		data, err := sbom.Layer(rel, rel.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sbom.Parse(data); err != nil {
			t.Fatalf("the SBOM does not parse back: %v\n%s", err, data)
		}
		checkSchema(t, data)
	})
}
