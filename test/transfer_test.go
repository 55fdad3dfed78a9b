package test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blobBytesServed reads the registry's counter of blob bytes sent.
func blobBytesServed(t *testing.T, s *server) int64 {
	t.Helper()
	_, body := s.get(t, "/metrics", "")
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), `envreg_http_response_bytes_total{route="blob"} `); ok {
			// The exposition writes counters as floats ("3.01112434e+08").
			n, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(n)
		}
	}
	return 0
}

// amd64Image returns the linux/amd64 manifest of a composed tag.
func amd64Image(t *testing.T, s *server, tag string) ocispec.Manifest {
	t.Helper()
	resp, body := s.get(t, "/v2/env/manifests/"+tag, ocispec.MediaTypeImageManifest)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", tag, resp.StatusCode, body)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDockerPullTransfersOnlyChangedLayer proves the point of independent
// layers: after pulling php-8.2.32_node-18, pulling php-8.2_node-18 makes
// the engine download only the php layer (and the new image's config),
// counted from the bytes the registry actually served.
func TestDockerPullTransfersOnlyChangedLayer(t *testing.T) {
	docker := dockerEngine(t)
	s := startServer(t, publishAll(t))
	checkOnlyChangedLayerTransferred(t, docker, s, "php-8.2.32_node-18", "php-8.2_node-18")
}

// checkOnlyChangedLayerTransferred pulls oldTag then newTag with the Docker
// engine and asserts that the second pull fetched exactly the last (php)
// layer and the config, and nothing else.
func checkOnlyChangedLayerTransferred(t *testing.T, docker string, s *server, oldTag, newTag string) {
	t.Helper()
	old, cur := s.host+"/env:"+oldTag, s.host+"/env:"+newTag
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", old, cur).Run() })

	runTool(t, docker, "pull", old)
	before := blobBytesServed(t, s)
	runTool(t, docker, "pull", cur)
	served := blobBytesServed(t, s) - before

	oldM, curM := amd64Image(t, s, oldTag), amd64Image(t, s, newTag)
	var want int64 = curM.Config.Size
	for i, l := range curM.Layers {
		if l.Digest != oldM.Layers[i].Digest {
			want += l.Size
		}
	}
	changed := curM.Layers[len(curM.Layers)-1]
	if want != curM.Config.Size+changed.Size {
		t.Fatalf("more than the php layer differs between %s and %s", oldTag, newTag)
	}
	if served != want {
		t.Errorf("pulling %s after %s transferred %d blob bytes; want %d (php layer %d + config %d)",
			newTag, oldTag, served, want, changed.Size, curM.Config.Size)
	}
}
