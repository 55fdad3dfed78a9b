package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/fsstore"
)

// runSub runs one subcommand function the way run does (exit code 2 for
// usage errors, an exitError's code, else 1), so that these tests do not
// depend on its entry in commands().
func runSub(t *testing.T, fn func(context.Context, *cliEnv, []string) error, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := fn(context.Background(), &cliEnv{stdout: &out, stderr: &errOut}, args)
	if err != nil {
		fmt.Fprintln(&errOut, err)
		code = 1
		var ue *usageError
		var ee *exitError
		switch {
		case errors.As(err, &ue):
			code = 2
		case errors.As(err, &ee):
			code = ee.code
		}
	}
	return code, out.String(), errOut.String()
}

// stored is a data directory with base and php published and the image
// php-8.2 composed (its index, manifest and config stored).
type stored struct {
	data         string
	baseLayer    digest.Digest
	phpLayer     digest.Digest
	index        digest.Digest
	manifest     digest.Digest
	config       digest.Digest
	configFile   string
	phpLayerFile string
}

func (s stored) blobFile(d digest.Digest) string {
	return filepath.Join(s.data, "blobs", string(d.Algorithm()), d.Encoded())
}

func newStored(t *testing.T) stored {
	t.Helper()
	s := stored{data: filepath.Join(t.TempDir(), "data")}
	for _, p := range []struct{ name, version, file, content string }{
		{"base", "12.0.0", "etc/os-release", "ID=demo\n"},
		{"php", "8.2.36", "usr/local/php/bin/php", "#!/bin/sh\necho php 8.2.36\n"},
	} {
		root := filepath.Join(t.TempDir(), p.name)
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p.file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p.file), []byte(p.content), 0o755); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := runCLI(t, "publish", "--data", s.data, "--name", p.name, "--version", p.version,
			"--platform", "linux/amd64", "--from-dir", root); code != 0 {
			t.Fatalf("publish %s: exit %d\n%s\n%s", p.name, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "resolve", "--data", s.data, "--json", "php=8.2")
	if code != 0 {
		t.Fatalf("resolve: exit %d\n%s\n%s", code, out, errOut)
	}
	var res resolveOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("resolve --json: %v\n%s", err, out)
	}
	s.index = digest.Digest(res.Digest)
	s.manifest = digest.Digest(res.Manifests[0].Digest)

	cat, err := fsstore.Open(s.data)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	snap, err := cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.baseLayer = snap.Releases("base")[0].Layers[0].Digest
	s.phpLayer = snap.Releases("php")[0].Layers[0].Digest
	m, err := cat.Document(t.Context(), s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Data, &man); err != nil {
		t.Fatal(err)
	}
	s.config = man.Config.Digest
	s.configFile = s.blobFile(s.config)
	s.phpLayerFile = s.blobFile(s.phpLayer)
	for _, f := range []string{s.configFile, s.phpLayerFile} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestVerifyClean(t *testing.T) {
	s := newStored(t)
	code, out, errOut := runSub(t, runVerify, "--data", s.data)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"blobs: 3 checked", "package versions: 2 checked (2 layers)", "documents: 2 checked (indexes: 1, manifests: 1)", "no damage found"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// corrupt flips one byte of a file, keeping its size.
func corrupt(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyCorruptBlob(t *testing.T) {
	s := newStored(t)
	corrupt(t, s.phpLayerFile)
	code, out, errOut := runSub(t, runVerify, "--data", s.data)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"blobs: 3 checked", ", 1 damaged\n  DAMAGED blob " + string(s.phpLayer) + ": content has digest",
		"DAMAGED php 8.2.36 linux/amd64: layer blob " + string(s.phpLayer) + " is corrupt",
		"DAMAGED manifest " + string(s.manifest) + ": layer " + string(s.phpLayer) + " is corrupt",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "found 3 problems") {
		t.Errorf("stderr = %q, want the number of problems", errOut)
	}
}

func TestVerifyMissingLayer(t *testing.T) {
	s := newStored(t)
	if err := os.Remove(s.phpLayerFile); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runSub(t, runVerify, "--data", s.data)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if want := "DAMAGED php 8.2.36 linux/amd64: layer blob " + string(s.phpLayer) + " is missing"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "base 12.0.0") {
		t.Errorf("report blames base:\n%s", out)
	}
}

func TestVerifyMissingConfig(t *testing.T) {
	s := newStored(t)
	if err := os.Remove(s.configFile); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runSub(t, runVerify, "--data", s.data)
	if want := "DAMAGED manifest " + string(s.manifest) + ": config " + string(s.config) + " is missing"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, report lacks %q:\n%s", code, want, out)
	}
}

func TestVerifyBadDocuments(t *testing.T) {
	s := newStored(t)
	cat, err := fsstore.Open(s.data)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	// A stored index whose manifest was never stored, and a manifest whose
	// config lists the wrong diff_ids.
	dangling := digest.FromString("never stored")
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":2}]}`,
		ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, dangling)
	notJSON := []byte("not json")
	for _, d := range []catalog.Document{
		{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString(idx), Data: []byte(idx)},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(notJSON), Data: notJSON},
	} {
		if err := cat.PutDocument(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ := runSub(t, runVerify, "--data", s.data)
	for _, want := range []string{
		"DAMAGED index " + digest.FromString(idx).String() + ": manifest " + dangling.String() + " is not stored",
		"DAMAGED document " + digest.FromBytes(notJSON).String() + ": " + ocispec.MediaTypeImageManifest + " does not parse",
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, report lacks %q:\n%s", code, want, out)
		}
	}
}

func TestVerifyCorruptDocument(t *testing.T) {
	s := newStored(t)
	corrupt(t, filepath.Join(s.data, "documents", "sha256", s.manifest.Encoded()))
	code, out, _ := runSub(t, runVerify, "--data", s.data)
	if want := "DAMAGED documents: document " + string(s.manifest) + " is corrupt"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, report lacks %q:\n%s", code, want, out)
	}
}

func TestVerifyUsage(t *testing.T) {
	if code, _, errOut := runSub(t, runVerify, "--data", t.TempDir(), "extra"); code != 2 || !strings.Contains(errOut, "unexpected arguments") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
