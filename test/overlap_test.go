package test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/test/fixtures"
)

// TestLinkOverDirectoryRefused publishes packages that replace a directory
// of another package with a symbolic link — /opt/php over php's files
// (above them and below them in layer order) and /etc over base's — and
// checks that the real server refuses to compose them, with the
// explanation, on the registry (404 MANIFEST_UNKNOWN) and the provisioning
// API (422 OVERLAP), while a stack that allows overlaps composes them.
func TestLinkOverDirectoryRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	publishFixture(t, data, fixtures.Extra("base", "12.0.0"))
	php := fixtures.Extra("php", "8.2.36")
	publishFixture(t, data, php)
	// Above php (names after "php" are layered later): /opt/php becomes a
	// link, so php's /usr/local/bin/php runs /opt/zz/8.2.36/bin/php.
	publishTree(t, data, "zzshim", map[string]string{"opt/php": "-> /opt/zz", "opt/zz/8.2.36/bin/php": "#!/bin/sh\necho shim\n"})
	// Below php: an extractor would write php's files through the link.
	publishTree(t, data, "aashim", map[string]string{"opt/php": "-> /srv/elsewhere"})
	// Over base: /etc becomes a directory of the package's choosing.
	publishTree(t, data, "fake-etc", map[string]string{"etc": "-> /opt/fake-etc", "opt/fake-etc/os-release": "ID=fake\n"})
	loose := filepath.Join(t.TempDir(), "loose.yaml")
	if err := os.WriteFile(loose, []byte("name: loose\nbase: [base]\nallowOverlap: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envreg(t, "stack", "--data", data, loose)
	s := startServer(t, data)

	const tail = " (linux/amd64); the stack does not allow overlapping layers"
	for _, tc := range []struct {
		tag, requirements, message string
	}{
		{"php-8.2_zzshim", `{"php": "8.2", "zzshim": "*"}`,
			"php 8.2.36 writes /opt/php/8.2.36/bin/php and zzshim 1.0.0 writes /opt/php, so /opt/php would be both a directory and a file or symbolic link" + tail},
		{"aashim_php-8.2", `{"aashim": "*", "php": "8.2"}`,
			"aashim 1.0.0 writes /opt/php and php 8.2.36 writes /opt/php/8.2.36/bin/php, so /opt/php would be both a directory and a file or symbolic link" + tail},
		{"fake-etc", `{"fake-etc": "*"}`,
			"base 12.0.0 writes /etc/envreg/base and fake-etc 1.0.0 writes /etc, so /etc would be both a directory and a file or symbolic link" + tail},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			_, err := remote.Index(ref(t, s, "env:"+tc.tag))
			var te *transport.Error
			if !errors.As(err, &te) || te.StatusCode != 404 || len(te.Errors) != 1 ||
				te.Errors[0].Code != transport.ManifestUnknownErrorCode || te.Errors[0].Message != tc.message {
				t.Errorf("GET env:%s: %v, want 404 MANIFEST_UNKNOWN %q", tc.tag, err, tc.message)
			}

			resp, body := s.postJSON(t, "/api/v1/stacks/env/resolve", `{"requirements": `+tc.requirements+`}`)
			var e api.Error
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusUnprocessableEntity ||
				e.Code != api.CodeOverlap.Code || e.Message != tc.message {
				t.Errorf("resolve %s: %d %s, want 422 %s %q", tc.requirements, resp.StatusCode, body, api.CodeOverlap.Code, tc.message)
			}

			// A stack that allows overlaps composes it: the upper layer wins.
			idx, err := remote.Index(ref(t, s, "loose:"+tc.tag))
			if err != nil {
				t.Fatalf("GET loose:%s: %v", tc.tag, err)
			}
			if err := validate.Index(idx); err != nil {
				t.Errorf("loose:%s: %v", tc.tag, err)
			}
		})
	}

	// The links alone overlap nothing: base writes no files under /opt.
	for _, tag := range []string{"zzshim", "aashim", "php-8.2"} {
		if _, err := remote.Index(ref(t, s, "env:"+tag)); err != nil {
			t.Errorf("GET env:%s: %v", tag, err)
		}
	}
}

// publishTree publishes name 1.0.0, requiring base, for both fixture
// platforms with "envreg publish --from-dir" over a tree of files (path →
// content) and symbolic links (path → "-> target"), parents created as
// needed.
func publishTree(t *testing.T, data, name string, entries map[string]string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	for path, content := range entries {
		p := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, plat := range fixturePlatforms {
		envreg(t, "publish", "--data", data, "--name", name, "--version", "1.0.0",
			"--platform", plat.String(), "--from-dir", root, "--requires", "base *")
	}
}
