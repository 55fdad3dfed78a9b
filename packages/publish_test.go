package packages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

var amd64 = catalog.Platform{OS: "linux", Architecture: "amd64"}

// phpTree writes a small php-like tree whose content depends on marker.
func phpTree(t *testing.T, marker string) string {
	t.Helper()
	dir := t.TempDir()
	layertest.WriteDir(t, dir, []layertest.File{
		{Name: "usr", Mode: 0o755 | os.ModeDir, Data: ""},
		{Name: "usr/local", Mode: 0o755 | os.ModeDir, Data: ""},
		{Name: "usr/local/php", Mode: 0o755 | os.ModeDir, Data: ""},
		{Name: "usr/local/php/bin", Mode: 0o755 | os.ModeDir, Data: ""},
		{Name: "usr/local/php/bin/php", Mode: 0o755, Data: "php " + marker + "\n"},
	})
	return dir
}

func phpInput(dir string) packages.Input {
	return packages.Input{
		ReleaseSpec: catalog.ReleaseSpec{
			Name:      "php",
			Version:   "8.2.36",
			Path:      []string{"/usr/local/php/bin"},
			Env:       map[string]string{"PHP_INI_DIR": "/usr/local/etc/php"},
			Requires:  []string{"zlib", "base ^12"},
			Conflicts: []string{"php5"},
			Labels:    map[string]string{"org.example.note": "hi"},
		},
		Platform: amd64,
		Dir:      dir,
	}
}

func TestPublishFromDir(t *testing.T) {
	pub, blobs, cat := newPublisher(t)
	var logs bytes.Buffer
	pub.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	dir := phpTree(t, "a")

	rel, err := pub.Publish(t.Context(), phpInput(dir))
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID() != "php 8.2.36" || len(rel.Layers) != 1 {
		t.Fatalf("release = %s with %d layers", rel.ID(), len(rel.Layers))
	}
	l := rel.Layers[0]
	var want bytes.Buffer
	diffID, err := layer.BuildFromDir(t.Context(), dir, &want)
	if err != nil {
		t.Fatal(err)
	}
	wantLayer := catalog.Layer{
		Platform: amd64, Digest: digest.FromBytes(want.Bytes()), DiffID: diffID,
		Size: int64(want.Len()), MediaType: ocispec.MediaTypeImageLayerGzip,
		Files: map[string]string{"usr/local/php/bin/php": "sha256:" + digest.FromString("php a\n").Encoded() + " 0755"},
	}
	if !l.Equal(wantLayer) {
		t.Errorf("layer = %+v, want %+v", l, wantLayer)
	}
	if !bytes.Equal(blobs.blobs[l.Digest], want.Bytes()) {
		t.Error("stored blob differs from the built layer")
	}
	if want := time.Date(2024, 5, 6, 5, 8, 9, 0, time.UTC); !rel.Published.Equal(want) || rel.Published.Location() != time.UTC {
		t.Errorf("published = %v, want %v", rel.Published, want)
	}
	wantReq := []catalog.Constraint{{Name: "base", Range: "^12"}, {Name: "zlib", Range: "*"}}
	if got := rel.Requires; len(got) != 2 || got[0] != wantReq[0] || got[1] != wantReq[1] {
		t.Errorf("requires = %v, want %v (sorted)", got, wantReq)
	}
	if got := rel.Env.Path; len(got) != 1 || got[0] != "/usr/local/php/bin" {
		t.Errorf("path = %v", got)
	}
	stored := cat.get(t, "php", "8.2.36")
	if !catalog.SameContent(stored, rel) || len(stored.Layers) != 1 || !stored.Layers[0].Equal(l) {
		t.Errorf("catalog has %+v, want %+v", stored, rel)
	}

	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log = %q: %v", logs.String(), err)
	}
	for k, v := range map[string]any{
		"name": "php", "version": "8.2.36", "platform": "linux/amd64",
		"digest": l.Digest.String(), "size": float64(l.Size),
	} {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
}

func TestPublishIdempotent(t *testing.T) {
	pub, _, cat := newPublisher(t)
	first, err := pub.Publish(t.Context(), phpInput(phpTree(t, "a")))
	if err != nil {
		t.Fatal(err)
	}
	pub.Now = func() time.Time { return fixedNow.Add(time.Hour) }
	second, err := pub.Publish(t.Context(), phpInput(phpTree(t, "a"))) // same content, other directory
	if err != nil {
		t.Fatalf("publishing the same content again: %v", err)
	}
	if !first.Layers[0].Equal(second.Layers[0]) {
		t.Errorf("layers differ: %+v vs %+v", first.Layers[0], second.Layers[0])
	}
	if got := cat.get(t, "php", "8.2.36"); len(got.Layers) != 1 || !got.Published.Equal(first.Published) {
		t.Errorf("catalog = %+v", got)
	}
}

func TestPublishFromTarMatchesDir(t *testing.T) {
	pub, _, _ := newPublisher(t)
	pub.Policy = layer.Policy{AllowSetuid: true} // layertest.Tree has a setuid file
	dir := t.TempDir()
	layertest.WriteDir(t, dir, layertest.Tree)
	fromDir, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(tarFile, layertest.MessyTar(t, layertest.TreeTar(), true), 0o644); err != nil {
		t.Fatal(err)
	}
	fromTar, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Tar: tarFile})
	if err != nil {
		t.Fatal(err)
	}
	if !fromDir.Layers[0].Equal(fromTar.Layers[0]) {
		t.Errorf("tar layer %+v != dir layer %+v", fromTar.Layers[0], fromDir.Layers[0])
	}
}

func TestPublishConflict(t *testing.T) {
	pub, _, cat := newPublisher(t)
	if _, err := pub.Publish(t.Context(), phpInput(phpTree(t, "a"))); err != nil {
		t.Fatal(err)
	}
	in := phpInput(phpTree(t, "b"))
	_, err := pub.Publish(t.Context(), in)
	if !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if want := "publishing php 8.2.36 for linux/amd64: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want prefix %q", err, want)
	}

	in.Force = true
	forced, err := pub.Publish(t.Context(), in)
	if err != nil {
		t.Fatalf("forced: %v", err)
	}
	if got := cat.get(t, "php", "8.2.36").Layers[0]; !got.Equal(forced.Layers[0]) {
		t.Errorf("catalog layer = %+v, want the forced %+v", got, forced.Layers[0])
	}
}

func TestPublishBlobFailureLeavesCatalogUntouched(t *testing.T) {
	pub, blobs, cat := newPublisher(t)
	blobs.fail = errors.New("disk full")
	_, err := pub.Publish(t.Context(), phpInput(phpTree(t, "a")))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the blob store's error", err)
	}
	if cat.calls != 0 {
		t.Errorf("catalog called %d times after a failed blob write", cat.calls)
	}
}

func TestPublishRefusesInvalidInput(t *testing.T) {
	dir := phpTree(t, "a")
	tests := []struct {
		name   string
		modify func(*packages.Input)
		want   string
	}{
		{"short version", func(in *packages.Input) { in.Version = "8.2" }, `version: "8.2" is not a strict semantic version`},
		{"v prefix", func(in *packages.Input) { in.Version = "v8.2.36" }, "version:"},
		{"env PATH", func(in *packages.Input) { in.Env = map[string]string{"PATH": "/bin"} }, "env: PATH is not allowed"},
		{"env name", func(in *packages.Input) { in.Env = map[string]string{"A=B": "x"} }, "env: invalid variable name"},
		{"relative path", func(in *packages.Input) { in.Path = []string{"usr/bin"} }, `path[0]: "usr/bin" is not an absolute path`},
		// A release's Env ends up in every composed config (issue 15).
		{"newline in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\nB=y"} }, "env: value of A contains the control character U+000A at byte 1"},
		{"carriage return in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\r"} }, "U+000D"},
		{"NUL in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\x00"} }, "U+0000"},
		{"escape in env", func(in *packages.Input) { in.Env = map[string]string{"A": "\x1b[2J"} }, "U+001B"},
		{"C1 control in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\u0085y"} }, "U+0085"},
		{"line separator in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\u2028y"} }, "U+2028"},
		{"invalid UTF-8 in env", func(in *packages.Input) { in.Env = map[string]string{"A": "x\xffy"} }, "env: value of A is not valid UTF-8"},
		{"empty path", func(in *packages.Input) { in.Path = []string{"/opt/x/bin", ""} }, "path[1]: empty"},
		{"newline in path", func(in *packages.Input) { in.Path = []string{"/opt/x\n/bin"} }, `path[0]: "/opt/x\n/bin" contains the control character U+000A`},
		{"unclean path", func(in *packages.Input) { in.Path = []string{"/opt/x/../bin"} }, `path[0]: "/opt/x/../bin" is not a clean path (write "/opt/bin")`},
		{"trailing slash", func(in *packages.Input) { in.Path = []string{"/opt/x/bin/"} }, `write "/opt/x/bin"`},
		{"dot in path", func(in *packages.Input) { in.Path = []string{"/opt/./bin"} }, "not a clean path"},
		{"bad name", func(in *packages.Input) { in.Name = "PHP" }, "name:"},
		{"bad platform", func(in *packages.Input) { in.Platform = catalog.Platform{OS: "linux"} }, "platform:"},
		{"bad requires", func(in *packages.Input) { in.Requires = []string{"base ^^12"} }, "requires[0]:"},
		{"bad conflicts", func(in *packages.Input) { in.Conflicts = []string{"Bad_Name"} }, "conflicts[0]:"},
		{"dir and tar", func(in *packages.Input) { in.Tar = "x.tar" }, "not both"},
		{"no source", func(in *packages.Input) { in.Dir = "" }, "a directory or a tar file is required"},
		{"missing dir", func(in *packages.Input) { in.Dir = filepath.Join(dir, "nope") }, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, blobs, cat := newPublisher(t)
			in := phpInput(dir)
			tc.modify(&in)
			_, err := pub.Publish(t.Context(), in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if blobs.puts != 0 || cat.calls != 0 {
				t.Errorf("stored %d blobs and %d catalog entries for invalid input", blobs.puts, cat.calls)
			}
		})
	}
}

func TestPublishReportsAllProblems(t *testing.T) {
	pub, _, _ := newPublisher(t)
	in := phpInput(phpTree(t, "a"))
	in.Version, in.Path = "8.2", []string{"bin"}
	_, err := pub.Publish(t.Context(), in)
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("err = %v, want a *ValidationError with 2 problems", err)
	}
}

func TestPublishLeavesNoTemporaryFiles(t *testing.T) {
	pub, _, _ := newPublisher(t)
	pub.Policy = layer.Policy{AllowSetuid: true} // layertest.Tree has a setuid file
	tarFile := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(tarFile, layertest.MessyTar(t, layertest.TreeTar(), false), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(t.Context(), packages.Input{ReleaseSpec: catalog.ReleaseSpec{Name: "x", Version: "1.0.0"}, Platform: amd64, Tar: tarFile}); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(pub.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temporary directory holds %d entries after publishing", len(left))
	}
}
