package manifestgen

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// Label and annotation keys recording what an image was composed of.
const (
	// KeyStack is the stack name: io.envreg.stack=env.
	KeyStack = "io.envreg.stack"
	// KeyPackagePrefix + package name is the release version:
	// io.envreg.package.php=8.2.36.
	KeyPackagePrefix = "io.envreg.package."
)

// Blob is a generated document and its exact descriptor (media type, sha256
// digest and size of Data; manifests also carry their platform).
type Blob struct {
	Descriptor ocispec.Descriptor
	Data       []byte
}

// Image is the output of Generate: the index (or manifest list) and, per
// platform in Resolution.Platforms order, one manifest and its config.
type Image struct {
	Index     Blob
	Manifests []Blob
	Configs   []Blob
}

// Manifest returns the manifest for platform p.
func (im *Image) Manifest(p catalog.Platform) (Blob, bool) {
	for _, m := range im.Manifests {
		if dp := m.Descriptor.Platform; dp != nil && dp.OS == p.OS && dp.Architecture == p.Architecture && dp.Variant == p.Variant {
			return m, true
		}
	}
	return Blob{}, false
}

// Digests returns the digest of every generated document: the configs, the
// manifests and the index.
func (im *Image) Digests() []digest.Digest {
	var ds []digest.Digest
	for _, b := range im.Blobs() {
		ds = append(ds, b.Descriptor.Digest)
	}
	return ds
}

// Blobs returns every generated document in the order they must be
// persisted: all configs, then all manifests, then the index, so that
// nothing becomes visible before what it references.
func (im *Image) Blobs() []Blob {
	out := make([]Blob, 0, len(im.Configs)+len(im.Manifests)+1)
	out = append(out, im.Configs...)
	out = append(out, im.Manifests...)
	return append(out, im.Index)
}

// Generate synthesises the config, manifest and index documents of res in
// format f. It is pure: equal input gives byte-identical output (see the
// package documentation for the rules). It fails with *TooManyLayersError
// when res has more releases than res.Stack.Limit(), and with an error
// wrapping ErrInvalidResolution for incomplete input.
func Generate(res *resolver.Resolution, f Format) (*Image, error) {
	if !f.valid() {
		return nil, fmt.Errorf("generating image: unknown format %v", f)
	}
	if err := check(res); err != nil {
		return nil, err
	}

	env, err := composeEnv(res)
	if err != nil {
		return nil, err
	}
	labels := composeLabels(res)
	created := newest(res.Releases)
	history := composeHistory(res)

	im := &Image{
		Manifests: make([]Blob, 0, len(res.Platforms)),
		Configs:   make([]Blob, 0, len(res.Platforms)),
	}
	index := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   f.IndexMediaType(),
		Manifests:   make([]ocispec.Descriptor, 0, len(res.Platforms)),
		Annotations: composeAnnotations(res),
	}
	for _, p := range res.Platforms {
		layers := make([]ocispec.Descriptor, len(res.Releases))
		diffIDs := make([]digest.Digest, len(res.Releases))
		for i, r := range res.Releases {
			l, _ := r.Layer(p) // presence checked by check
			layers[i] = LayerDescriptor(res.Stack, l, f)
			diffIDs[i] = l.DiffID
		}

		config, err := blob(f.ConfigMediaType(), ocispec.Image{
			Created:  created,
			Platform: ocispec.Platform{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant},
			Config: ocispec.ImageConfig{
				User:       res.Stack.Image.User,
				Env:        env,
				Entrypoint: res.Stack.Image.Entrypoint,
				Cmd:        res.Stack.Image.Cmd,
				WorkingDir: res.Stack.Image.WorkingDir,
				Labels:     labels,
			},
			RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
			History: history,
		})
		if err != nil {
			return nil, err
		}

		manifest, err := blob(f.ManifestMediaType(), ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: f.ManifestMediaType(),
			Config:    config.Descriptor,
			Layers:    layers,
		})
		if err != nil {
			return nil, err
		}
		manifest.Descriptor.Platform = &ocispec.Platform{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant}

		im.Configs = append(im.Configs, config)
		im.Manifests = append(im.Manifests, manifest)
		index.Manifests = append(index.Manifests, manifest.Descriptor)
	}

	im.Index, err = blob(f.IndexMediaType(), index)
	if err != nil {
		return nil, err
	}
	return im, nil
}

// composeHistory is the config's history: one entry per layer.
func composeHistory(res *resolver.Resolution) []ocispec.History {
	history := make([]ocispec.History, len(res.Releases))
	for i, r := range res.Releases {
		history[i] = ocispec.History{
			Created:   timePtr(r.Published),
			CreatedBy: "envreg: " + r.Name + " " + r.Version.String(),
		}
	}
	return history
}

// check validates what Generate relies on.
// LayerDescriptor describes layer l as stack st serves it in format f: in
// the stack's layer compression when l is stored in that form (see
// catalog.CompressionNone), else as published.
func LayerDescriptor(st catalog.Stack, l catalog.Layer, f Format) ocispec.Descriptor {
	b := l.Served(st.LayerCompression)
	return ocispec.Descriptor{MediaType: f.LayerMediaType(b.MediaType), Digest: b.Digest, Size: b.Size}
}

func check(res *resolver.Resolution) error {
	if res == nil {
		return fmt.Errorf("%w: nil", ErrInvalidResolution)
	}
	if len(res.Releases) == 0 {
		return fmt.Errorf("%w: no releases", ErrInvalidResolution)
	}
	if len(res.Platforms) == 0 {
		return fmt.Errorf("%w: no platforms", ErrInvalidResolution)
	}
	if n, limit := len(res.Releases), res.Stack.Limit(); n > limit {
		return &TooManyLayersError{Stack: res.Stack.Name, Count: n, Limit: limit}
	}
	for i, p := range res.Platforms {
		if slices.Contains(res.Platforms[:i], p) {
			return fmt.Errorf("%w: platform %s listed twice", ErrInvalidResolution, p)
		}
	}
	names := make(map[string]bool, len(res.Releases))
	for _, r := range res.Releases {
		if r.Version == nil {
			return fmt.Errorf("%w: release %s has no version", ErrInvalidResolution, r.Name)
		}
		if names[r.Name] {
			return fmt.Errorf("%w: package %s selected twice", ErrInvalidResolution, r.Name)
		}
		names[r.Name] = true
		for _, p := range res.Platforms {
			l, ok := r.Layer(p)
			if !ok {
				return fmt.Errorf("%w: release %s has no layer for %s", ErrInvalidResolution, r.ID(), p)
			}
			if l.Digest == "" || l.DiffID == "" || l.MediaType == "" || l.Size <= 0 {
				return fmt.Errorf("%w: release %s layer for %s is incomplete (digest %q, diffID %q, size %d, media type %q)",
					ErrInvalidResolution, r.ID(), p, l.Digest, l.DiffID, l.Size, l.MediaType)
			}
		}
	}
	return nil
}

// composeEnv returns PATH followed by the other variables sorted by name
// (see the package documentation).
func composeEnv(res *resolver.Resolution) ([]string, error) {
	tail := res.Stack.Image.Env["PATH"]
	if tail == "" {
		tail = catalog.DefaultPath
	}
	var dirs []string
	for _, r := range slices.Backward(res.Releases) {
		dirs = append(dirs, r.Env.Path...)
	}
	dirs = append(dirs, strings.Split(tail, ":")...)
	seen := make(map[string]bool, len(dirs))
	path := dirs[:0]
	for _, d := range dirs {
		if d != "" && !seen[d] {
			seen[d] = true
			path = append(path, d)
		}
	}

	vars := make(map[string]string, len(res.Stack.Image.Env))
	for k, v := range res.Stack.Image.Env {
		if k != "PATH" {
			vars[k] = v
		}
	}
	for _, r := range res.Releases {
		for k, v := range r.Env.Vars {
			if k == "PATH" {
				return nil, fmt.Errorf("%w: release %s sets PATH in Env.Vars (use Env.Path)", ErrInvalidResolution, r.ID())
			}
			vars[k] = v
		}
	}
	env := make([]string, 0, len(vars)+1)
	env = append(env, "PATH="+strings.Join(path, ":"))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%w: invalid environment variable name %q", ErrInvalidResolution, k)
		}
		env = append(env, k+"="+vars[k])
	}
	return env, nil
}

// composeLabels returns the stack's labels, overridden by the releases'
// labels in layer order, overridden by the io.envreg.* labels (which no
// package can forge).
func composeLabels(res *resolver.Resolution) map[string]string {
	labels := maps.Clone(res.Stack.Image.Labels)
	if labels == nil {
		labels = make(map[string]string)
	}
	for _, r := range res.Releases {
		maps.Copy(labels, r.Labels)
	}
	maps.Copy(labels, composeAnnotations(res))
	return labels
}

// composeAnnotations records what the requirements resolved to.
func composeAnnotations(res *resolver.Resolution) map[string]string {
	a := make(map[string]string, len(res.Releases)+1)
	a[KeyStack] = res.Stack.Name
	for _, r := range res.Releases {
		a[KeyPackagePrefix+r.Name] = r.Version.String()
	}
	return a
}

// newest returns the latest publish time of rs, or nil if none is set.
func newest(rs []catalog.Release) *time.Time {
	var t time.Time
	for _, r := range rs {
		if r.Published.After(t) {
			t = r.Published
		}
	}
	return timePtr(t)
}

// timePtr normalises t to UTC seconds; the zero time becomes nil (omitted).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

// blob marshals v and describes the bytes. It is the only place documents
// are serialised: json.Marshal, no trailing newline, no indentation.
func blob(mediaType string, v any) (Blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Blob{}, fmt.Errorf("marshalling %s: %w", mediaType, err)
	}
	return Blob{
		Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		Data:       data,
	}, nil
}
