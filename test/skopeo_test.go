package test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestSkopeo(t *testing.T) {
	skopeo := tool(t, "skopeo")
	s := startServer(t, publishAll(t))
	image := "docker://" + s.host + "/env:php-8.1_node-18"

	var info struct {
		Digest       string
		Architecture string
		Env          []string
		Layers       []string
	}
	out := runTool(t, skopeo, "inspect", "--tls-verify=false", "--override-arch", "arm64", "--override-os", "linux", image)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("skopeo inspect output: %v\n%s", err, out)
	}
	if info.Architecture != "arm64" || len(info.Layers) != 3 {
		t.Errorf("skopeo inspect: arch %s, %d layers; want arm64, 3 (base, nodejs, php)", info.Architecture, len(info.Layers))
	}
	if !strings.Contains(envValue(info.Env, "PATH"), "/opt/php/8.1.27/") {
		t.Errorf("skopeo inspect env %v: PATH lacks php 8.1.27", info.Env)
	}

	raw := runTool(t, skopeo, "inspect", "--raw", "--tls-verify=false", image)
	if !strings.Contains(raw, `"io.envreg.package.php":"8.1.27"`) {
		t.Errorf("raw index lacks the php annotation: %s", raw)
	}

	dir := filepath.Join(t.TempDir(), "oci")
	runTool(t, skopeo, "copy", "--all", "--src-tls-verify=false", image, "oci:"+dir+":copy")
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("skopeo's copy does not validate: %v", err)
	}
}
