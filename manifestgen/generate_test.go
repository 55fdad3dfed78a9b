package manifestgen_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var formats = []manifestgen.Format{manifestgen.FormatOCI, manifestgen.FormatDocker}

func generate(t testing.TB, res *resolver.Resolution, f manifestgen.Format) *manifestgen.Image {
	t.Helper()
	im, err := manifestgen.Generate(res, f)
	if err != nil {
		t.Fatalf("Generate(%v): %v", f, err)
	}
	return im
}

func decode[T any](t testing.TB, b manifestgen.Blob) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v\n%s", b.Descriptor.MediaType, err, b.Data)
	}
	return v
}

func platformFile(p catalog.Platform) string { return strings.ReplaceAll(p.String(), "/", "-") }

// goldenFiles names every document of the fixture image by its testdata file.
func goldenFiles(f manifestgen.Format, im *manifestgen.Image, ps []catalog.Platform) map[string]manifestgen.Blob {
	files := map[string]manifestgen.Blob{f.String() + "-index.json": im.Index}
	for i, p := range ps {
		files[f.String()+"-manifest-"+platformFile(p)+".json"] = im.Manifests[i]
		files[f.String()+"-config-"+platformFile(p)+".json"] = im.Configs[i]
	}
	return files
}

// Golden digests: a change here changes the digest of every image envreg
// serves, which makes every client pull again. Change them only on purpose.
var goldenDigests = map[string]digest.Digest{
	"oci-index.json":                      "sha256:4b6db1e7cfe0c003224335d0432b17e0c037e3a901b443f51afa82c12429d9a5",
	"oci-manifest-linux-amd64.json":       "sha256:299958a6694823035700e1f4335e59c75b31f8dc7774b27f34c2ea427b802c9b",
	"oci-manifest-linux-arm64-v8.json":    "sha256:32b42f0f974df37c2382d4e2ef777e480db1cc2d78e083fba144761defe78756",
	"oci-config-linux-amd64.json":         "sha256:13f966116f2dc4b97b3b4d72eb0cd9e73f729e5ad0744e80704e26f6893b2180",
	"oci-config-linux-arm64-v8.json":      "sha256:5589f7f51731283fd5b3162d538508ff664c787099c5b97c427109746cf60eb2",
	"docker-index.json":                   "sha256:19d47b9ab0611d81b88c3eb2c9555c03394c5c10e38280cc3e37c0d691bccdd4",
	"docker-manifest-linux-amd64.json":    "sha256:0c3a5bfe0b9c0b192e1fcd108b0f741b49f611d60b960371faa0715c189a1285",
	"docker-manifest-linux-arm64-v8.json": "sha256:d0c63bcde10cbc28cacbd279c2274e507e13337034286b7a68253ac6edca6986",
	"docker-config-linux-amd64.json":      "sha256:13f966116f2dc4b97b3b4d72eb0cd9e73f729e5ad0744e80704e26f6893b2180",
	"docker-config-linux-arm64-v8.json":   "sha256:5589f7f51731283fd5b3162d538508ff664c787099c5b97c427109746cf60eb2",
}

func TestGolden(t *testing.T) {
	seen := 0
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			res := fixture()
			im := generate(t, res, f)
			for name, b := range goldenFiles(f, im, res.Platforms) {
				seen++
				path := filepath.Join("testdata", name)
				if *update {
					if err := os.WriteFile(path, b.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create the golden files)", err)
				}
				if !bytes.Equal(b.Data, want) {
					t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:  %s\nwant: %s", name, b.Data, want)
				}
				if got, want := b.Descriptor.Digest, goldenDigests[name]; got != want {
					t.Errorf("digest of %s = %q, want %q", name, got, want)
				}
			}
		})
	}
	if seen != len(goldenDigests) {
		t.Errorf("checked %d golden documents, the table has %d", seen, len(goldenDigests))
	}
}

// TestDescriptors checks that every descriptor describes exactly its bytes
// and that the index points at the manifests and the manifests at the configs.
func TestDescriptors(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			res := fixture()
			im := generate(t, res, f)
			for _, b := range im.Blobs() {
				if got, want := b.Descriptor.Digest, digest.FromBytes(b.Data); got != want {
					t.Errorf("descriptor digest %s, bytes hash to %s", got, want)
				}
				if got, want := b.Descriptor.Size, int64(len(b.Data)); got != want {
					t.Errorf("descriptor size %d, want %d", got, want)
				}
				if bytes.HasSuffix(b.Data, []byte("\n")) || bytes.Contains(b.Data, []byte("\n  ")) {
					t.Errorf("document %s is not compact JSON: %q", b.Descriptor.Digest, b.Data)
				}
			}
			if n := len(res.Platforms); len(im.Manifests) != n || len(im.Configs) != n {
				t.Fatalf("got %d manifests and %d configs, want %d of each", len(im.Manifests), len(im.Configs), n)
			}
			index := decode[ocispec.Index](t, im.Index)
			if !slicesEqualDesc(index.Manifests, descriptors(im.Manifests)) {
				t.Errorf("index manifests = %+v, want the manifest descriptors %+v", index.Manifests, descriptors(im.Manifests))
			}
			for i, mb := range im.Manifests {
				m := decode[ocispec.Manifest](t, mb)
				cd := im.Configs[i].Descriptor
				if m.Config.Digest != cd.Digest || m.Config.Size != cd.Size || m.Config.MediaType != cd.MediaType || m.Config.Platform != nil {
					t.Errorf("manifest %d config = %+v, want %+v", i, m.Config, cd)
				}
			}
		})
	}
}

func descriptors(bs []manifestgen.Blob) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, b := range bs {
		out = append(out, b.Descriptor)
	}
	return out
}

func slicesEqualDesc(a, b []ocispec.Descriptor) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// allBytes concatenates every document, for byte-identity checks.
func allBytes(im *manifestgen.Image) [][]byte {
	var out [][]byte
	for _, b := range im.Blobs() {
		out = append(out, b.Data)
	}
	return out
}

func sameImage(t *testing.T, got, want *manifestgen.Image) {
	t.Helper()
	g, w := allBytes(got), allBytes(want)
	if !slices.EqualFunc(g, w, bytes.Equal) {
		t.Errorf("documents differ:\ngot:  %s\nwant: %s", g, w)
	}
	if got.Index.Descriptor.Digest != want.Index.Descriptor.Digest {
		t.Errorf("index digest %s, want %s", got.Index.Descriptor.Digest, want.Index.Descriptor.Digest)
	}
}

func TestDeterministic(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			want := generate(t, fixture(), f)
			// Map iteration order is random; enough runs would catch any
			// unsorted output derived from a map.
			for range 20 {
				sameImage(t, generate(t, fixture(), f), want)
			}
			// The input is not modified: generating from the same value
			// again gives the same bytes.
			res := fixture()
			first := generate(t, res, f)
			sameImage(t, generate(t, res, f), first)
		})
	}
}

func TestTimeZoneIndependent(t *testing.T) {
	zones := []*time.Location{time.FixedZone("CET", 3600), time.FixedZone("PDT", -7*3600), time.FixedZone("UTC", 0)}
	for _, f := range formats {
		want := generate(t, fixture(), f)
		for _, loc := range zones {
			t.Run(f.String()+"/"+loc.String(), func(t *testing.T) {
				res := fixture()
				for i := range res.Releases {
					res.Releases[i].Published = res.Releases[i].Published.In(loc)
				}
				sameImage(t, generate(t, res, f), want)
			})
		}
		t.Run(f.String()+"/subsecond", func(t *testing.T) {
			res := fixture()
			for i := range res.Releases {
				res.Releases[i].Published = res.Releases[i].Published.Add(999 * time.Millisecond)
			}
			sameImage(t, generate(t, res, f), want)
		})
	}
}

// TestRequestIgnored: the same releases reached from another tag spelling
// give the same bytes, and the spelling appears in no document.
func TestRequestIgnored(t *testing.T) {
	const marker = "spelled-like-this"
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			want := generate(t, fixture(), f)
			res := fixture()
			res.Request = resolver.Request{Stack: "env", Requirements: []resolver.Requirement{
				{Name: "nodejs", Range: mustConstraint("^20.11"), Spelling: marker},
				{Name: "php", Range: mustConstraint("8.2.36"), Spelling: marker},
			}}
			got := generate(t, res, f)
			sameImage(t, got, want)
			for _, b := range got.Blobs() {
				if bytes.Contains(b.Data, []byte(marker)) {
					t.Errorf("document contains the request spelling: %s", b.Data)
				}
			}
		})
	}
}

func configOf(t *testing.T, im *manifestgen.Image, i int) ocispec.Image {
	t.Helper()
	return decode[ocispec.Image](t, im.Configs[i])
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*resolver.Resolution)
		want   []string
	}{
		{
			name: "fixture",
			want: []string{
				"PATH=/opt/php/bin:/opt/php/sbin:/opt/nodejs/bin:/usr/local/bin:/usr/local/base/bin:/usr/bin:/bin",
				"LANG=en_US.UTF-8", // the release overrides the stack
				"NODE_PATH=/opt/nodejs/lib/node_modules",
				"PHP_INI_DIR=/opt/php/etc",
				"TZ=UTC",
			},
		},
		{
			name:   "stack without env uses the default PATH",
			modify: func(r *resolver.Resolution) { r.Stack.Image.Env = nil },
			want: []string{
				"PATH=/opt/php/bin:/opt/php/sbin:/opt/nodejs/bin:/usr/local/bin:/usr/local/base/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
				"LANG=en_US.UTF-8",
				"NODE_PATH=/opt/nodejs/lib/node_modules",
				"PHP_INI_DIR=/opt/php/etc",
			},
		},
		{
			name:   "empty stack PATH uses the default PATH",
			modify: func(r *resolver.Resolution) { r.Stack.Image.Env = map[string]string{"PATH": ""} },
			want: []string{
				"PATH=/opt/php/bin:/opt/php/sbin:/opt/nodejs/bin:/usr/local/bin:/usr/local/base/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
				"LANG=en_US.UTF-8",
				"NODE_PATH=/opt/nodejs/lib/node_modules",
				"PHP_INI_DIR=/opt/php/etc",
			},
		},
		{
			name: "no package paths or variables",
			modify: func(r *resolver.Resolution) {
				for i := range r.Releases {
					r.Releases[i].Env = catalog.Env{}
				}
				r.Stack.Image.Env = map[string]string{"B": "2", "A": "1", "PATH": "/bin"}
			},
			want: []string{"PATH=/bin", "A=1", "B=2"},
		},
		{
			name: "duplicate and empty entries are dropped, first occurrence kept",
			modify: func(r *resolver.Resolution) {
				r.Releases[0].Env.Path = []string{"/shared", "", "/base"}
				r.Releases[1].Env.Path = nil
				r.Releases[2].Env.Path = []string{"/php", "/shared", "/php"}
				r.Stack.Image.Env = map[string]string{"PATH": "/bin::/shared:/bin"}
			},
			want: []string{
				"PATH=/php:/shared:/base:/bin",
				"LANG=en_US.UTF-8",
				"NODE_PATH=/opt/nodejs/lib/node_modules",
				"PHP_INI_DIR=/opt/php/etc",
			},
		},
		{
			name: "later release wins a variable",
			modify: func(r *resolver.Resolution) {
				r.Releases[0].Env.Vars = map[string]string{"PHP_INI_DIR": "/base/etc"}
			},
			want: []string{
				"PATH=/opt/php/bin:/opt/php/sbin:/opt/nodejs/bin:/usr/local/bin:/usr/local/base/bin:/usr/bin:/bin",
				"LANG=en_US.UTF-8",
				"NODE_PATH=/opt/nodejs/lib/node_modules",
				"PHP_INI_DIR=/opt/php/etc",
				"TZ=UTC",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := fixture()
			if tc.modify != nil {
				tc.modify(res)
			}
			im := generate(t, res, manifestgen.FormatOCI)
			for i := range res.Platforms {
				if got := configOf(t, im, i).Config.Env; !slices.Equal(got, tc.want) {
					t.Errorf("platform %d Env =\n%q\nwant\n%q", i, got, tc.want)
				}
			}
		})
	}
}

func TestEnvInvalid(t *testing.T) {
	tests := map[string]func(*resolver.Resolution){
		"PATH in release vars":      func(r *resolver.Resolution) { r.Releases[1].Env.Vars = map[string]string{"PATH": "/x"} },
		"'=' in a release variable": func(r *resolver.Resolution) { r.Releases[1].Env.Vars = map[string]string{"A=B": "x"} },
		"empty stack variable name": func(r *resolver.Resolution) { r.Stack.Image.Env = map[string]string{"": "x"} },
		"'=' in a stack variable":   func(r *resolver.Resolution) { r.Stack.Image.Env = map[string]string{"X=1": "x"} },
	}
	for name, modify := range tests {
		t.Run(name, func(t *testing.T) {
			res := fixture()
			modify(res)
			_, err := manifestgen.Generate(res, manifestgen.FormatOCI)
			if !errors.Is(err, manifestgen.ErrInvalidResolution) {
				t.Errorf("Generate: %v, want an error wrapping ErrInvalidResolution", err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			res := fixture()
			im := generate(t, res, f)
			for i, p := range res.Platforms {
				cfg := configOf(t, im, i)
				if cfg.OS != p.OS || cfg.Architecture != p.Architecture || cfg.Variant != p.Variant {
					t.Errorf("config %d platform = %s/%s/%s, want %s", i, cfg.OS, cfg.Architecture, cfg.Variant, p)
				}
				if want := time.Date(2024, 3, 5, 9, 15, 42, 0, time.UTC); cfg.Created == nil || !cfg.Created.Equal(want) {
					t.Errorf("created = %v, want the newest release's %v", cfg.Created, want)
				}
				if !bytes.Contains(im.Configs[i].Data, []byte(`"created":"2024-03-05T09:15:42Z"`)) {
					t.Errorf("created is not written in UTC seconds: %s", im.Configs[i].Data)
				}
				if cfg.RootFS.Type != "layers" {
					t.Errorf("rootfs type = %q, want layers", cfg.RootFS.Type)
				}
				var wantDiffIDs []digest.Digest
				for _, r := range res.Releases {
					wantDiffIDs = append(wantDiffIDs, fakeLayer(r.Name, r.Version.String(), p).DiffID)
				}
				if !slices.Equal(cfg.RootFS.DiffIDs, wantDiffIDs) {
					t.Errorf("diff_ids = %v, want %v (layer order)", cfg.RootFS.DiffIDs, wantDiffIDs)
				}

				wantHistory := []struct {
					by      string
					created time.Time
				}{
					{"envreg: base 12.0.0", time.Date(2024, 1, 10, 8, 0, 0, 0, time.UTC)},
					{"envreg: nodejs 20.11.1", time.Date(2024, 2, 1, 12, 30, 0, 0, time.UTC)},
					{"envreg: php 8.2.36", time.Date(2024, 3, 5, 9, 15, 42, 0, time.UTC)},
				}
				if len(cfg.History) != len(wantHistory) {
					t.Fatalf("history has %d entries, want %d", len(cfg.History), len(wantHistory))
				}
				for j, h := range cfg.History {
					if h.CreatedBy != wantHistory[j].by || h.Created == nil || !h.Created.Equal(wantHistory[j].created) || h.EmptyLayer {
						t.Errorf("history[%d] = %+v, want created_by %q at %v, not empty", j, h, wantHistory[j].by, wantHistory[j].created)
					}
				}
				if bytes.Contains(im.Configs[i].Data, []byte("empty_layer")) {
					t.Errorf("config marks a layer empty: %s", im.Configs[i].Data)
				}

				c := cfg.Config
				if c.WorkingDir != "/app" || c.User != "1000:1000" ||
					!slices.Equal(c.Entrypoint, []string{"/usr/bin/tini", "--"}) || !slices.Equal(c.Cmd, []string{"/bin/sh"}) {
					t.Errorf("config = %+v, want the stack's WorkingDir, User, Entrypoint and Cmd", c)
				}
				wantLabels := map[string]string{
					"maintainer":                        "php team", // stack < base < php
					"org.opencontainers.image.licenses": "MIT",
					"org.opencontainers.image.vendor":   "envreg",
					"io.envreg.stack":                   "env",
					"io.envreg.package.base":            "12.0.0",
					"io.envreg.package.nodejs":          "20.11.1",
					"io.envreg.package.php":             "8.2.36",
				}
				if !mapsEqual(c.Labels, wantLabels) {
					t.Errorf("labels = %v, want %v", c.Labels, wantLabels)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReservedLabels(t *testing.T) {
	res := fixture()
	res.Releases[2].Labels = map[string]string{"io.envreg.stack": "forged", "io.envreg.package.php": "0.0.1"}
	res.Stack.Image.Labels = map[string]string{"io.envreg.package.nodejs": "forged"}
	cfg := configOf(t, generate(t, res, manifestgen.FormatOCI), 0)
	for k, want := range map[string]string{"io.envreg.stack": "env", "io.envreg.package.php": "8.2.36", "io.envreg.package.nodejs": "20.11.1"} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
}

// TestCreatedNewest: created is the newest publish time, wherever that
// release is in layer order.
func TestCreatedNewest(t *testing.T) {
	res := fixture()
	newest := time.Date(2025, 6, 1, 0, 0, 1, 0, time.UTC)
	res.Releases[0].Published = newest // base, the first layer
	res.Releases[2].Published = time.Time{}
	cfg := configOf(t, generate(t, res, manifestgen.FormatOCI), 0)
	if cfg.Created == nil || !cfg.Created.Equal(newest) {
		t.Errorf("created = %v, want %v", cfg.Created, newest)
	}
	if h := cfg.History[2]; h.Created != nil || h.CreatedBy != "envreg: php 8.2.36" {
		t.Errorf("history of a release without publish time = %+v, want no created", h)
	}
}

func TestCreatedZero(t *testing.T) {
	res := fixture()
	for i := range res.Releases {
		res.Releases[i].Published = time.Time{}
	}
	im := generate(t, res, manifestgen.FormatOCI)
	if bytes.Contains(im.Configs[0].Data, []byte(`"created"`)) || bytes.Contains(im.Configs[0].Data, []byte("0001-01-01")) {
		t.Errorf("config without publish times has a created time: %s", im.Configs[0].Data)
	}
	if n := len(configOf(t, im, 0).History); n != 3 {
		t.Errorf("history has %d entries, want 3", n)
	}
}

func TestIndex(t *testing.T) {
	wantAnnotations := map[string]string{
		"io.envreg.stack":          "env",
		"io.envreg.package.base":   "12.0.0",
		"io.envreg.package.nodejs": "20.11.1",
		"io.envreg.package.php":    "8.2.36",
	}
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			res := fixture()
			im := generate(t, res, f)
			index := decode[ocispec.Index](t, im.Index)
			if index.SchemaVersion != 2 {
				t.Errorf("schemaVersion = %d, want 2", index.SchemaVersion)
			}
			if !mapsEqual(index.Annotations, wantAnnotations) {
				t.Errorf("annotations = %v, want %v", index.Annotations, wantAnnotations)
			}
			if len(index.Manifests) != 2 {
				t.Fatalf("index has %d manifests, want 2", len(index.Manifests))
			}
			for i, want := range []ocispec.Platform{
				{OS: "linux", Architecture: "amd64"},
				{OS: "linux", Architecture: "arm64", Variant: "v8"},
			} {
				d := index.Manifests[i]
				if d.Platform == nil || d.Platform.OS != want.OS || d.Platform.Architecture != want.Architecture ||
					d.Platform.Variant != want.Variant || d.Platform.OSVersion != "" || d.Platform.OSFeatures != nil {
					t.Errorf("manifests[%d].platform = %+v, want %+v", i, d.Platform, want)
				}
				if d.Annotations != nil || d.URLs != nil {
					t.Errorf("manifests[%d] has extra fields: %+v", i, d)
				}
			}
			for _, p := range res.Platforms {
				if m, ok := im.Manifest(p); !ok || m.Descriptor.Platform == nil || m.Descriptor.Platform.Variant != p.Variant {
					t.Errorf("Manifest(%s) = %+v, %v", p, m.Descriptor, ok)
				}
			}
			if m, ok := im.Manifest(catalog.Platform{OS: "linux", Architecture: "arm64"}); ok {
				t.Errorf("Manifest(linux/arm64) without variant = %v, want none", m.Descriptor)
			}
		})
	}
}

func TestBlobsOrder(t *testing.T) {
	im := generate(t, fixture(), manifestgen.FormatOCI)
	var got []digest.Digest
	for _, b := range im.Blobs() {
		got = append(got, b.Descriptor.Digest)
	}
	want := []digest.Digest{
		im.Configs[0].Descriptor.Digest, im.Configs[1].Descriptor.Digest,
		im.Manifests[0].Descriptor.Digest, im.Manifests[1].Descriptor.Digest,
		im.Index.Descriptor.Digest,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Blobs() = %v, want configs, manifests, index: %v", got, want)
	}
}

func TestMediaTypes(t *testing.T) {
	tests := []struct {
		format                      manifestgen.Format
		index, manifest, config     string
		gzip, tar, zstd, dockerGzip string // how each stored layer type is described
	}{
		{
			format: manifestgen.FormatOCI,
			index:  ocispec.MediaTypeImageIndex, manifest: ocispec.MediaTypeImageManifest, config: ocispec.MediaTypeImageConfig,
			gzip: ocispec.MediaTypeImageLayerGzip, tar: ocispec.MediaTypeImageLayer, zstd: ocispec.MediaTypeImageLayerZstd,
			dockerGzip: manifestgen.MediaTypeDockerLayerGzip,
		},
		{
			format: manifestgen.FormatDocker,
			index:  manifestgen.MediaTypeDockerManifestList, manifest: manifestgen.MediaTypeDockerManifest, config: manifestgen.MediaTypeDockerConfig,
			gzip: manifestgen.MediaTypeDockerLayerGzip, tar: "application/vnd.docker.image.rootfs.diff.tar", zstd: ocispec.MediaTypeImageLayerZstd,
			dockerGzip: manifestgen.MediaTypeDockerLayerGzip,
		},
	}
	for _, tc := range tests {
		t.Run(tc.format.String(), func(t *testing.T) {
			res := fixture()
			stored := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerZstd}
			for i := range res.Releases {
				for j := range res.Releases[i].Layers {
					res.Releases[i].Layers[j].MediaType = stored[i]
				}
			}
			extra := release("legacy", "1.0.0", time.Time{}, amd64, arm64)
			for j := range extra.Layers {
				extra.Layers[j].MediaType = manifestgen.MediaTypeDockerLayerGzip
			}
			res.Releases = append(res.Releases, extra)

			im := generate(t, res, tc.format)
			if got := im.Index.Descriptor.MediaType; got != tc.index {
				t.Errorf("index descriptor media type = %q, want %q", got, tc.index)
			}
			if got := decode[ocispec.Index](t, im.Index).MediaType; got != tc.index {
				t.Errorf("index mediaType = %q, want %q", got, tc.index)
			}
			for i, mb := range im.Manifests {
				if mb.Descriptor.MediaType != tc.manifest {
					t.Errorf("manifest descriptor media type = %q, want %q", mb.Descriptor.MediaType, tc.manifest)
				}
				m := decode[ocispec.Manifest](t, mb)
				if m.MediaType != tc.manifest || m.SchemaVersion != 2 {
					t.Errorf("manifest mediaType = %q schemaVersion %d, want %q 2", m.MediaType, m.SchemaVersion, tc.manifest)
				}
				if m.Config.MediaType != tc.config || im.Configs[i].Descriptor.MediaType != tc.config {
					t.Errorf("config media type = %q / %q, want %q", m.Config.MediaType, im.Configs[i].Descriptor.MediaType, tc.config)
				}
				var got []string
				for _, l := range m.Layers {
					got = append(got, l.MediaType)
				}
				if want := []string{tc.gzip, tc.tar, tc.zstd, tc.dockerGzip}; !slices.Equal(got, want) {
					t.Errorf("layer media types = %q, want %q", got, want)
				}
				for j, l := range m.Layers {
					want := res.Releases[j].Layers[i]
					if l.Digest != want.Digest || l.Size != want.Size || l.Platform != nil || l.Annotations != nil {
						t.Errorf("layer %d = %+v, want digest %s size %d and nothing else", j, l, want.Digest, want.Size)
					}
				}
			}
		})
	}
}

// TestSameConfigJSON: the Docker config is the OCI config; only the
// descriptor's media type differs.
func TestSameConfigJSON(t *testing.T) {
	oci := generate(t, fixture(), manifestgen.FormatOCI)
	docker := generate(t, fixture(), manifestgen.FormatDocker)
	for i := range oci.Configs {
		if !bytes.Equal(oci.Configs[i].Data, docker.Configs[i].Data) {
			t.Errorf("config %d differs between formats:\noci:    %s\ndocker: %s", i, oci.Configs[i].Data, docker.Configs[i].Data)
		}
	}
}

func TestFormat(t *testing.T) {
	for f, want := range map[manifestgen.Format]string{manifestgen.FormatOCI: "oci", manifestgen.FormatDocker: "docker", 7: "Format(7)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
	if _, err := manifestgen.Generate(fixture(), 7); err == nil {
		t.Error("Generate with an unknown format succeeded")
	}
}

func TestTooManyLayers(t *testing.T) {
	tests := []struct {
		name      string
		res       *resolver.Resolution
		maxLayers int
		wantErr   bool
		count     int
		limit     int
	}{
		{name: "at the stack limit", res: fixture(), maxLayers: 3},
		{name: "over the stack limit", res: fixture(), maxLayers: 2, wantErr: true, count: 3, limit: 2},
		{name: "at the default limit", res: manyReleases(catalog.DefaultMaxLayers)},
		{name: "over the default limit", res: manyReleases(catalog.DefaultMaxLayers + 1), wantErr: true, count: 101, limit: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Stack.MaxLayers = tc.maxLayers
			im, err := manifestgen.Generate(tc.res, manifestgen.FormatOCI)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if n := len(decode[ocispec.Manifest](t, im.Manifests[0]).Layers); n != len(tc.res.Releases) {
					t.Errorf("manifest has %d layers, want %d", n, len(tc.res.Releases))
				}
				return
			}
			var tm *manifestgen.TooManyLayersError
			if !errors.As(err, &tm) {
				t.Fatalf("Generate: %v, want *TooManyLayersError", err)
			}
			if tm.Count != tc.count || tm.Limit != tc.limit || tm.Stack != tc.res.Stack.Name {
				t.Errorf("error = %+v, want Count %d Limit %d Stack %s", tm, tc.count, tc.limit, tc.res.Stack.Name)
			}
			for _, s := range []string{"maxLayers", "127", tc.res.Stack.Name} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestInvalidResolution(t *testing.T) {
	tests := map[string]func() *resolver.Resolution{
		"nil":         func() *resolver.Resolution { return nil },
		"empty":       func() *resolver.Resolution { return &resolver.Resolution{} },
		"no releases": func() *resolver.Resolution { r := fixture(); r.Releases = nil; return r },
		"no platforms": func() *resolver.Resolution {
			r := fixture()
			r.Platforms = nil
			return r
		},
		"platform listed twice": func() *resolver.Resolution {
			r := fixture()
			r.Platforms = []catalog.Platform{amd64, arm64, amd64}
			return r
		},
		"missing layer for a platform": func() *resolver.Resolution {
			r := fixture()
			r.Releases[1].Layers = r.Releases[1].Layers[:1] // amd64 only
			return r
		},
		"unknown platform": func() *resolver.Resolution {
			r := fixture()
			r.Platforms = append(r.Platforms, catalog.Platform{OS: "linux", Architecture: "s390x"})
			return r
		},
		"package twice": func() *resolver.Resolution {
			r := fixture()
			r.Releases = append(r.Releases, r.Releases[0])
			return r
		},
		"no version": func() *resolver.Resolution {
			r := fixture()
			r.Releases[2].Version = nil
			return r
		},
		"layer without media type": func() *resolver.Resolution {
			r := fixture()
			r.Releases[0].Layers[1].MediaType = ""
			return r
		},
		"layer without diff ID": func() *resolver.Resolution {
			r := fixture()
			r.Releases[0].Layers[0].DiffID = ""
			return r
		},
		"layer without size": func() *resolver.Resolution {
			r := fixture()
			r.Releases[0].Layers[0].Size = 0
			return r
		},
	}
	for name, res := range tests {
		t.Run(name, func(t *testing.T) {
			im, err := manifestgen.Generate(res(), manifestgen.FormatOCI)
			if !errors.Is(err, manifestgen.ErrInvalidResolution) {
				t.Errorf("Generate = %v, %v; want an error wrapping ErrInvalidResolution", im, err)
			}
		})
	}
}

func TestMissingLayerMessage(t *testing.T) {
	res := fixture()
	res.Releases[1].Layers = res.Releases[1].Layers[:1]
	_, err := manifestgen.Generate(res, manifestgen.FormatOCI)
	if want := "invalid resolution: release nodejs 20.11.1 has no layer for linux/arm64/v8"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
