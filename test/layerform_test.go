package test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"

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
	f := newFormStack(t, "--uncompressed-layers", "envtar", "none")
	s, tag := f.s, formTag

	pullFormWithCraneAndSkopeo(t, s.host+"/envtar:"+tag, types.OCIUncompressedLayer)
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
	f.checkConformanceAndGC(t)
}

// formTag is the tag the layer-form tests pull: one that tags/list lists
// (one per package version), so the suite's tag-listing checks apply.
const formTag = "php-8.2.36"

// formStack is a store of the fixture packages published with a layer
// form's flag, served, with a stack that serves that form.
type formStack struct {
	s                *server
	data, repo       string
	manifests, blobs []string // of formTag in repo, index first
}

// newFormStack publishes the fixtures with publishFlag (--uncompressed-layers,
// --zstd-layers), adds stack repo with layerCompression form, starts a
// server, and checks that repo's formTag has as many blobs as env's and
// an SBOM per platform manifest, as in the gzip stack.
func newFormStack(t *testing.T, publishFlag, repo, form string) formStack {
	t.Helper()
	f := formStack{data: filepath.Join(t.TempDir(), "data"), repo: repo}
	for _, p := range fixtures.All() {
		publishFixtureTo(t, []string{"--data", f.data, publishFlag}, p)
	}
	stackFile := filepath.Join(t.TempDir(), repo+".yaml")
	if err := os.WriteFile(stackFile, []byte("name: "+repo+"\nbase: [base]\naliases: {node: nodejs, gm: graphicsmagick}\nlayerCompression: "+form+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envreg(t, "stack", "--data", f.data, stackFile)
	f.s = startServer(t, f.data)
	_, gzBlobs := existingContent(t, f.s, "env", formTag)
	f.manifests, f.blobs = existingContent(t, f.s, repo, formTag)
	if len(f.blobs) != len(gzBlobs) {
		t.Errorf("%s has %d blobs, env %d", repo, len(f.blobs), len(gzBlobs))
	}
	for _, m := range f.manifests[1:] {
		if _, body := f.s.get(t, "/v2/"+repo+"/referrers/"+m, ""); !strings.Contains(string(body), `"artifactType":"`+sbom.MediaType+`"`) {
			t.Errorf("referrers of %s manifest %s: %s", repo, m, body)
		}
	}
	return f
}

// checkConformanceAndGC runs the conformance suite's pull workflow against
// the stack, then gc, which keeps every form of every layer, and verify,
// which checks them; every blob is still served.
func (f formStack) checkConformanceAndGC(t *testing.T) {
	t.Helper()
	t.Run("conformance", func(t *testing.T) {
		bin := buildConformance(t)
		runConformance(t, bin, conformanceEnv, map[string]string{
			"OCI_REGISTRY":          f.s.host,
			"OCI_REPO1":             f.repo,
			"OCI_REPO2":             f.repo,
			"OCI_RO_DATA_TAGS":      formTag,
			"OCI_RO_DATA_MANIFESTS": strings.Join(f.manifests, " "),
			"OCI_RO_DATA_BLOBS":     strings.Join(f.blobs, " "),
		}, conformanceMustPass, false)
	})
	if out, errOut, err := envregResult(t, "gc", "--data", f.data, "--grace", "0"); err != nil {
		t.Errorf("envreg gc: %v\n%s\n%s", err, out, errOut)
	}
	if out, errOut, err := envregResult(t, "verify", "--data", f.data); err != nil {
		t.Errorf("envreg verify: %v\n%s\n%s", err, out, errOut)
	}
	for _, b := range f.blobs {
		if resp, _ := f.s.get(t, "/v2/"+f.repo+"/blobs/"+b, ""); resp.StatusCode != 200 {
			t.Errorf("after gc, GET blob %s: %d", b, resp.StatusCode)
		}
	}
}

// checkFormLayout validates the index pulled into the OCI layout dir and
// checks that it holds 2 images (the platforms) and that every layer of
// each is of media type want and, read from the layout and decompressed
// as that type says (a tar as it is, zstd with zstd), is its diffID.
// validate.Fast: ggcr's layout reader takes every layer blob for gzip
// ("gzip: invalid header" on a tar or zstd blob). The clients verified
// each blob's digest as they pulled it; the diffID check is what the full
// validation adds.
// pullFormWithCraneAndSkopeo pulls image (every platform) with crane and
// with skopeo into OCI layouts and checks that every layer is of the media
// type want (checkFormLayout).
func pullFormWithCraneAndSkopeo(t *testing.T, image string, want types.MediaType) {
	t.Run("crane", func(t *testing.T) {
		crane := tool(t, "crane")
		dir := filepath.Join(t.TempDir(), "oci")
		runTool(t, crane, "pull", "--insecure", "--format", "oci", image, dir)
		checkFormLayout(t, dir, want)
	})
	t.Run("skopeo", func(t *testing.T) {
		skopeo := tool(t, "skopeo")
		dir := filepath.Join(t.TempDir(), "oci")
		// An OCI layout destination makes skopeo recompress layers
		// unless the digests must stay.
		runTool(t, skopeo, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+image, "oci:"+dir+":copy")
		checkFormLayout(t, dir, want)
	})
}

func checkFormLayout(t *testing.T, dir string, want types.MediaType) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Errorf("pulled layout does not validate: %v", err)
	}
	n := 0
	forEachImage(t, idx, func(img v1.Image) {
		n++
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range m.Layers {
			if l.MediaType != want {
				raw, _ := json.Marshal(l)
				t.Errorf("layer %d: %s, want %s", i, raw, want)
				continue
			}
			if got := uncompressedDigest(t, lp, l); got != cf.RootFS.DiffIDs[i].String() {
				t.Errorf("layer %d (%s) is the tar %s, want its diffID %s", i, l.Digest, got, cf.RootFS.DiffIDs[i])
			}
		}
	})
	if n != 2 {
		t.Errorf("%d images in the layout, want 2 platforms", n)
	}
}

// uncompressedDigest reads layer l's blob from the layout and returns the
// digest of the tar in it (decompressed for zstd, as it is for a tar).
func uncompressedDigest(t *testing.T, lp layout.Path, l v1.Descriptor) string {
	t.Helper()
	blob, err := lp.Blob(l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	var r io.Reader = blob
	if l.MediaType == types.OCILayerZStd {
		dec, err := zstd.NewReader(blob)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		r = dec
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("reading layer %s: %v", l.Digest, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
