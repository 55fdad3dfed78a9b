package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/sbom"
	"github.com/envreg/envreg/sbom/sbomtest"
)

// debsFixture writes, for plat's architecture, a package whose layer
// carries dpkg records (the distroless convention) and a machine-readable
// copyright file, and publishes it as debs 1.0.0 into storage.
func publishDebs(t *testing.T, storage []string) {
	t.Helper()
	for _, plat := range fixturePlatforms {
		root := filepath.Join(t.TempDir(), "rootfs")
		files := map[string]string{
			"var/lib/dpkg/status.d/graphicsmagick":          fmt.Sprintf("Package: graphicsmagick\nStatus: install ok installed\nArchitecture: %s\nVersion: 1.4+really1.3.40-4\n", plat.Architecture),
			"var/lib/dpkg/status.d/libgraphicsmagick-q16-3": fmt.Sprintf("Package: libgraphicsmagick-q16-3\nStatus: install ok installed\nArchitecture: %s\nVersion: 1.4+really1.3.40-4\n", plat.Architecture),
			"usr/share/doc/graphicsmagick/copyright":        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Expat\n",
		}
		for p, data := range files {
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		envreg(t, append(append([]string{"publish"}, storage...), "--name", "debs", "--version", "1.0.0",
			"--platform", plat.String(), "--from-dir", root, "--requires", "base *")...)
	}
}

// sbomOf finds the SBOM artifact of platform manifest m through the
// referrers API (go-containerregistry's remote.Referrers, as a client),
// fetches the artifact manifest and the SPDX blob with crane, and returns
// the artifact's digest and the SPDX bytes.
func sbomOf(t *testing.T, s *server, m v1.Descriptor) (v1.Hash, []byte) {
	t.Helper()
	subject, err := name.NewDigest(s.host+"/env@"+m.Digest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(subject, remote.WithFilter("artifactType", sbom.MediaType))
	if err != nil {
		t.Fatalf("referrers of %s: %v", m.Digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].ArtifactType != sbom.MediaType {
		t.Fatalf("referrers of %s: %+v, want one %s artifact", m.Digest, im.Manifests, sbom.MediaType)
	}
	art := im.Manifests[0].Digest
	out, err := exec.Command("crane", "manifest", "--insecure", s.host+"/env@"+art.String()).Output()
	if err != nil {
		t.Fatalf("crane manifest %s: %v", art, err)
	}
	var am ocispec.Manifest
	if err := json.Unmarshal(out, &am); err != nil {
		t.Fatal(err)
	}
	if am.Subject == nil || am.Subject.Digest.String() != m.Digest.String() || am.ArtifactType != sbom.MediaType || len(am.Layers) != 1 {
		t.Fatalf("artifact %s: %s", art, out)
	}
	data, err := exec.Command("crane", "blob", "--insecure", s.host+"/env@"+am.Layers[0].Digest.String()).Output()
	if err != nil {
		t.Fatalf("crane blob %s: %v", am.Layers[0].Digest, err)
	}
	return art, data
}

// checkSBOM parses an image SBOM back with the library, validates it and
// checks the Debian packages, their purls, and the package → layer mapping.
func checkSBOM(t *testing.T, data []byte, arch string, layers []v1.Descriptor) {
	t.Helper()
	doc := sbomtest.Check(t, data)
	purls, files := map[string]string{}, map[string]string{}
	for _, p := range doc.Packages {
		files[p.PackageName] = p.PackageFileName
		for _, r := range p.PackageExternalReferences {
			purls[p.PackageName] = r.Locator
		}
	}
	for pkg, want := range map[string]string{
		"graphicsmagick":          "pkg:deb/debian/graphicsmagick@1.4%2Breally1.3.40-4?arch=" + arch,
		"libgraphicsmagick-q16-3": "pkg:deb/debian/libgraphicsmagick-q16-3@1.4%2Breally1.3.40-4?arch=" + arch,
	} {
		if purls[pkg] != want {
			t.Errorf("purl of %s: %q, want %q", pkg, purls[pkg], want)
		}
	}
	var mapped []string
	for _, p := range doc.Packages {
		if strings.HasPrefix(string(p.PackageSPDXIdentifier), "Layer-") && !strings.Contains(string(p.PackageSPDXIdentifier), "-deb-") {
			mapped = append(mapped, p.PackageName+" "+p.PackageFileName)
		}
	}
	if len(mapped) != len(layers) {
		t.Fatalf("the SBOM maps %d packages to layers (%q), the manifest has %d layers", len(mapped), mapped, len(layers))
	}
	for i, l := range layers {
		if !strings.HasSuffix(mapped[i], " "+l.Digest.String()) {
			t.Errorf("layer %d is %s, the SBOM says %q", i, l.Digest, mapped[i])
		}
	}
	_ = files
}

// TestSBOMReferrers: every platform manifest of a composition has an SBOM
// artifact, listed by the referrers API with artifactType filtering, served
// by digest, and the same bytes after a restart; verify checks it and gc
// keeps it.
func TestSBOMReferrers(t *testing.T) {
	data := publishAll(t)
	publishDebs(t, []string{"--data", data})
	s := startServer(t, data)
	idx := pullIndex(t, s, "env:php-8.2_debs")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	arts := map[v1.Hash]v1.Hash{}
	blobs := map[v1.Hash][]byte{}
	for _, m := range im.Manifests {
		art, data := sbomOf(t, s, m)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		var layers []v1.Descriptor
		layers = append(layers, mf.Layers...)
		checkSBOM(t, data, m.Platform.Architecture, layers)
		arts[m.Digest], blobs[m.Digest] = art, data
	}
	// Another artifact type: filtered out, and the filter acknowledged.
	resp, body := s.get(t, "/v2/env/referrers/"+im.Manifests[0].Digest.String()+"?artifactType=application/example", "")
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" || !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("filtered referrers: %s %s", resp.Header, body)
	}
	// The index itself has no referrers.
	if _, body := s.get(t, "/v2/env/referrers/"+idxDigest(t, idx), ""); !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("referrers of the index: %s", body)
	}

	// A Docker client's manifests (schema 2) have their SBOMs too.
	_, body = s.get(t, "/v2/env/manifests/php-8.2_debs", "application/vnd.docker.distribution.manifest.list.v2+json")
	var list ocispec.Index
	if err := json.Unmarshal(body, &list); err != nil || len(list.Manifests) != 2 {
		t.Fatalf("docker manifest list: %v\n%s", err, body)
	}
	for _, m := range list.Manifests {
		_, body := s.get(t, "/v2/env/referrers/"+m.Digest.String(), "")
		var refs ocispec.Index
		if err := json.Unmarshal(body, &refs); err != nil || len(refs.Manifests) != 1 || refs.Manifests[0].ArtifactType != sbom.MediaType {
			t.Errorf("referrers of the Docker manifest %s: %v %s", m.Digest, err, body)
		}
	}

	s.stop(t)
	if out := envreg(t, "verify", "--data", data); !strings.Contains(out, "SBOM") {
		t.Errorf("verify does not mention the SBOM artifacts:\n%s", out)
	}
	envreg(t, "gc", "--data", data)
	s = startServer(t, data)
	for _, m := range im.Manifests {
		art, data := sbomOf(t, s, m)
		if art != arts[m.Digest] || !bytes.Equal(data, blobs[m.Digest]) {
			t.Errorf("%s: after a restart and gc, artifact %s, before %s (same bytes: %v)", m.Platform, art, arts[m.Digest], bytes.Equal(data, blobs[m.Digest]))
		}
	}
}

func idxDigest(t *testing.T, idx v1.ImageIndex) string {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestSBOMReplicas: two replicas on Redis + S3 store and list the same
// artifact, byte for byte, whichever is asked first.
func TestSBOMReplicas(t *testing.T) {
	storage := startRemoteStores(t, "sbom").storage
	publishAllTo(t, storage)
	publishDebs(t, storage)
	a := startServerWith(t, filepath.Join(t.TempDir(), "unused-a"), storage...)
	b := startServerWith(t, filepath.Join(t.TempDir(), "unused-b"), storage...)
	idx := pullIndex(t, a, "env:php-8.2_debs")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range im.Manifests {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		art1, data1 := sbomOf(t, first, m)
		art2, data2 := sbomOf(t, second, m)
		if art1 != art2 || !bytes.Equal(data1, data2) {
			t.Errorf("%s: replicas list %s and %s (same SPDX bytes: %v)", m.Platform, art1, art2, bytes.Equal(data1, data2))
		}
	}
}

// TestSBOMProvisioningAPI: a resolve with "sbom": true returns each
// platform's SBOM before anything is pulled, and names the artifact the
// referrers API then lists, carrying the same document.
func TestSBOMProvisioningAPI(t *testing.T) {
	data := publishAll(t)
	publishDebs(t, []string{"--data", data})
	s := startServer(t, data)
	out := s.resolveAPI(t, `{"tag": "php-8.2_debs", "sbom": true}`)
	if len(out.Platforms) != 2 {
		t.Fatalf("%d platforms", len(out.Platforms))
	}
	for _, p := range out.Platforms {
		if len(p.SBOM) == 0 || p.SBOMArtifact == "" {
			t.Fatalf("%s: no SBOM in the answer", p.Platform)
		}
		var layers []v1.Descriptor
		for _, l := range p.Layers {
			h, err := v1.NewHash(l.Digest)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, v1.Descriptor{Digest: h})
		}
		arch := strings.TrimPrefix(p.Platform, "linux/")
		checkSBOM(t, p.SBOM, arch, layers)
		h, err := v1.NewHash(p.Digest)
		if err != nil {
			t.Fatal(err)
		}
		art, data := sbomOf(t, s, v1.Descriptor{Digest: h})
		if art.String() != p.SBOMArtifact {
			t.Errorf("%s: the answer names artifact %s, the referrers API %s", p.Platform, p.SBOMArtifact, art)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(compact.Bytes(), p.SBOM) {
			t.Errorf("%s: the answer's SBOM differs from the artifact's document", p.Platform)
		}
	}
	// The SBOM of one package version's layer, per platform.
	resp, body := s.get(t, "/api/v1/packages/debs/1.0.0/sbom?platform=linux/arm64", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != sbom.MediaType {
		t.Fatalf("package SBOM: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	doc, err := sbom.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range doc.Packages {
		names = append(names, p.PackageName+" "+p.PackageExternalReferences[0].Locator+" "+p.PackageLicenseDeclared)
	}
	if len(names) != 3 || !strings.HasPrefix(names[0], "debs pkg:generic/envreg/debs@1.0.0?checksum=sha256%3A") ||
		names[1] != "graphicsmagick pkg:deb/debian/graphicsmagick@1.4%2Breally1.3.40-4?arch=arm64 MIT" {
		t.Errorf("package SBOM lists %q", names)
	}
	if resp, body := s.get(t, "/api/v1/packages/debs/1.0.0/sbom", ""); resp.StatusCode != 404 || !strings.Contains(string(body), "linux/amd64, linux/arm64") {
		t.Errorf("package SBOM without a platform: %d %s", resp.StatusCode, body)
	}
	resp, body = s.postJSON(t, "/api/v1/stacks/env/resolve", `{"tag": "php-8.2_debs"}`)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"sbom"`) {
		t.Errorf("a resolve without sbom: %d, mentions sbom: %v", resp.StatusCode, strings.Contains(string(body), `"sbom"`))
	}
}

// TestBundledSBOM: the SBOM of php-8.2_node-18_gm, composed from the
// bundled recipes (real Debian packages), lists php8.2-cli, nodejs and
// graphicsmagick and their libraries with their Debian versions and purls,
// for each platform manifest, through the referrers API.
func TestBundledSBOM(t *testing.T) {
	needDebian(t)
	data := filepath.Join(t.TempDir(), "data")
	// The recipes the tag needs, for every platform (the newest php 8.2
	// only): the rest of the bundled set (nodejs 24, npm, php 8.4, …) adds
	// minutes and nothing to what this test checks.
	recipes := bundledRecipeSubset(t, map[string]string{"    keep: 3\n": "    keep: 1\n"},
		"base/recipe.yaml", "php/8.2.yaml", "nodejs/18.yaml", "graphicsmagick/bookworm.yaml", "graphicsmagick/trixie.yaml")
	s := startServer(t, data, "--seed", recipes)
	versions, _ := catalogVersions(t, s)
	// The example: php 8.2 and nodejs 18 (both from bookworm, on
	// the bundled base), with the newest graphicsmagick.
	php, node, gm := newestOf(t, versions["php"], "8.2"), newestOf(t, versions["nodejs"], "18"), newest(versions["graphicsmagick"])
	// purls name the Debian release a package came from: bookworm's php
	// 8.2 and nodejs 18 (their Debian versions say ~deb12uN) debian-12 on
	// the trixie base; a package whose version names no release, the
	// base's (its os-release).
	baseDistro := fmt.Sprintf("debian-%d", newest(versions["base"]).Major())
	debRelease := regexp.MustCompile(`deb([0-9]+)u[0-9]+`)
	tag := fmt.Sprintf("php-%d.%d_node-%d_gm", php.Major(), php.Minor(), node.Major())
	r, err := name.ParseReference(s.host+"/env:"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 { // linux/amd64, linux/arm64, linux/arm/v7
		t.Fatalf("%s: %d platforms, want 3", tag, len(im.Manifests))
	}
	phpCLI := fmt.Sprintf("php%d.%d-cli", php.Major(), php.Minor())
	for _, m := range im.Manifests {
		_, data := sbomOf(t, s, m)
		doc := sbomtest.Check(t, data)
		arch := m.Platform.Architecture
		if arch == "arm" {
			arch = "armhf" // Debian's name for linux/arm/v7
		}
		purls := map[string]string{}
		for _, p := range doc.Packages {
			for _, ref := range p.PackageExternalReferences {
				if strings.HasPrefix(ref.Locator, "pkg:deb/") {
					purls[p.PackageName] = ref.Locator
				}
			}
		}
		// GraphicsMagick's library: libgraphicsmagick-q16-3 in bookworm,
		// libgraphicsmagick-q16-3t64 in trixie (the 64-bit time_t rename).
		gmLib := "libgraphicsmagick-q16-3"
		for name := range purls {
			if name == gmLib+"t64" {
				gmLib = name
			}
		}
		for pkg, version := range map[string]string{phpCLI: php.String() + "-", "nodejs": node.String(), "graphicsmagick": gm.String(), gmLib: gm.String()} {
			purl, ok := purls[pkg]
			if !ok {
				t.Errorf("%s: the SBOM does not list %s (%d Debian packages)", arch, pkg, len(purls))
				continue
			}
			distro := baseDistro
			if m := debRelease.FindStringSubmatch(purl); m != nil {
				distro = "debian-" + m[1]
			}
			if !strings.HasPrefix(purl, "pkg:deb/debian/"+pkg+"@") || !strings.Contains(purl, version) ||
				!strings.HasSuffix(purl, "?arch="+arch+"&distro="+distro) {
				t.Errorf("%s: purl of %s %q, want version %s, arch %s, distro %s", arch, pkg, purl, version, arch, distro)
			}
		}
		if len(purls) < 50 {
			t.Errorf("%s: %d Debian packages in the SBOM; the base alone has more", arch, len(purls))
		}
		t.Logf("%s: %d Debian packages, %d SPDX bytes", arch, len(purls), len(data))
	}
}

// TestSBOMOras: oras, a referrers client, discovers the SBOM of each
// platform manifest and pulls its SPDX document.
func TestSBOMOras(t *testing.T) {
	oras := tool(t, "oras")
	data := publishAll(t)
	publishDebs(t, []string{"--data", data})
	s := startServer(t, data)
	im, err := pullIndex(t, s, "env:php-8.2_debs").IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		subject := s.host + "/env@" + m.Digest.String()
		out := runTool(t, oras, "discover", "--plain-http", "--format", "json", "--artifact-type", sbom.MediaType, subject)
		var found struct {
			Referrers []struct {
				Digest       string `json:"digest"`
				ArtifactType string `json:"artifactType"`
			} `json:"referrers"`
		}
		if err := json.Unmarshal([]byte(out), &found); err != nil || len(found.Referrers) != 1 || found.Referrers[0].ArtifactType != sbom.MediaType {
			t.Fatalf("oras discover %s: %v\n%s", subject, err, out)
		}
		dir := t.TempDir()
		runTool(t, oras, "pull", "--plain-http", "-o", dir, s.host+"/env@"+found.Referrers[0].Digest)
		data, err := os.ReadFile(filepath.Join(dir, sbom.FileName))
		if err != nil {
			t.Fatalf("oras pull of the SBOM: %v", err)
		}
		var layers []v1.Descriptor
		img, err := remote.Image(ref(t, s, "env@"+m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, mf.Layers...)
		checkSBOM(t, data, m.Platform.Architecture, layers)
	}
}

// TestSBOMOnlyForOwnManifests: a stack composes SBOMs only for the
// manifests it composed. A manifest pushed to an ordinary repository has no
// referrers through the stack, and the stack does not serve it or compose
// anything for it.
func TestSBOMOnlyForOwnManifests(t *testing.T) {
	s := startServer(t, publishAll(t))
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s, "team/x:v1"), img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := s.get(t, "/v2/env/referrers/"+d.String(), "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("referrers through env of a manifest pushed to team/x: %d %s", resp.StatusCode, body)
	}
	if out := envreg(t, "verify", "--data", s.data); !strings.Contains(out, "0 SBOM artifacts") {
		t.Errorf("the referrers request stored an SBOM:\n%s", out)
	}
}

// TestSBOMPushedPackage: a package pushed to packages/<name>:<version>
// whose layer carries dpkg records has them in its SBOM, as a published
// one does.
func TestSBOMPushedPackage(t *testing.T) {
	crane := tool(t, "crane")
	s := startServer(t, publishAll(t))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range [][2]string{
		{"opt/tool/bin/tool", "#!/bin/sh\necho tool\n"},
		{"var/lib/dpkg/status.d/libtool-extra1", "Package: libtool-extra1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.4.7-7~deb12u1\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o755, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	zw.Close()
	layer := filepath.Join(t.TempDir(), "layer.tar.gz")
	if err := os.WriteFile(layer, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.host+"/team/tool-build:1")
	runTool(t, crane, "mutate", "--insecure", s.host+"/team/tool-build:1", "--set-platform", "linux/amd64",
		"--label", "io.envreg.package.requires=base ^12", "-t", s.host+"/packages/tool:1.0.0")
	resp, body := s.get(t, "/api/v1/packages/tool/1.0.0/sbom", "")
	if resp.StatusCode != 200 {
		t.Fatalf("SBOM of the pushed package: %d %s", resp.StatusCode, body)
	}
	want := `"referenceLocator":"pkg:deb/debian/libtool-extra1@2.4.7-7~deb12u1?arch=amd64"`
	if !strings.Contains(string(body), want) || !strings.Contains(string(body), `"name":"tool"`) {
		t.Errorf("SBOM of the pushed package lacks %s or the package itself:\n%s", want, body)
	}
}

// newestOf is the newest of vs whose version starts with prefix
// ("8.2": 8.2.x), failing the test when there is none.
func newestOf(t *testing.T, vs []*semver.Version, prefix string) *semver.Version {
	t.Helper()
	var in []*semver.Version
	for _, v := range vs {
		if v.String() == prefix || strings.HasPrefix(v.String(), prefix+".") {
			in = append(in, v)
		}
	}
	if len(in) == 0 {
		t.Fatalf("no bundled version %s.x (have %v)", prefix, vs)
	}
	return newest(in)
}
