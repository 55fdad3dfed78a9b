package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/test/fixtures"
)

// TestPublishRedisCatalogLocalBlobs: one machine with Redis for the catalog
// and its blobs under --data, a setup users try. On a fresh directory
// publishing failed with "creating temporary layer file: open
// DIR/tmp/envreg-layer-…: no such file or directory" (issue 16, item 6).
func TestPublishRedisCatalogLocalBlobs(t *testing.T) {
	redisURL := testservers.Redis(t)
	data := filepath.Join(t.TempDir(), "fresh")
	base := fixtures.All()[0]
	root := filepath.Join(t.TempDir(), "base")
	if err := fixtures.WriteTree(root, base, catalog.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "publish", "--catalog", redisURL, "--data", data,
		"--name", base.Name, "--version", base.Version, "--platform", "linux/amd64", "--from-dir", root)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "resolve", "--catalog", redisURL, "--data", data, "base")
	if code != 0 || !strings.Contains(out, base.Version) {
		t.Errorf("resolve after the publish: exit %d\n%s\n%s", code, out, errOut)
	}
}
