package test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestContainerImage builds envreg's container image the way the
// Dockerfile says (a static binary built on the host, FROM scratch), runs
// "serve" in it as its unprivileged user with the data directory as a
// volume, and pulls a composed image from it. The catalog gets its
// packages the way the image's documentation says: published with the
// envreg CLI outside the image into the store the container serves.
func TestContainerImage(t *testing.T) {
	docker := dockerEngine(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tag := "envreg-test:" + hex.EncodeToString(suffix)
	name := "envreg-test-" + hex.EncodeToString(suffix)

	// The build context: the Dockerfile and the static binary.
	buildCtx := t.TempDir()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), dockerfile, 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(buildCtx, "envreg"), "./cmd/envreg")
	build.Dir = root
	build.Env = append(goEnv(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the static binary: %v\n%s", err, out)
	}
	if out, err := exec.Command("file", filepath.Join(buildCtx, "envreg")).CombinedOutput(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("the binary for the image is not static: %s", out)
	}
	runTool(t, docker, "build", "--quiet", "-t", tag, buildCtx)
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", tag).Run() })
	if user := strings.TrimSpace(runTool(t, docker, "image", "inspect", "--format", "{{.Config.User}}", tag)); user != "65532:65532" {
		t.Errorf("image user %q, want the unprivileged 65532:65532", user)
	}

	// Packages published outside the image, into the volume it serves.
	data := publishAll(t)
	if out, err := exec.Command("chown", "-R", "65532:65532", data).CombinedOutput(); err != nil {
		t.Fatalf("chown of the data volume: %v\n%s", err, out)
	}
	runTool(t, docker, "run", "--detach", "--name", name, "--network", "host", "--volume", data+":/data", tag,
		"serve", "--data", "/data", "--addr", "127.0.0.1:0", "--addr-file", "/data/addr")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(docker, "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		_ = exec.Command(docker, "rm", "--force", name).Run()
	})
	var host string
	deadline := time.Now().Add(30 * time.Second)
	for host == "" {
		if b, err := os.ReadFile(filepath.Join(data, "addr")); err == nil && strings.TrimSpace(string(b)) != "" {
			host = strings.TrimSpace(string(b))
			break
		}
		if state := strings.TrimSpace(runTool(t, docker, "inspect", "--format", "{{.State.Status}}", name)); state != "running" {
			t.Fatalf("the container is %s before listening", state)
		}
		if time.Now().After(deadline) {
			t.Fatal("envreg in the container did not listen within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	s := &server{data: data, host: host}
	idx, err := remote.Index(ref(t, s, "env:php-8.2_node-20"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("composed image from the container: %v", err)
	}
	// What it stored belongs to its unprivileged user.
	out := runTool(t, "find", filepath.Join(data, "documents"), "-newer", filepath.Join(data, "addr"), "-type", "f", "-printf", "%U\n")
	owners := strings.Fields(out)
	if len(owners) == 0 {
		t.Error("the container stored no document")
	}
	for _, o := range owners {
		if o != "65532" {
			t.Errorf("documents written by the container are owned by %v, want 65532", owners)
			break
		}
	}
}
