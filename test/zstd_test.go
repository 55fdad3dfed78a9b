package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestLayerCompressionZstd: a stack with layerCompression zstd serves the
// zstd form the publishing job stored beside each gzip layer (publish
// --zstd-layers) as application/vnd.oci.image.layer.v1.tar+zstd, with the
// same diffIDs as the gzip stack's images, and the clients
// that read zstd read it: crane and skopeo pull it into OCI layouts that
// validate layer by layer (each zstd blob decompresses to its diffID),
// containerd (a private one, ctr) pulls and unpacks it, and the
// conformance suite's pull workflow passes against it. Docker 20.10 does
// not read zstd: that is why the form is a stack's choice.
func TestLayerCompressionZstd(t *testing.T) {
	f := newFormStack(t, "--zstd-layers", "envzst", "zstd")
	s, tag := f.s, formTag
	// The gzip stack's images have the zstd stack's diffIDs: only the
	// layer descriptors differ.
	for _, plat := range []string{"amd64", "arm64"} {
		gz := imageManifest(t, s, "env", tag, plat)
		zst := imageManifest(t, s, "envzst", tag, plat)
		if g, z := diffIDs(t, s, "env", gz), diffIDs(t, s, "envzst", zst); g != z || strings.Count(g, "sha256:") != 2 {
			t.Errorf("%s: diffIDs %s in env, %s in envzst; want the same 2 (base, php)", plat, g, z)
		}
		for i, l := range zst.Layers {
			if l.MediaType != types.OCILayerZStd || i < len(gz.Layers) && l.Digest == gz.Layers[i].Digest {
				t.Errorf("%s: envzst layer %d is %s %s, want a zstd blob of its own", plat, i, l.MediaType, l.Digest)
			}
		}
	}

	pullFormWithCraneAndSkopeo(t, s.host+"/envzst:"+tag, types.OCILayerZStd)
	t.Run("containerd", func(t *testing.T) {
		ctr := privateContainerd(t)
		for _, plat := range []string{"linux/amd64", "linux/arm64"} {
			// ctr pull unpacks every layer into the snapshotter, checking
			// each decompressed layer against the config's diffID.
			out := ctr("images", "pull", "--plain-http", "--snapshotter", "native", "--platform", plat, s.host+"/envzst:"+tag)
			if !strings.Contains(out, "unpacking "+plat) || !strings.Contains(out, "done") {
				t.Errorf("ctr pull %s: %s", plat, out)
			}
		}
		if out := ctr("images", "check"); !strings.Contains(out, "complete") {
			t.Errorf("ctr images check: %s", out)
		}
	})
	f.checkConformanceAndGC(t)
}

// diffIDs returns the rootfs diff_ids of the config of m, as JSON.
func diffIDs(t *testing.T, s *server, repo string, m v1.Manifest) string {
	t.Helper()
	resp, body := s.get(t, "/v2/"+repo+"/blobs/"+m.Config.Digest.String(), "")
	var cf v1.ConfigFile
	if resp.StatusCode != 200 || json.Unmarshal(body, &cf) != nil {
		t.Fatalf("config %s: %d %s", m.Config.Digest, resp.StatusCode, body)
	}
	out, _ := json.Marshal(cf.RootFS.DiffIDs)
	return string(out)
}

// imageManifest fetches the image manifest of tag in repo for linux/arch.
func imageManifest(t *testing.T, s *server, repo, tag, arch string) v1.Manifest {
	t.Helper()
	resp, body := s.get(t, "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.index.v1+json")
	if resp.StatusCode != 200 {
		t.Fatalf("%s:%s: %d %s", repo, tag, resp.StatusCode, body)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.Architecture == arch {
			resp, body := s.get(t, "/v2/"+repo+"/manifests/"+d.Digest.String(), string(d.MediaType))
			var m v1.Manifest
			if resp.StatusCode != 200 || json.Unmarshal(body, &m) != nil {
				t.Fatalf("%s@%s: %d %s", repo, d.Digest, resp.StatusCode, body)
			}
			return m
		}
	}
	t.Fatalf("%s:%s has no %s image", repo, tag, arch)
	return v1.Manifest{}
}

// forEachImage calls fn with every image of idx, one index level down too
// (skopeo writes the index it copied under a name).
func forEachImage(t *testing.T, idx v1.ImageIndex, fn func(v1.Image)) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			inner, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			forEachImage(t, inner, fn)
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		fn(img)
	}
}

// privateContainerd starts a containerd of the test's own (its own root,
// state and socket, no CRI plugin), stopped by PID when the test ends, and
// returns a function that runs ctr against it in namespace envreg. Without
// containerd and ctr (Debian's containerd package, which the Docker engine
// depends on) the test skips, and fails with CI=true; it needs root.
func privateContainerd(t *testing.T) func(args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "a private containerd needs root (run as root, or in CI)")
	}
	bin, ctrBin := tool(t, "containerd"), tool(t, "ctr")
	dir, err := os.MkdirTemp("", "ctrd") // short: a unix socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	})
	ctr := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctrBin, append([]string{"--address", sock, "--namespace", "envreg"}, args...)...).CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("ctr %s: %v\n%s\ncontainerd log:\n%s", strings.Join(args, " "), err, out, log)
		}
		return string(out)
	}
	// Wait for its socket to answer (or for it to exit).
	deadline := time.Now().Add(time.Minute)
	for {
		err := exec.Command(ctrBin, "--address", sock, "--timeout", "2s", "version").Run()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("containerd exited: %v\n%s", werr, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %v", sock, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the socket, not waiting for an event of known length
	}
	return ctr
}
