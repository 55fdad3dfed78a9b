package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dockerEngine returns the docker CLI when an engine answers. Without one
// the test skips and says why (in CI too: the engine is a machine service
// that a script cannot provide everywhere).
func dockerEngine(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI on this machine: skipping the Docker engine pull test")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" && fileExists("/var/run/docker.sock") {
			t.Fatalf("docker socket exists but the engine does not answer: %v\n%s", err, out)
		}
		t.Skipf("no Docker engine reachable (%v): skipping the Docker engine pull test", strings.TrimSpace(string(out)))
	}
	return bin
}

func TestDockerPull(t *testing.T) {
	docker := dockerEngine(t)
	s := startServer(t, publishAll(t))
	image := s.host + "/env:php-8.2_node-20"
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", image).Run() })

	runTool(t, docker, "pull", image)

	var env []string
	out := runTool(t, docker, "image", "inspect", "--format", "{{json .Config.Env}}", image)
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("docker image inspect: %v\n%s", err, out)
	}
	path := envValue(env, "PATH")
	for _, dir := range append(fixture(t, "php", "8.2.36").Path, fixture(t, "nodejs", "20.12.2").Path...) {
		if !strings.Contains(path, dir) {
			t.Errorf("docker image inspect: PATH %q lacks %s", path, dir)
		}
	}
	digests := runTool(t, docker, "image", "inspect", "--format", "{{json .RepoDigests}}", image)
	if want := digestOf(t, s, "env:php-8.2_node-20"); !strings.Contains(digests, want.String()) {
		t.Errorf("docker RepoDigests %s lack the index digest %s", strings.TrimSpace(digests), want)
	}
}
