package sbom_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/sbom"
)

// layerTar returns a gzip tar of files (path → content).
func layerTar(t testing.TB, files [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const dep5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: php

Files: *
Copyright: The PHP Group
License: PHP-3.01

Files: ext/foo/*
License: BSD-3-clause or GPL-2+ with OpenSSL exception

License: PHP-3.01
 The text.
`

var debianLayer = [][2]string{
	{"usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"},
	{"usr/share/doc/php8.2-cli/copyright", dep5},
	{"usr/share/doc/libfoo1/copyright", "not machine-readable\n"},
	{"var/lib/dpkg/status.d/php8.2-cli", "Package: php8.2-cli\nStatus: install ok installed\nArchitecture: amd64\nVersion: 8.2.36-1~deb12u1\nDescription: php\n long text: here\n"},
	{"var/lib/dpkg/status.d/php8.2-cli.md5sums", "abc  usr/bin/php8.2\n"},
	{"var/lib/dpkg/status.d/libfoo1", "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:2.0+dfsg-3\n"},
	{"var/lib/dpkg/status.d/gone", "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n"},
}

func TestScan(t *testing.T) {
	c, err := sbom.Scan(t.Context(), bytes.NewReader(layerTar(t, debianLayer)))
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Component{
		{Type: "deb", Name: "libfoo1", Version: "1:2.0+dfsg-3", Architecture: "amd64"},
		{Type: "deb", Name: "php8.2-cli", Version: "8.2.36-1~deb12u1", Architecture: "amd64", Licenses: []string{"BSD-3-clause", "GPL-2+", "PHP-3.01"}},
	}
	if len(c.Components) != len(want) {
		t.Fatalf("components %+v, want %+v", c.Components, want)
	}
	for i := range want {
		if !c.Components[i].Equal(want[i]) {
			t.Errorf("component %d: %+v, want %+v", i, c.Components[i], want[i])
		}
	}
	if c.Distro != "debian-12" {
		t.Errorf("distro %q, want debian-12", c.Distro)
	}
	if _, err := sbom.Scan(t.Context(), strings.NewReader("not gzip")); err == nil {
		t.Error("Scan of a non-gzip layer: no error")
	}
}

func release(t *testing.T, name, version string, published time.Time, layers ...catalog.Layer) catalog.Release {
	t.Helper()
	return catalog.Release{Name: name, Version: semver.MustParse(version), Layers: layers, Published: published}
}

// TestImage renders an image SBOM twice, parses it back with the library,
// validates it, and checks the Debian packages, purls, licenses and the
// package → layer mapping.
func TestImage(t *testing.T) {
	amd64 := catalog.Platform{OS: "linux", Architecture: "amd64"}
	c, err := sbom.Scan(t.Context(), bytes.NewReader(layerTar(t, debianLayer)))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	base := release(t, "base", "12.0.0", t0, catalog.Layer{Platform: amd64, Digest: digest.FromString("base"), DiffID: digest.FromString("b"), Size: 1, MediaType: ocispec.MediaTypeImageLayerGzip, Distro: "debian-12"})
	php := release(t, "php", "8.2.36+1.deb12u1", t0.Add(time.Hour), catalog.Layer{Platform: amd64, Digest: digest.FromString("php"), DiffID: digest.FromString("p"), Size: 1, MediaType: ocispec.MediaTypeImageLayerGzip, Components: c.Components})
	php.Requires = []catalog.Constraint{{Name: "base", Range: "^12"}}
	in := sbom.ImageInput{Stack: "env", Platform: amd64, Manifest: digest.FromString("manifest"), Releases: []catalog.Release{base, php}}
	a, err := sbom.Image(in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sbom.Image(in)
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings differ")
	}
	checkSchema(t, a)
	doc, err := sbom.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	var any spdx.Document = *doc
	if err := spdxlib.ValidateDocument(&any); err != nil {
		t.Fatalf("validate: %v\n%s", err, a)
	}
	if got, want := doc.CreationInfo.Created, "2026-11-01T11:00:00Z"; got != want {
		t.Errorf("created %s, want %s (the newest publish time)", got, want)
	}
	purls := map[string]string{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			purls[p.PackageName] = r.Locator
		}
		if p.PackageName == "php8.2-cli" && p.PackageLicenseDeclared != "(BSD-3-Clause AND GPL-2.0-or-later AND PHP-3.01)" {
			t.Errorf("php8.2-cli declared license %q", p.PackageLicenseDeclared)
		}
		if p.PackageName == "php" && p.PackageFileName != php.Layers[0].Digest.String() {
			t.Errorf("php's file name %q, want its layer digest", p.PackageFileName)
		}
	}
	for name, want := range map[string]string{
		"php8.2-cli": "pkg:deb/debian/php8.2-cli@8.2.36-1~deb12u1?arch=amd64&distro=debian-12",
		"libfoo1":    "pkg:deb/debian/libfoo1@1%3A2.0%2Bdfsg-3?arch=amd64&distro=debian-12",
		"php":        "pkg:generic/envreg/php@8.2.36%2B1.deb12u1?checksum=sha256%3A" + php.Layers[0].Digest.Encoded(),
	} {
		if purls[name] != want {
			t.Errorf("purl of %s: %q, want %q", name, purls[name], want)
		}
	}
	if !strings.Contains(doc.Packages[0].PackageComment, "php 8.2.36+1.deb12u1, layer "+php.Layers[0].Digest.String()+", requires base ^12") {
		t.Errorf("resolution record: %q", doc.Packages[0].PackageComment)
	}
	art, err := sbom.NewArtifact(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: in.Manifest, Size: 10}, a)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sbom.Layer(php, php.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, l)
	if art.Manifest.ArtifactType != sbom.MediaType || !strings.Contains(string(art.Data), `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+in.Manifest.String()) {
		t.Errorf("artifact %s", art.Data)
	}
}

// TestImageGoldenDigest pins the bytes of an image SBOM: a change to what
// is rendered (or to the library's writer) changes every artifact digest,
// which must be a decision (update the digest here and say why).
func TestImageGoldenDigest(t *testing.T) {
	amd64 := catalog.Platform{OS: "linux", Architecture: "amd64"}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	comps := []catalog.Component{{Type: "deb", Name: "php8.2-cli", Version: "8.2.36-1~deb12u1", Architecture: "amd64", Licenses: []string{"PHP-3.01", "Zend-2.0"}}}
	base := release(t, "base", "12.0.0", t0, catalog.Layer{Platform: amd64, Digest: digest.FromString("base"), DiffID: digest.FromString("b"), Size: 1, MediaType: ocispec.MediaTypeImageLayerGzip, Distro: "debian-12"})
	php := release(t, "php", "8.2.36", t0.Add(time.Hour), catalog.Layer{Platform: amd64, Digest: digest.FromString("php"), DiffID: digest.FromString("p"), Size: 2, MediaType: ocispec.MediaTypeImageLayerGzip, Components: comps})
	data, err := sbom.Image(sbom.ImageInput{Stack: "env", Platform: amd64, Manifest: digest.FromString("manifest"), Releases: []catalog.Release{base, php}})
	if err != nil {
		t.Fatal(err)
	}
	const want = "sha256:95954f50f0cb25695ee868337cf578110bc5c3fa820b354e1d24c9f2aeaa012b"
	if got := digest.FromBytes(data); got != want {
		t.Errorf("image SBOM digest %s, want %s\n%s", got, want, data)
	}
}

// TestImageLayerDistro: packages of a layer that names its own
// distribution (a Debian recipe from another release than the base's) get
// that distro in their purls; those of a layer that names none get the
// base's.
func TestImageLayerDistro(t *testing.T) {
	amd64 := catalog.Platform{OS: "linux", Architecture: "amd64"}
	c, err := sbom.Scan(t.Context(), bytes.NewReader(layerTar(t, debianLayer)))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	layer := func(name, distro string) catalog.Layer {
		return catalog.Layer{Platform: amd64, Digest: digest.FromString(name), DiffID: digest.FromString(name + " tar"), Size: 1,
			MediaType: ocispec.MediaTypeImageLayerGzip, Components: c.Components, Distro: distro}
	}
	base := release(t, "base", "13.8.0", t0, layer("base", "debian-13"))
	php := release(t, "php", "8.2.36+1.deb12u1", t0, layer("php", "debian-12"))
	other := release(t, "other", "1.0.0", t0, layer("other", ""))
	data, err := sbom.Image(sbom.ImageInput{Stack: "env", Platform: amd64, Manifest: digest.FromString("m"), Releases: []catalog.Release{base, php, other}})
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, data)
	doc, err := sbom.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	distros := map[string]int{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if _, q, ok := strings.Cut(r.Locator, "&distro="); ok && strings.HasPrefix(r.Locator, "pkg:deb/debian/php8.2-cli@") {
				distros[q]++
			}
		}
	}
	// php8.2-cli is in each of the three layers: base's and other's say
	// debian-13, php's own debian-12.
	if distros["debian-13"] != 2 || distros["debian-12"] != 1 {
		t.Errorf("php8.2-cli purl distros %v, want debian-13 twice (base, other) and debian-12 once (php's layer)", distros)
	}
}
