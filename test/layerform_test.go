package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/sbom"
	"github.com/envreg/envreg/test/fixtures"
)

// TestLayerCompressionNone: a stack with layerCompression none serves the
// uncompressed tar the publishing job stored beside each gzip layer (publish --uncompressed-layers) (digest
// = diffID, application/vnd.oci.image.layer.v1.tar), and the client matrix
// reads it: crane and skopeo pull it into OCI layouts that validate layer
// by layer, the Docker engine pulls it (when one answers) with the same
// layers as the gzip stack's image, and the conformance suite's pull
// workflow passes against it.
func TestLayerCompressionNone(t *testing.T) {
	// The uncompressed form is stored only when asked for.
	data := filepath.Join(t.TempDir(), "data")
	for _, p := range fixtures.All() {
		publishFixtureTo(t, []string{"--data", data, "--uncompressed-layers"}, p)
	}
	stackFile := filepath.Join(t.TempDir(), "envtar.yaml")
	if err := os.WriteFile(stackFile, []byte("name: envtar\nbase: [base]\naliases: {node: nodejs, gm: graphicsmagick}\nlayerCompression: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envreg(t, "stack", "--data", data, stackFile)
	s := startServer(t, data)
	// A tag tags/list lists (one per package version), so the suite's
	// tag-listing checks apply.
	const tag = "php-8.2.36"

	// The manifests: every layer is the tar, its digest the diffID.
	_, gzBlobs := existingContent(t, s, "env", tag)
	manifests, blobs := existingContent(t, s, "envtar", tag)
	if len(blobs) != len(gzBlobs) {
		t.Errorf("envtar has %d blobs, env %d", len(blobs), len(gzBlobs))
	}

	// Each platform manifest has its SBOM, as in the gzip stack.
	for _, m := range manifests[1:] {
		if _, body := s.get(t, "/v2/envtar/referrers/"+m, ""); !strings.Contains(string(body), `"artifactType":"`+sbom.MediaType+`"`) {
			t.Errorf("referrers of envtar manifest %s: %s", m, body)
		}
	}

	t.Run("crane", func(t *testing.T) {
		crane := tool(t, "crane")
		dir := filepath.Join(t.TempDir(), "oci")
		runTool(t, crane, "pull", "--insecure", "--format", "oci", s.host+"/envtar:"+tag, dir)
		checkTarLayout(t, dir)
	})
	t.Run("skopeo", func(t *testing.T) {
		skopeo := tool(t, "skopeo")
		dir := filepath.Join(t.TempDir(), "oci")
		// An OCI layout destination makes skopeo compress uncompressed
		// layers unless the digests must stay.
		runTool(t, skopeo, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+s.host+"/envtar:"+tag, "oci:"+dir+":copy")
		checkTarLayout(t, dir)
	})
	t.Run("docker", func(t *testing.T) {
		docker := dockerEngine(t)
		tarImage, gzImage := s.host+"/envtar:"+tag, s.host+"/env:"+tag
		t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", tarImage, gzImage).Run() })
		runTool(t, docker, "pull", tarImage)
		runTool(t, docker, "pull", gzImage)
		layers := func(image string) string {
			return runTool(t, docker, "image", "inspect", "--format", "{{json .RootFS.Layers}}", image)
		}
		if got, want := layers(tarImage), layers(gzImage); got != want || strings.Count(got, "sha256:") != 2 {
			t.Errorf("docker: envtar layers %s, env layers %s; want the same 2 diffIDs (base, php)", got, want)
		}
	})
	t.Run("conformance", func(t *testing.T) {
		bin := buildConformance(t)
		runConformance(t, bin, conformanceEnv, map[string]string{
			"OCI_REGISTRY":          s.host,
			"OCI_REPO1":             "envtar",
			"OCI_REPO2":             "envtar",
			"OCI_RO_DATA_TAGS":      tag,
			"OCI_RO_DATA_MANIFESTS": strings.Join(manifests, " "),
			"OCI_RO_DATA_BLOBS":     strings.Join(blobs, " "),
		}, conformanceMustPass, false)
	})
	// gc keeps both forms of every layer, and verify checks both.
	if out, errOut, err := envregResult(t, "gc", "--data", data, "--grace", "0"); err != nil {
		t.Errorf("envreg gc: %v\n%s\n%s", err, out, errOut)
	}
	if out, errOut, err := envregResult(t, "verify", "--data", data); err != nil {
		t.Errorf("envreg verify: %v\n%s\n%s", err, out, errOut)
	}
	for _, b := range blobs {
		if resp, _ := s.get(t, "/v2/envtar/blobs/"+b, ""); resp.StatusCode != 200 {
			t.Errorf("after gc, GET blob %s: %d", b, resp.StatusCode)
		}
	}
}

// checkTarLayout validates the index pulled into the OCI layout dir and
// checks that every layer of every image is an uncompressed tar whose
// digest is its diffID.
func checkTarLayout(t *testing.T, dir string) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	// validate.Fast: ggcr's layout reader takes every layer blob for
	// compressed ("gzip: invalid header" on a tar). The clients verified
	// each blob's digest as they pulled it, and the loop below checks that
	// each layer's digest is its diffID, which is what the full check adds.
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Errorf("pulled layout does not validate: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var images []v1.Image
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			// skopeo writes the index it copied under a name: one level down.
			inner, ierr := idx.ImageIndex(d.Digest)
			if ierr != nil {
				t.Fatal(err)
			}
			m, _ := inner.IndexManifest()
			for _, d2 := range m.Manifests {
				img, err := inner.Image(d2.Digest)
				if err != nil {
					t.Fatal(err)
				}
				images = append(images, img)
			}
			continue
		}
		images = append(images, img)
	}
	if len(images) != 2 {
		t.Fatalf("%d images in the layout, want 2 platforms", len(images))
	}
	for _, img := range images {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range m.Layers {
			if l.MediaType != types.OCIUncompressedLayer || l.Digest != cf.RootFS.DiffIDs[i] {
				raw, _ := json.Marshal(l)
				t.Errorf("layer %d: %s, diffID %s; want an uncompressed tar whose digest is the diffID", i, raw, cf.RootFS.DiffIDs[i])
			}
		}
	}
}
