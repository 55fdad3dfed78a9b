package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestYank: yanking a version while the registry serves takes it out of
// every new resolution and of the tag list, while an environment pinned by
// digest stays pullable, also after gc; --undo brings it back.
func TestYank(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	pinned := digestOf(t, s, "env:php-8.2_node-20")

	out := envreg(t, "yank", "--data", data, "php", "8.2.36")
	if !strings.Contains(out, "php 8.2.36 is yanked") {
		t.Fatalf("yank output: %s", out)
	}
	// The running server sees the new generation: php-8.2 is now 8.2.32.
	waitFor(t, "env:php-8.2_node-20 to move off the yanked version", func() bool {
		return digestOf(t, s, "env:php-8.2_node-20") != pinned
	})
	body := s.manifestBody(t, "env:php-8.2_node-20")
	if !strings.Contains(body, `"io.envreg.package.php":"8.2.32"`) {
		t.Fatalf("env:php-8.2_node-20 after the yank: %s", body)
	}
	resp, msg := s.get(t, "/v2/env/manifests/php-8.2.36", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(msg), "yanked: 8.2.36") {
		t.Fatalf("exact pin on the yanked version: %d %s", resp.StatusCode, msg)
	}
	_, tags := s.get(t, "/v2/env/tags/list", "")
	if strings.Contains(string(tags), `"php-8.2.36"`) || !strings.Contains(string(tags), `"php-8.2.32"`) {
		t.Fatalf("tags/list after the yank: %s", tags)
	}

	// gc keeps what the pinned environment needs; it pulls whole.
	envreg(t, "gc", "--data", data, "--grace", "0")
	idx, err := remote.Index(ref(t, s, "env@"+pinned.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the pinned environment after yank and gc: %v", err)
	}

	envreg(t, "yank", "--data", data, "--undo", "php", "8.2.36")
	waitFor(t, "env:php-8.2_node-20 to come back to 8.2.36", func() bool {
		return digestOf(t, s, "env:php-8.2_node-20") == pinned
	})
	if _, errOut, err := envregResult(t, "yank", "--data", data, "php", "9.9.9"); err == nil || !strings.Contains(errOut, "8.2.36") {
		t.Fatalf("yanking an unknown version: %v %s", err, errOut)
	}
}

// manifestBody GETs a manifest (any media type) and returns its body.
func (s *server) manifestBody(t *testing.T, r string) string {
	t.Helper()
	repo, tag, _ := strings.Cut(r, ":")
	resp, err := http.Get(s.url("/v2/" + repo + "/manifests/" + tag))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond for up to 5 s (the embedded store's readers notice a
// new generation within a poll interval).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPurge: purge deletes a version and the composed manifests that use
// it; environments pinned to it stop resolving, others do not; gc then
// frees its layers and verify finds the store consistent.
func TestPurge(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	doomed := digestOf(t, s, "env:php-8.2_node-20")
	kept := digestOf(t, s, "env:php-8.1_node-18")
	layers := fixtureLayers(t, s, "php-8.2.36")

	out := envreg(t, "purge", "--data", data, "--dry-run", "php", "8.2.36")
	if !strings.Contains(out, "would purge php 8.2.36: 2 composed indexes and 4 manifests") {
		t.Fatalf("purge --dry-run: %s", out)
	}
	if _, err := remote.Index(ref(t, s, "env@"+doomed.String())); err != nil {
		t.Fatalf("a dry run changed something: %v", err)
	}

	out = envreg(t, "purge", "--data", data, "php", "8.2.36")
	if !strings.Contains(out, "purged php 8.2.36: 2 composed indexes and 4 manifests") {
		t.Fatalf("purge: %s", out)
	}
	resp, body := s.get(t, "/v2/env/manifests/"+doomed.String(), "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Fatalf("env@%s after the purge: %d %s", doomed, resp.StatusCode, body)
	}
	if _, err := remote.Index(ref(t, s, "env@"+kept.String())); err != nil {
		t.Fatalf("an environment without php 8.2.36 stopped pulling: %v", err)
	}
	waitFor(t, "php-8.2 to resolve to 8.2.32", func() bool {
		return strings.Contains(s.manifestBody(t, "env:php-8.2_node-20"), `"io.envreg.package.php":"8.2.32"`)
	})
	resp, body = s.get(t, "/v2/env/manifests/php-8.2.36", "")
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "yanked") {
		t.Fatalf("php-8.2.36 after the purge (gone, not yanked): %d %s", resp.StatusCode, body)
	}

	out = envreg(t, "gc", "--data", data, "--grace", "0")
	for _, l := range layers {
		if !strings.Contains(out, "deleted "+l) {
			t.Errorf("gc kept php 8.2.36's layer %s:\n%s", l, out)
		}
	}
	envreg(t, "verify", "--data", data)
	if _, err := remote.Index(ref(t, s, "env@"+kept.String())); err != nil {
		t.Fatalf("after gc, an environment without php 8.2.36 stopped pulling: %v", err)
	}
}

// fixtureLayers lists the layer digests of a package version's tag (the
// composed image of that version alone holds base and it).
func fixtureLayers(t *testing.T, s *server, tag string) []string {
	t.Helper()
	var out []string
	for _, plat := range fixturePlatforms {
		ls := layerDigests(t, s, tag, plat)
		out = append(out, ls[len(ls)-1]) // the package's layer comes last
	}
	return out
}
