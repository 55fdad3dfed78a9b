// Package catalog is envreg's vocabulary: package versions (Release), the
// layers they ship per platform, stacks (the virtual repositories clients
// pull from), and immutable snapshots of the whole catalog at one generation.
//
// ReleaseSpec is a release as people write it (publish flags, recipe
// YAML, push labels); its Release method is the one validation all of
// them go through, and ValidationError lists what it found.
//
// It also defines the storage ports the rest of the program depends on
// (Reader, Publisher, Documents, Compositions, Repositories, Store), and
// writes the semantics of ordinary repositories once (RepositoryStore)
// over the narrow RepositoryDriver port a backend implements. Backends
// live in sub-packages (fsstore, redisstore), run the contract in
// catalogtest, and are chosen by cmd/envreg. This package knows nothing
// about HTTP, files or Redis.
package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Errors reported by catalog stores. Callers test them with errors.Is.
var (
	// ErrNotFound: the release, stack or document does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a release with the same name, version and platform exists
	// with different content and the publish was not forced.
	ErrExists = errors.New("already exists")
	// ErrAlreadyPublished: an exclusive publish (PublishOptions.Exclusive)
	// found a platform of the release published already, by another job
	// or an earlier run. It wraps ErrExists.
	ErrAlreadyPublished = fmt.Errorf("%w: published already (exclusive publish)", ErrExists)
	// ErrUnavailable: the store cannot answer now (its Redis is down, it
	// was closed); retrying later may succeed. It is
	// layerstore.ErrUnavailable, so one errors.Is covers every backend.
	ErrUnavailable = layerstore.ErrUnavailable
)

// Platform is an OCI platform such as linux/amd64 or linux/arm/v7.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// ParsePlatform parses "os/arch" or "os/arch/variant".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimFunc(p, isPlatformRune) != "" {
			return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant] in lower-case letters and digits", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func isPlatformRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.'
}

// String returns "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// Layer is one package version's filesystem layer for one platform.
type Layer struct {
	Platform  Platform      `json:"platform"`
	Digest    digest.Digest `json:"digest"`    // digest of the compressed blob
	DiffID    digest.Digest `json:"diffID"`    // digest of the uncompressed tar
	Size      int64         `json:"size"`      // size of the compressed blob in bytes
	MediaType string        `json:"mediaType"` // OCI layer media type, e.g. application/vnd.oci.image.layer.v1.tar+gzip
	// TarSize is the size of the uncompressed tar when the publishing job
	// stored it too, as the blob whose digest is DiffID: the form a stack
	// with layerCompression "none" serves. 0: only the compressed form is
	// stored. Equal ignores it (one diffID, one tar).
	TarSize int64 `json:"tarSize,omitempty"`
	// ZstdDigest and ZstdSize name the zstd-compressed form of the layer
	// when the publishing job stored it too: what a stack with
	// layerCompression "zstd" serves. Empty: not stored. Equal ignores
	// them (one diffID, one layer).
	ZstdDigest digest.Digest `json:"zstdDigest,omitempty"`
	ZstdSize   int64         `json:"zstdSize,omitempty"`
	// Files records what the layer writes: path (relative, no leading '/')
	// → fingerprint of the entry (content digest and mode for a file, target
	// for a symlink; directories are not listed). Recorded at publish time so
	// the resolver can refuse two layers that write one path differently.
	// Identical entries in two layers (a shared library) are fine. Empty for
	// layers published without a file list.
	Files map[string]string `json:"files,omitempty"`
	// Components are the packages of another packaging system the layer
	// carries: the Debian packages its dpkg records list (sbom.Scan reads
	// them at publish time), sorted by name and architecture. Empty for a
	// layer without dpkg records and for layers published before envreg
	// recorded them.
	Components []Component `json:"components,omitempty"`
	// Distro names the distribution the layer's packages come from
	// ("debian-12"): what its os-release describes (a base layer), or,
	// for a layer of a Debian recipe without one, the release of the
	// recipe's sources (bookworm's php on a trixie base is debian-12).
	// Empty when neither says.
	Distro string `json:"distro,omitempty"`
}

// Component is one package of another packaging system inside a layer,
// as its own records state it.
type Component struct {
	// Type is the purl type of the packaging system: "deb".
	Type         string `json:"type"`
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture,omitempty"`
	// Licenses are the license short names the package's machine-readable
	// copyright file states (Debian's names, e.g. "GPL-2+"), sorted; empty
	// when the package has no such file.
	Licenses []string `json:"licenses,omitempty"`
}

// Equal reports whether c and o are the same component.
func (c Component) Equal(o Component) bool {
	return c.Type == o.Type && c.Name == o.Name && c.Version == o.Version &&
		c.Architecture == o.Architecture && slices.Equal(c.Licenses, o.Licenses)
}

// Equal reports whether l and o describe the same layer, file list included.
// Components and Distro are not compared: they are read from the content,
// which the digest names, and a layer published before envreg recorded
// them is the same layer (Merge fills them in). Nor are the other stored
// forms (TarSize, ZstdDigest): one diffID is one layer, whatever forms of
// it are stored.
func (l Layer) Equal(o Layer) bool {
	return l.Platform == o.Platform && l.Digest == o.Digest && l.DiffID == o.DiffID &&
		l.Size == o.Size && l.MediaType == o.MediaType && maps.Equal(l.Files, o.Files)
}

// Env is what a package contributes to the image environment.
type Env struct {
	// Path lists directories to prepend to PATH, in order.
	Path []string `json:"path,omitempty" yaml:"path,omitempty"`
	// Vars are other variables (never PATH). Two packages in one image that
	// set the same variable to different values are a resolution error.
	Vars map[string]string `json:"vars,omitempty" yaml:"vars,omitempty"`
}

// Constraint is a requirement on another package: a name and a semver range
// in Masterminds/semver syntax ("^12", ">=8.1 <8.4", "*").
type Constraint struct {
	Name  string `json:"name"`
	Range string `json:"range"`
}

// ParseConstraint parses "name" (any version) or "name RANGE", e.g.
// "base ^12" or "php >=8.1 <8.4".
func ParseConstraint(s string) (Constraint, error) {
	s = strings.TrimSpace(s)
	name, rng, _ := strings.Cut(s, " ")
	rng = strings.TrimSpace(rng)
	if rng == "" {
		rng = "*"
	}
	c := Constraint{Name: name, Range: rng}
	if err := c.Validate(); err != nil {
		return Constraint{}, err
	}
	return c, nil
}

// Validate checks the name and that Range parses as a semver constraint.
func (c Constraint) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if _, err := semver.NewConstraint(c.Range); err != nil {
		return fmt.Errorf("invalid version constraint %q for %s: %w", c.Range, c.Name, err)
	}
	return nil
}

// Constraints parses Range.
func (c Constraint) Constraints() (*semver.Constraints, error) {
	return semver.NewConstraint(c.Range)
}

// String returns "name range".
func (c Constraint) String() string { return c.Name + " " + c.Range }

// ValidateName checks a package or stack name: lower-case letters, digits,
// '.', '-' and '+' ; starting with a letter or digit; at most 64 characters.
// Names never contain '_' because '_' separates tag components.
func ValidateName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("invalid name %q: must be 1 to 64 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '.'))
		if !ok {
			return fmt.Errorf("invalid name %q: use lower-case letters, digits, '-' and '.', starting with a letter or digit", name)
		}
	}
	return nil
}

// Release is one published package version, e.g. php 8.2.36, with one layer
// per platform it supports.
type Release struct {
	Name      string            `json:"name"`
	Version   *semver.Version   `json:"version"`
	Layers    []Layer           `json:"layers"` // one per platform, sorted by Platform.String()
	Env       Env               `json:"env"`
	Requires  []Constraint      `json:"requires,omitempty"`
	Conflicts []Constraint      `json:"conflicts,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Published time.Time         `json:"published"` // UTC, second precision; first publish of this version
	// Yanked versions are never chosen by a new resolution (a tag, a
	// provisioning request), but stay in the catalog with their layers, so
	// environments already pinned by digest stay pullable. Publishing the
	// version again keeps the flag; only a forced publish (Yank, Unyank)
	// changes it.
	Yanked bool `json:"yanked,omitempty"`
	// Aliases are short names the package can be requested by ("node" for
	// nodejs) in every stack that does not map them to something else
	// itself; see Snapshot.PackageAliases.
	Aliases []string `json:"aliases,omitempty"`
	// Superseded are layers of earlier builds of this version that a
	// forced publish (a rebuild) replaced: never composed into a new
	// image, but served and kept like Layers (Snapshot.HasLayer, gc,
	// verify), so that environments pinned before the rebuild keep
	// pulling. Sorted by platform, then digest.
	Superseded []Layer `json:"superseded,omitempty"`
}

// LabelRebuild, on a release, says why it is a rebuild of its version:
// which packages of its layers changed, e.g. "libssl3 3.0.15-1~deb12u1 →
// 3.0.16-1~deb12u1" (the publishing job sets it; see packages.Syncer).
const LabelRebuild = "io.envreg.debian.rebuild"

// AllLayers returns Layers and Superseded: every layer whose blobs the
// release keeps alive.
func (r Release) AllLayers() []Layer {
	if len(r.Superseded) == 0 {
		return r.Layers
	}
	return slices.Concat(r.Layers, r.Superseded)
}

// ID returns "name version", e.g. "php 8.2.36".
func (r Release) ID() string { return r.Name + " " + r.Version.String() }

// Layer returns the layer for p.
func (r Release) Layer(p Platform) (Layer, bool) {
	for _, l := range r.Layers {
		if l.Platform == p {
			return l, true
		}
	}
	return Layer{}, false
}

// Platforms lists the platforms r has a layer for, in Layers order.
func (r Release) Platforms() []Platform {
	ps := make([]Platform, len(r.Layers))
	for i, l := range r.Layers {
		ps[i] = l.Platform
	}
	return ps
}

// Validate checks that r is complete and well-formed.
func (r Release) Validate() error {
	var errs []error
	if err := ValidateName(r.Name); err != nil {
		errs = append(errs, err)
	}
	if r.Version == nil {
		errs = append(errs, fmt.Errorf("release %s has no version", r.Name))
	} else if _, err := semver.StrictNewVersion(r.Version.String()); err != nil {
		errs = append(errs, fmt.Errorf("release %s: version %q is not strict semver (want MAJOR.MINOR.PATCH): %w", r.Name, r.Version.Original(), err))
	}
	if len(r.Layers) == 0 {
		errs = append(errs, fmt.Errorf("release %s has no layers", r.Name))
	}
	seen := map[Platform]bool{}
	for _, l := range r.Layers {
		if seen[l.Platform] {
			errs = append(errs, fmt.Errorf("release %s has two layers for %s", r.Name, l.Platform))
		}
		seen[l.Platform] = true
		if err := l.Digest.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("release %s layer %s: digest: %w", r.Name, l.Platform, err))
		}
		if err := l.DiffID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("release %s layer %s: diffID: %w", r.Name, l.Platform, err))
		}
		if l.Size <= 0 {
			errs = append(errs, fmt.Errorf("release %s layer %s: size %d", r.Name, l.Platform, l.Size))
		}
		if l.MediaType == "" {
			errs = append(errs, fmt.Errorf("release %s layer %s: no media type", r.Name, l.Platform))
		}
	}
	for _, l := range r.Superseded {
		if err := l.Digest.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("release %s superseded layer %s: digest: %w", r.Name, l.Platform, err))
		}
	}
	for _, c := range slices.Concat(r.Requires, r.Conflicts) {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", r.Name, err))
		}
	}
	for _, a := range r.Aliases {
		if err := ValidateName(a); err != nil {
			errs = append(errs, fmt.Errorf("release %s: alias: %w", r.Name, err))
		} else if a == r.Name {
			errs = append(errs, fmt.Errorf("release %s: alias %q is its own name", r.Name, a))
		}
	}
	for k := range r.Env.Vars {
		if k == "" || k == "PATH" || strings.ContainsAny(k, "= \t\n") {
			errs = append(errs, fmt.Errorf("release %s: invalid env variable name %q (PATH entries go in Env.Path)", r.Name, k))
		}
	}
	return errors.Join(errs...)
}

// Canonicalize sorts the layers by platform and normalizes the publish time
// to UTC seconds, so that equal releases serialize to equal bytes.
func (r *Release) Canonicalize() {
	slices.SortFunc(r.Layers, func(a, b Layer) int { return strings.Compare(a.Platform.String(), b.Platform.String()) })
	slices.SortFunc(r.Superseded, func(a, b Layer) int {
		return cmp.Or(strings.Compare(a.Platform.String(), b.Platform.String()), strings.Compare(string(a.Digest), string(b.Digest)))
	})
	r.Published = r.Published.UTC().Truncate(time.Second)
	if len(r.Aliases) > 0 {
		r.Aliases = slices.Compact(slices.Sorted(slices.Values(r.Aliases)))
	}
}

// DecodeRelease parses a stored release (JSON), checks it and puts it in
// canonical form: what every backend serves for the bytes it stored.
func DecodeRelease(data []byte) (Release, error) {
	var r Release
	if err := json.Unmarshal(data, &r); err != nil {
		return Release{}, err
	}
	if err := r.Validate(); err != nil {
		return Release{}, err
	}
	r.Canonicalize()
	return r, nil
}

// SameContent reports whether a and b describe the same package version with
// the same metadata (everything but the layer list and publish time).
func SameContent(a, b Release) bool {
	return a.Name == b.Name && a.Version.Equal(b.Version) && a.Version.Metadata() == b.Version.Metadata() &&
		slices.Equal(a.Env.Path, b.Env.Path) && maps.Equal(a.Env.Vars, b.Env.Vars) &&
		slices.Equal(a.Requires, b.Requires) && slices.Equal(a.Conflicts, b.Conflicts) &&
		maps.Equal(a.Labels, b.Labels) && slices.Equal(a.Aliases, b.Aliases)
}

// Document is a stored image index or manifest, addressed by its digest.
type Document struct {
	MediaType string
	Digest    digest.Digest
	Data      []byte
}

// Validate checks what every backend checks before storing d: a digest of
// an accepted algorithm that matches Data, and a media type.
func (d Document) Validate() error {
	if err := layerstore.ValidateDigest(d.Digest); err != nil {
		return fmt.Errorf("document: %w", err)
	}
	if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
		return fmt.Errorf("storing document %s: content has digest %s", d.Digest, got)
	}
	if d.MediaType == "" || strings.ContainsAny(d.MediaType, "\r\n") {
		return fmt.Errorf("storing document %s: invalid media type %q", d.Digest, d.MediaType)
	}
	return nil
}

// CheckDocument is what PutDocument checks before it stores d: the document
// (Validate) and that ctx is not done.
func CheckDocument(ctx context.Context, d Document) error {
	if err := d.Validate(); err != nil {
		return err
	}
	return ctx.Err()
}

// PublishOptions modify Publisher.Publish.
type PublishOptions struct {
	// Force replaces an existing layer or metadata with different content
	// instead of failing with ErrExists.
	Force bool
	// Exclusive fails with an error wrapping ErrExists when any platform
	// of the release already has a layer, even an identical one: a job
	// that races others (envreg sync, replicas, a retry) learns whether
	// this call or another one published the version. Force wins over it.
	Exclusive bool
}

// Reader gives the current catalog snapshot. Implementations make it cheap
// when nothing changed (return the same *Snapshot).
type Reader interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// Publisher makes package versions and stacks visible, atomically: a reader
// sees a release either complete or not at all. Publishing a release whose
// name and version exist merges its layers into the existing release
// (adding platforms); a platform that already has a different layer, or
// different metadata, fails with an error wrapping ErrExists unless forced.
// Every successful change increments the generation.
type Publisher interface {
	Publish(ctx context.Context, r Release, opts PublishOptions) error
	PutStack(ctx context.Context, s Stack) error
}

// Documents stores synthesized (and later pushed) manifests and indexes by
// digest. PutDocument is idempotent; Document returns ErrNotFound.
type Documents interface {
	PutDocument(ctx context.Context, d Document) error
	Document(ctx context.Context, dgst digest.Digest) (Document, error)
}

// Purger removes what yanking keeps (envreg purge). Both backends
// implement it; it is not part of Store because the registry never purges.
type Purger interface {
	// RemoveRelease deletes the release name v (every platform) and moves
	// the generation; an error wrapping ErrNotFound when there is none.
	RemoveRelease(ctx context.Context, name string, v *semver.Version) error
	// DeleteDocument deletes a stored document; an error wrapping
	// ErrNotFound when there is none.
	DeleteDocument(ctx context.Context, d digest.Digest) error
}

// Store is everything a catalog backend provides.
type Store interface {
	Reader
	Publisher
	Documents
	Compositions
	Repositories
	io.Closer
}
