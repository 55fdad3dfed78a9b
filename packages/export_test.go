package packages

import (
	"context"
	"github.com/Masterminds/semver/v3"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/packages/internal/debian"
)

// BuildDebianLayer exposes buildDebianLayer to the black-box tests, which
// build .debs locally instead of downloading them.
func BuildDebianLayer(ctx context.Context, debs []string, symlinks, files map[string]string, tempDir string, w io.Writer) (digest.Digest, error) {
	return buildDebianLayer(ctx, debianLayer{debs: debs, symlinks: symlinks, files: files, tempDir: tempDir}, w)
}

// BuildRelocatedDebianLayer is BuildDebianLayer for a layer on a base: the
// packages of other source packages than inPlace move into prefix (no
// leading '/') and ELF files get a DT_RPATH for arch.
func BuildRelocatedDebianLayer(ctx context.Context, debs []string, prefix, arch string, inPlace []string, tempDir string, w io.Writer) (digest.Digest, error) {
	r, err := newRelocation(prefix, arch, inPlace, nil, "")
	if err != nil {
		return "", err
	}
	return buildDebianLayer(ctx, debianLayer{debs: debs, tempDir: tempDir, reloc: r}, w)
}

// AptWriter exposes where a Publisher lets apt print its progress.
func AptWriter(p *Publisher) io.Writer { return p.aptOutput() }

// BuildDebianLayerOnBase is BuildDebianLayer for a layer whose base
// provides the packages base (with their .deb files).
func BuildDebianLayerOnBase(ctx context.Context, debs []string, base []debian.Package, tempDir string, w io.Writer) (digest.Digest, error) {
	return buildDebianLayer(ctx, debianLayer{debs: debs, base: base, tempDir: tempDir}, w)
}

// FetchPatchelf exposes the fallback of Publisher.patchelf: Debian's
// patchelf for this machine, from the archive, whether or not one is
// installed.
func (p *Publisher) FetchPatchelf(ctx context.Context) (string, error) { return p.fetchPatchelf(ctx) }

// DerivedVersion is the semantic version derived from a Debian version
// ("" when it has none).
func DerivedVersion(s string) string {
	v, ok := derive(s)
	if !ok {
		return ""
	}
	return v.String()
}

// RebuiltVersion is the version of the next build of v.
func RebuiltVersion(v string) string { return rebuiltVersion(semver.MustParse(v)).String() }

// ClosureChanges exposes closureChanges.
func ClosureChanges(before, now string) string { return closureChanges(before, now) }
