package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestRebuildKeepsPinned: a rebuild of a version (the same version with
// other build metadata and another layer, published with --force, as the
// publishing job does when a library under it changed) moves the tags to
// it, while an environment pinned by digest before the rebuild still pulls
// whole with a real client, also after gc: the replaced layer is kept as
// superseded and the stack still serves it.
func TestRebuildKeepsPinned(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	pinned := digestOf(t, s, "env:php-8.2_node-20")

	dir := filepath.Join(t.TempDir(), "php")
	if err := os.MkdirAll(filepath.Join(dir, "usr/local/php/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/local/php/bin/php"), []byte("#!/bin/sh\necho php 8.2.36 rebuilt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := envreg(t, "publish", "--data", data, "--force", "--name", "php", "--version", "8.2.36+r2", "--platform", "linux/amd64",
		"--from-dir", dir, "--path", "/usr/local/php/bin", "--requires", "base *", "--label", "io.envreg.debian.rebuild=libfoo 1 → 2")
	if !strings.Contains(out, "published php 8.2.36+r2") {
		t.Fatalf("publish: %s", out)
	}
	waitFor(t, "env:php-8.2_node-20 to move to the rebuild", func() bool {
		return digestOf(t, s, "env:php-8.2_node-20") != pinned
	})
	if body := s.manifestBody(t, "env:php-8.2_node-20"); !strings.Contains(body, `"io.envreg.package.php":"8.2.36+r2"`) {
		t.Errorf("env:php-8.2_node-20 after the rebuild: %s", body)
	}

	envreg(t, "gc", "--data", data, "--grace", "0")
	idx, err := remote.Index(ref(t, s, "env@"+pinned.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil { // fetches and checks every blob
		t.Fatalf("the environment pinned before the rebuild: %v", err)
	}
	if out := envreg(t, "verify", "--data", data); !strings.Contains(out, "no damage found") {
		t.Errorf("verify after the rebuild and gc: %s", out)
	}
}
