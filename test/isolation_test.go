package test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"
)

// TestStackServesOnlyItsOwn is the red team's first HIGH finding (issue
// 15): a user who may pull the stack env and push alice/* must not read
// bob's private blobs, configs and manifests through env, by digest, nor
// mount them from env into his own repository. The stack still serves
// what is its own: the catalog's layers and the images it composed, to
// pulls and to mounts. On the embedded store and on Redis + S3.
func TestStackServesOnlyItsOwn(t *testing.T) {
	users := usersFile(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"})
	acl := filepath.Join(t.TempDir(), "acl.yaml")
	if err := os.WriteFile(acl, []byte(`access:
  - user: alice
    repositories: ["env", "alice/*"]
    actions: [pull, push]
  - user: bob
    repositories: ["bob/*"]
    actions: [pull, push, delete]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	authFlags := []string{"--auth-htpasswd", users, "--auth-acl", acl, "--auth-anonymous-pull=false"}

	t.Run("embedded", func(t *testing.T) {
		data := publishAll(t)
		checkStackIsolation(t, startServer(t, data, authFlags...))
	})
	t.Run("redis+s3", func(t *testing.T) {
		storage := startRemoteStores(t, "isolation").storage
		publishAllTo(t, storage)
		// --data holds nothing: upload sessions (refused mounts start one)
		// are in Redis + S3 too.
		local := filepath.Join(t.TempDir(), "local")
		checkStackIsolation(t, startServerWith(t, local, append(append(storage, "--data", local), authFlags...)...))
	})
}

func checkStackIsolation(t *testing.T, s *server) {
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})
	bob := remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-pw"})

	// Bob's private image: a config with a secret in its environment.
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.Config.Env = append(cf.Config.Env, "DB_PASSWORD=bob-secret")
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s, "bob/secret:v1"), img, bob); err != nil {
		t.Fatal(err)
	}
	manifestDigest, _ := img.Digest()
	configDigest, _ := img.ConfigName()
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()

	get := func(user, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.url(path), nil)
		req.SetBasicAuth(user, user+"-pw")
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	// Bob's repository itself is closed to alice.
	if code, _ := get("alice", "/v2/bob/secret/blobs/"+configDigest.String()); code != http.StatusForbidden {
		t.Errorf("alice GET bob/secret config: %d, want 403", code)
	}
	// ...and so is every way round through the stack.
	for _, tc := range []struct{ path, code string }{
		{"/v2/env/blobs/" + configDigest.String(), "BLOB_UNKNOWN"},
		{"/v2/env/blobs/" + layerDigest.String(), "BLOB_UNKNOWN"},
		{"/v2/env/manifests/" + manifestDigest.String(), "MANIFEST_UNKNOWN"},
	} {
		code, body := get("alice", tc.path)
		if code != http.StatusNotFound || !strings.Contains(body, tc.code) || strings.Contains(body, "bob-secret") {
			t.Errorf("alice GET %s: %d %s; want 404 %s", tc.path, code, body, tc.code)
		}
	}
	mount := func(d v1.Hash) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url("/v2/alice/a/blobs/uploads/?mount="+d.String()+"&from=env"), nil)
		req.SetBasicAuth("alice", "alice-pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, d := range []v1.Hash{configDigest, layerDigest} {
		// Not mountable: the spec's answer is a new upload session (202).
		if code := mount(d); code != http.StatusAccepted {
			t.Errorf("alice mounts bob's %s from env: %d, want 202 (an upload session, nothing mounted)", d, code)
		}
		if code, _ := get("alice", "/v2/alice/a/blobs/"+d.String()); code != http.StatusNotFound {
			t.Errorf("after the refused mount alice reads bob's %s in alice/a: %d, want 404", d, code)
		}
	}

	// What is the stack's own still serves: a composed image pulled whole
	// by digest (index, manifests, configs, layers through env), and its
	// layers and config mount into alice's repository.
	idx, err := remote.Index(ref(t, s, "env:php-8.2_node-18_gm"), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("composed image through env: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	child, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ownConfig, _ := child.ConfigName()
	ownLayers, _ := child.Layers()
	ownLayer, _ := ownLayers[0].Digest()
	for _, d := range []v1.Hash{ownConfig, ownLayer} {
		if code := mount(d); code != http.StatusCreated {
			t.Errorf("alice mounts env's own %s from env: %d, want 201", d, code)
		}
	}
	d, _ := idx.Digest()
	if _, err := remote.Index(ref(t, s, "env@"+d.String()), alice); err != nil {
		t.Errorf("composed index by digest: %v", err)
	}
}

// usersFile writes an htpasswd file with bcrypt entries.
func usersFile(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for u, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
