package test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/test/fixtures"
)

func ref(t testing.TB, s *server, r string) name.Reference {
	t.Helper()
	parsed, err := name.ParseReference(s.host+"/"+r, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func fixture(t *testing.T, pkgName, version string) fixtures.Package {
	t.Helper()
	for _, p := range fixtures.All() {
		if p.Name == pkgName && p.Version == version {
			return p
		}
	}
	t.Fatalf("no fixture %s %s", pkgName, version)
	return fixtures.Package{}
}

// indexDigest pulls an index with ggcr, validates it completely (every
// manifest, config and layer is fetched and checked against its digest and
// diff_id) and returns it.
func pullIndex(t *testing.T, s *server, r string) v1.ImageIndex {
	t.Helper()
	idx, err := remote.Index(ref(t, s, r))
	if err != nil {
		t.Fatalf("pulling %s: %v", r, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validating %s: %v", r, err)
	}
	return idx
}

func digestOf(t *testing.T, s *server, r string) v1.Hash {
	t.Helper()
	desc, err := remote.Head(ref(t, s, r))
	if err != nil {
		t.Fatalf("HEAD %s: %v", r, err)
	}
	return desc.Digest
}

func TestPullComposedImage(t *testing.T) {
	s := startServer(t, publishAll(t))

	idx := pullIndex(t, s, "env:php-8.2_node-20")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms = %v, want %v", platforms, want)
	}
	wantVersions := map[string]string{"base": "12.0.0", "php": "8.2.36", "nodejs": "20.12.2"}
	for pkg, v := range wantVersions {
		if got := im.Annotations["io.envreg.package."+pkg]; got != v {
			t.Errorf("index annotation for %s = %q, want %q (annotations %v)", pkg, got, v, im.Annotations)
		}
	}

	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != m.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s: config platform %s/%s", m.Platform, cfg.OS, cfg.Architecture)
		}
		// Layer order: base first, then packages in dependency order, ties by name.
		var order []string
		for _, h := range cfg.History {
			order = append(order, h.CreatedBy)
		}
		wantOrder := []string{"envreg: base 12.0.0", "envreg: nodejs 20.12.2", "envreg: php 8.2.36"}
		if !slices.Equal(order, wantOrder) {
			t.Errorf("%s: history = %q, want %q", m.Platform, order, wantOrder)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 3 || len(cfg.RootFS.DiffIDs) != 3 {
			t.Fatalf("%s: %d layers, %d diff_ids; want 3", m.Platform, len(layers), len(cfg.RootFS.DiffIDs))
		}
		path := envValue(cfg.Config.Env, "PATH")
		for _, p := range []fixtures.Package{fixture(t, "php", "8.2.36"), fixture(t, "nodejs", "20.12.2")} {
			for _, dir := range p.Path {
				if !slices.Contains(strings.Split(path, ":"), dir) {
					t.Errorf("%s: PATH %q lacks %s from %s", m.Platform, path, dir, p.Name)
				}
			}
			for k, v := range p.Env {
				if got := envValue(cfg.Config.Env, k); got != v {
					t.Errorf("%s: env %s = %q, want %q", m.Platform, k, got, v)
				}
			}
		}
		if !strings.HasSuffix(path, "/usr/bin:/sbin:/bin") {
			t.Errorf("%s: PATH %q does not end with the stack's default PATH", m.Platform, path)
		}
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func TestSameResolutionSameDigest(t *testing.T) {
	s := startServer(t, publishAll(t))
	want := digestOf(t, s, "env:php-8.2_node-20")
	for _, tag := range []string{"node-20_php-8.2", "nodejs-20_php-8.2", "php-8.2.36_nodejs-20.12", "php-8_node-20.12.2_base"} {
		if got := digestOf(t, s, "env:"+tag); got != want {
			t.Errorf("digest of %s = %s, want %s (same resolution as php-8.2_node-20)", tag, got, want)
		}
	}
	if other := digestOf(t, s, "env:php-8.2.32_node-20"); other == want {
		t.Errorf("php-8.2.32_node-20 has the digest of php-8.2_node-20: pin ignored")
	}

	// Across a restart the same resolution gives the same bytes.
	s.stop(t)
	s2 := startServer(t, s.dataDir(t))
	if got := digestOf(t, s2, "env:php-8.2_node-20"); got != want {
		t.Errorf("after restart digest = %s, want %s", got, want)
	}
}

func TestPinnedDigestSurvivesNewPatch(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	pinned := digestOf(t, s, "env:php-8.2_node-20")

	// Publish a newer patch from another process while serve runs.
	publishFixture(t, data, fixtures.Extra("php", "8.2.37"))
	published := time.Now()
	var moved v1.Hash
	for {
		moved = digestOf(t, s, "env:php-8.2_node-20")
		if moved != pinned {
			break
		}
		if time.Since(published) > time.Second {
			t.Fatalf("php-8.2 still resolves to %s 1s after php 8.2.37 was published", pinned)
		}
		time.Sleep(20 * time.Millisecond)
	}
	idx := pullIndex(t, s, "env:php-8.2_node-20")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations["io.envreg.package.php"]; got != "8.2.37" {
		t.Errorf("after publishing 8.2.37, php-8.2 resolved to %s", got)
	}

	// The old environment stays pullable by digest, and an exact pin still
	// gives the old bytes.
	pullIndex(t, s, "env@"+pinned.String())
	if got := digestOf(t, s, "env:php-8.2.36_node-20"); got != pinned {
		t.Errorf("php-8.2.36_node-20 = %s, want the pinned %s", got, pinned)
	}
}

func TestErrorsUseSpecCodes(t *testing.T) {
	s := startServer(t, publishAll(t))
	cases := []struct {
		name, path string
		method     string
		status     int
		code       string
		message    string
	}{
		{"unsatisfiable", "/v2/env/manifests/php-9_node-20", "GET", 404, "MANIFEST_UNKNOWN", "no version of php satisfies 9 (available: 8.1.27, 8.2.32, 8.2.36)"},
		{"unknown package", "/v2/env/manifests/ruby-3", "GET", 404, "MANIFEST_UNKNOWN", "ruby"},
		{"bad grammar", "/v2/env/manifests/php-8.2__node", "GET", 404, "MANIFEST_UNKNOWN", "empty"},
		{"duplicate", "/v2/env/manifests/node-18_nodejs-20", "GET", 404, "MANIFEST_UNKNOWN", "nodejs"},
		{"too long", "/v2/env/manifests/" + strings.Repeat("a", 129), "GET", 404, "MANIFEST_UNKNOWN", "128"},
		{"unknown digest", "/v2/env/manifests/sha256:" + strings.Repeat("0", 64), "GET", 404, "MANIFEST_UNKNOWN", ""},
		{"unknown repository", "/v2/nope/manifests/php-8.2", "GET", 404, "NAME_UNKNOWN", "nope"},
		{"unknown blob", "/v2/env/blobs/sha256:" + strings.Repeat("0", 64), "GET", 404, "BLOB_UNKNOWN", ""},
		{"bad digest", "/v2/env/blobs/sha256:xyz", "GET", 400, "DIGEST_INVALID", ""},
		{"push", "/v2/env/manifests/php-8.2", "PUT", 405, "UNSUPPORTED", ""},
		{"upload", "/v2/env/blobs/uploads/", "POST", 405, "UNSUPPORTED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.url(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			// Parse the body exactly as ggcr's transport does.
			terr := transport.CheckError(resp, http.StatusOK)
			resp.Body.Close()
			var te *transport.Error
			if !errors.As(terr, &te) {
				t.Fatalf("got %v, want a registry error", terr)
			}
			if te.StatusCode != tc.status || len(te.Errors) != 1 || string(te.Errors[0].Code) != tc.code {
				t.Fatalf("status %d errors %+v, want %d %s", te.StatusCode, te.Errors, tc.status, tc.code)
			}
			if !strings.Contains(te.Errors[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", te.Errors[0].Message, tc.message)
			}
		})
	}
}
