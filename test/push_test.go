package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/test/fixtures"
)

// Pushing with real clients: docker (through docker login and the token
// flow), crane and skopeo. Each pushes, then pulls back and compares bytes.

// htpasswd writes an htpasswd file with one bcrypt user.
func htpasswd(t *testing.T, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawManifest GETs a manifest's bytes as the registry serves them.
func rawManifest(t *testing.T, s *server, repo, ref string) ([]byte, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s:%s: %d %s", repo, ref, resp.StatusCode, body)
	}
	return body, resp.Header.Get("Docker-Content-Digest")
}

// packageLayer writes a gzip tar holding one executable script.
func packageLayer(t *testing.T, dir, path, content string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	zw.Close()
	p := filepath.Join(dir, "layer.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitComposed polls a composed tag until it resolves and returns how long
// that took after the push returned.
func waitComposed(t *testing.T, s *server, tag string, pushed time.Time) time.Duration {
	t.Helper()
	for {
		resp, err := http.Head(s.url("/v2/env/manifests/" + tag))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(pushed)
			}
		}
		if time.Since(pushed) > 5*time.Second {
			t.Fatalf("env:%s not resolvable 5 s after the push", tag)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCranePush(t *testing.T) {
	crane := tool(t, "crane")
	s := startServer(t, publishAll(t))

	// An OCI layout with a random two-platform index, pushed and pulled back.
	src := filepath.Join(t.TempDir(), "src")
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(src, idx)
	if err != nil {
		t.Fatal(err)
	}
	_ = lp
	ref := s.host + "/team/app:v1"
	runTool(t, crane, "push", "--insecure", "--index", src, ref)
	wantDigest, _ := idx.Digest()
	if got := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", ref)); got != wantDigest.String() {
		t.Fatalf("crane digest after push: %s, pushed %s", got, wantDigest)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	runTool(t, crane, "pull", "--insecure", "--format", "oci", ref, dst)
	sameBlobsSubset(t, dst, src)
	if _, err := os.Stat(filepath.Join(dst, "blobs", "sha256", wantDigest.Hex)); err != nil {
		t.Fatalf("pulled layout lacks the index blob: %v", err)
	}

	// crane copy between repositories (mounts), and the catalog lists both.
	runTool(t, crane, "copy", "--insecure", ref, s.host+"/team/copy:v1")
	if got := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", s.host+"/team/copy:v1")); got != wantDigest.String() {
		t.Fatalf("copied digest %s, want %s", got, wantDigest)
	}
	repos := strings.Fields(runTool(t, crane, "catalog", "--insecure", s.host))
	if !slices.Equal(repos, []string{"env", "team/app", "team/copy"}) {
		t.Fatalf("crane catalog: %v", repos)
	}

	// A package: a layer appended to an empty image, labelled, pushed to
	// packages/<name>:<version>; then composed into an environment.
	work := t.TempDir()
	layer := packageLayer(t, work, "opt/hello/bin/hello", "#!/bin/sh\necho hello\n")
	runTool(t, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.host+"/team/hello-build:1")
	runTool(t, crane, "mutate", "--insecure", s.host+"/team/hello-build:1",
		"--set-platform", "linux/amd64",
		"--label", "io.envreg.package.env.path=/opt/hello/bin",
		"--label", "io.envreg.package.requires=base ^12",
		"-t", s.host+"/packages/hello:2.1.0")
	pushed := time.Now()
	took := waitComposed(t, s, "hello-2.1", pushed)
	t.Logf("env:hello-2.1 resolvable %s after crane mutate (push) returned", took)
	if took > time.Second {
		t.Errorf("the pushed package took %s to show up, want within 1 s", took)
	}
	var cfg struct{ Config struct{ Env []string } }
	out := runTool(t, crane, "config", "--insecure", "--platform", "linux/amd64", s.host+"/env:hello-2.1")
	if err := json.Unmarshal([]byte(out), &cfg); err != nil || !strings.Contains(envValue(cfg.Config.Env, "PATH"), "/opt/hello/bin") {
		t.Fatalf("env:hello-2.1 config: %v %s", err, out)
	}
	// Two layers refused, with a clear message, and nothing registered.
	runTool(t, crane, "append", "--insecure", "-f", layer, "-b", s.host+"/team/hello-build:1", "-t", s.host+"/team/hello-two:1")
	cmd := exec.Command(crane, "mutate", "--insecure", s.host+"/team/hello-two:1", "--set-platform", "linux/amd64", "-t", s.host+"/packages/hello:2.2.0")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "MANIFEST_INVALID") || !strings.Contains(string(msg), "exactly one layer") {
		t.Fatalf("pushing a two-layer package: %v\n%s", err, msg)
	}
	if resp, err := http.Head(s.url("/v2/env/manifests/hello-2.2")); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("env:hello-2.2 after a refused push: %v %v", resp.StatusCode, err)
	}
}

func TestSkopeoPush(t *testing.T) {
	skopeo := tool(t, "skopeo")
	s := startServer(t, publishAll(t))

	// A composed image copied into an ordinary repository: the same bytes.
	src := "docker://" + s.host + "/env:php-8.2_node-20"
	dst := "docker://" + s.host + "/team/skopeo:v1"
	runTool(t, skopeo, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst)
	a := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", src)
	b := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", dst)
	if a != b {
		t.Fatalf("copied index differs:\n%s\n%s", a, b)
	}
	// From an OCI layout on disk to the registry and back.
	dir := filepath.Join(t.TempDir(), "oci")
	idx, _ := random.Index(1024, 1, 2)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "random"})); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	runTool(t, skopeo, "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:"+dir+":random", "docker://"+s.host+"/team/skopeo:random")
	_, got := rawManifest(t, s, "team/skopeo", "random")
	if got != want.String() {
		t.Fatalf("pushed random index: digest %s, want %s", got, want)
	}
	back := filepath.Join(t.TempDir(), "back")
	runTool(t, skopeo, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+s.host+"/team/skopeo:random", "oci:"+back+":x")
	sameBlobsSubset(t, dir, back)
}

// sameBlobsSubset checks that every blob of b is in a with the same bytes.
func sameBlobsSubset(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(b, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		got, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(b, p)
		want, rerr := os.ReadFile(filepath.Join(a, rel))
		if rerr != nil || !bytes.Equal(got, want) {
			t.Errorf("blob %s: not the pushed bytes (%v)", rel, rerr)
		}
		n++
		return nil
	})
	if n < 3 {
		t.Fatalf("pulled layout holds %d blobs", n)
	}
}

func TestDockerPush(t *testing.T) {
	docker := dockerEngine(t)
	pw := htpasswd(t, "ci", "s3cret-pw")
	s := startServer(t, publishAll(t), "--auth-htpasswd", pw)
	cfg := t.TempDir() // docker's credentials stay in the test
	d := func(args ...string) string { return runTool(t, docker, append([]string{"--config", cfg}, args...)...) }

	// Anonymous pull works; an anonymous push is refused.
	pulled := s.host + "/env:php-8.2_node-20"
	pushedRef := s.host + "/team/docker:v1"
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", pulled, pushedRef).Run() })
	d("pull", pulled)
	d("tag", pulled, pushedRef)
	if out, err := exec.Command(docker, "--config", cfg, "push", pushedRef).CombinedOutput(); err == nil {
		t.Fatalf("anonymous docker push succeeded:\n%s", out)
	}

	// docker login (the token flow), then push.
	login := exec.Command(docker, "--config", cfg, "login", "--username", "ci", "--password-stdin", s.host)
	login.Stdin = strings.NewReader("s3cret-pw")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	bad := exec.Command(docker, "--config", t.TempDir(), "login", "--username", "ci", "--password-stdin", s.host)
	bad.Stdin = strings.NewReader("wrong")
	if out, err := bad.CombinedOutput(); err == nil {
		t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
	}
	d("push", pushedRef)

	// The pushed image's config and layers are the pulled ones, byte for byte.
	imageID := strings.TrimSpace(d("image", "inspect", "--format", "{{.Id}}", pushedRef))
	d("image", "rm", pushedRef)
	d("pull", pushedRef)
	if again := strings.TrimSpace(d("image", "inspect", "--format", "{{.Id}}", pushedRef)); again != imageID {
		t.Fatalf("image id after push and pull %s, before %s", again, imageID)
	}
	body, _ := rawManifest(t, s, "team/docker", "v1")
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("pushed manifest: %v %s", err, body)
	}
	if m.Config.Digest != imageID {
		t.Fatalf("pushed config %s, image id %s", m.Config.Digest, imageID)
	}
	for _, l := range m.Layers {
		resp, err := http.Get(s.url("/v2/team/docker/blobs/" + l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || fmt.Sprintf("sha256:%x", sha256Sum(data)) != l.Digest {
			t.Fatalf("layer %s: %d, content does not match", l.Digest, resp.StatusCode)
		}
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestDockerBuildPackage builds a package image FROM scratch with docker
// build (labels in the Dockerfile), pushes it to packages/<name>:<version>
// and finds it composed into an environment.
func TestDockerBuildPackage(t *testing.T) {
	docker := dockerEngine(t)
	s := startServer(t, publishAll(t))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "opt", "dtool", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "opt", "dtool", "bin", "dtool"), []byte("#!/bin/sh\necho dtool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\n" +
		"LABEL io.envreg.package.env.path=/opt/dtool/bin io.envreg.package.env.DTOOL_HOME=/opt/dtool\n" +
		"COPY opt /opt\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	image := s.host + "/packages/dtool:3.0.1"
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", image).Run() })
	runTool(t, docker, "build", "--platform", "linux/amd64", "-t", image, dir)
	runTool(t, docker, "push", image)
	pushed := time.Now()
	took := waitComposed(t, s, "dtool-3", pushed)
	t.Logf("env:dtool-3 resolvable %s after docker push returned", took)
	if took > time.Second {
		t.Errorf("the pushed package took %s to show up, want within 1 s", took)
	}
	body, _ := rawManifest(t, s, "env", "dtool-3.0.1")
	if !strings.Contains(string(body), `"io.envreg.package.dtool":"3.0.1"`) {
		t.Fatalf("env:dtool-3.0.1 index lacks the package: %s", body)
	}
}

// TestPublishToRegistry publishes every fixture package with
// `envreg publish --registry` into a server started empty (with
// authentication), and finds the same composed images as a local publish.
func TestPublishToRegistry(t *testing.T) {
	local := startServer(t, publishAll(t))
	pw := htpasswd(t, "ci", "publish-pw")
	remoteSrv := startServer(t, filepath.Join(t.TempDir(), "data"), "--auth-htpasswd", pw)
	storage := []string{"--registry", "http://" + remoteSrv.host, "--registry-user", "ci"}

	t.Setenv("ENVREG_REGISTRY_PASSWORD", "wrong")
	p := fixture(t, "php", "8.2.36")
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := fixtures.WriteTree(root, p, fixturePlatforms[0]); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := envregResult(t, publishArgs(storage, p, fixturePlatforms[0], root)...)
	if err == nil || !strings.Contains(errOut, "UNAUTHORIZED") {
		t.Fatalf("publish with a wrong password: %v\n%s", err, errOut)
	}

	t.Setenv("ENVREG_REGISTRY_PASSWORD", "publish-pw")
	for _, p := range fixtures.All() {
		for _, plat := range fixturePlatforms {
			root := filepath.Join(t.TempDir(), "rootfs")
			if err := fixtures.WriteTree(root, p, plat); err != nil {
				t.Fatal(err)
			}
			out := envreg(t, publishArgs(storage, p, plat, root)...)
			if !strings.Contains(out, "pushed "+p.Name+" "+p.Version) {
				t.Fatalf("publish --registry output: %s", out)
			}
		}
	}
	for _, tag := range []string{"php-8.2_node-20", "gm-1.3_php-8.1", "latest"} {
		for _, plat := range fixturePlatforms {
			a := layerDigests(t, local, tag, plat)
			b := layerDigests(t, remoteSrv, tag, plat)
			if !slices.Equal(a, b) || len(a) == 0 || (tag != "latest" && len(a) < 3) {
				t.Fatalf("env:%s %s: layers %v through the registry, %v published locally", tag, plat, b, a)
			}
		}
	}
}

// layerDigests pulls env:tag for plat and lists its layer digests.
func layerDigests(t *testing.T, s *server, tag string, plat catalog.Platform) []string {
	t.Helper()
	img, err := remote.Image(ref(t, s, "env:"+tag), remote.WithPlatform(v1.Platform{OS: plat.OS, Architecture: plat.Architecture}))
	if err != nil {
		t.Fatalf("pulling env:%s: %v", tag, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}
