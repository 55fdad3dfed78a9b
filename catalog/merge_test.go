package catalog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// TestMergeFillsComponents: the same layer published again with the
// Debian packages it carries (recorded since issue 20) fills them into a
// release published without them, without force; a layer that differs
// otherwise is still refused.
func TestMergeFillsComponents(t *testing.T) {
	p := catalog.Platform{OS: "linux", Architecture: "amd64"}
	layer := catalog.Layer{Platform: p, Digest: digest.FromString("l"), DiffID: digest.FromString("d"), Size: 1, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
	old := catalog.Release{Name: "php", Version: semver.MustParse("8.2.36"), Layers: []catalog.Layer{layer}, Published: time.Unix(0, 0).UTC()}
	withComponents := old
	l := layer
	l.Components = []catalog.Component{{Type: "deb", Name: "php8.2-cli", Version: "8.2.36-1~deb12u1", Architecture: "amd64"}}
	l.Distro = "debian-12"
	withComponents.Layers = []catalog.Layer{l}
	merged, err := catalog.Merge(old, withComponents, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Layers[0]; len(got.Components) != 1 || got.Distro != "debian-12" {
		t.Errorf("merged layer %+v: want the components filled in", got)
	}
	// Published again without them (an older publisher): kept.
	if again, err := catalog.Merge(merged, old, false); err != nil || len(again.Layers[0].Components) != 1 {
		t.Errorf("merging the release without components into one with them: %v, %+v", err, again.Layers)
	}
	other := withComponents
	o := l
	o.Size = 2
	other.Layers = []catalog.Layer{o}
	if _, err := catalog.Merge(old, other, false); !errors.Is(err, catalog.ErrExists) {
		t.Errorf("a different layer: %v, want ErrExists", err)
	}
}
