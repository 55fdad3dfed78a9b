package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestCrane(t *testing.T) {
	crane := tool(t, "crane")
	s := startServer(t, publishAll(t))
	image := s.host + "/env:php-8.2_node-20_gm"

	digest := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", image))
	if want := digestOf(t, s, "env:php-8.2_node-20_gm"); digest != want.String() {
		t.Errorf("crane digest = %s, ggcr HEAD = %s", digest, want)
	}

	var cfg struct {
		Architecture string `json:"architecture"`
		Config       struct{ Env []string }
	}
	out := runTool(t, crane, "config", "--insecure", "--platform", "linux/arm64", image)
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("crane config output: %v\n%s", err, out)
	}
	if cfg.Architecture != "arm64" || !strings.Contains(envValue(cfg.Config.Env, "PATH"), "/opt/") {
		t.Errorf("crane config for arm64: arch %s env %v", cfg.Architecture, cfg.Config.Env)
	}

	// A full pull into an OCI layout, validated layer by layer.
	dir := filepath.Join(t.TempDir(), "oci")
	runTool(t, crane, "pull", "--insecure", "--format", "oci", image, dir)
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("pulled layout does not validate: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) < 4 {
		t.Errorf("layout has %d blobs; want at least 4 (base, php, nodejs, graphicsmagick layers)", len(entries))
	}

	tags := strings.Fields(runTool(t, crane, "ls", "--insecure", s.host+"/env"))
	for _, want := range []string{"latest", "php-8.2.36", "php-8.2.32", "nodejs-18.20.4", "graphicsmagick-1.3.40"} {
		if !slices.Contains(tags, want) {
			t.Errorf("crane ls lacks %s: %v", want, tags)
		}
	}
	// Listed tags are pullable (a sample: every tag of php 8.1, base and latest).
	for _, tag := range tags {
		if tag == "latest" || strings.HasPrefix(tag, "php-8.1") || strings.HasPrefix(tag, "base-") {
			runTool(t, crane, "digest", "--insecure", s.host+"/env:"+tag)
		}
	}
	if repos := strings.Fields(runTool(t, crane, "catalog", "--insecure", s.host)); !slices.Equal(repos, []string{"env"}) {
		t.Errorf("crane catalog = %v, want [env]", repos)
	}
}
