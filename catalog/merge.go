package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Merge adds the layers of r to old: the rule every catalog backend applies
// when a release with the same name and version is published again. Metadata that differs, or a platform
// whose layer differs, is an error wrapping ErrExists unless force,
// in which case r's metadata and layers win and the replaced layers are
// kept as Superseded (environments pinned to them keep pulling). Platforms
// of old that r does not mention are kept, and so is the first publish
// time.
func Merge(old, r Release, force bool) (Release, error) {
	return MergeWith(old, r, PublishOptions{Force: force})
}

// MergeWith is Merge with every publish option: with opts.Exclusive (and
// not opts.Force), a platform of r that old already has is an error
// wrapping ErrExists even when its layer is the same.
func MergeWith(old, r Release, opts PublishOptions) (Release, error) {
	force := opts.Force
	if opts.Exclusive && !force {
		for _, l := range r.Layers {
			if _, ok := old.Layer(l.Platform); ok {
				return Release{}, fmt.Errorf("publishing %s for %s: %w", r.ID(), l.Platform, ErrAlreadyPublished)
			}
		}
	}
	var conflicts []string
	if !SameContent(old, r) {
		conflicts = append(conflicts, "metadata differs ("+strings.Join(metadataDiff(old, r), ", ")+")")
	}
	layers := slices.Clone(old.Layers)
	superseded := slices.Concat(old.Superseded, r.Superseded)
	for _, l := range r.Layers {
		i := slices.IndexFunc(layers, func(o Layer) bool { return o.Platform == l.Platform })
		switch {
		case i < 0:
			layers = append(layers, l)
		case !layers[i].Equal(l):
			conflicts = append(conflicts, fmt.Sprintf("layer for %s differs (stored %s, new %s)",
				l.Platform, describeLayer(layers[i]), describeLayer(l)))
			if layers[i].Digest != l.Digest {
				superseded = append(superseded, layers[i])
			}
			layers[i] = l
		case len(layers[i].Components) == 0 && layers[i].Distro == "":
			layers[i] = withForms(l, layers[i]) // the same layer, now with what it carries
		default:
			layers[i] = withForms(layers[i], l) // the same layer, maybe in more forms
		}
	}
	if len(conflicts) > 0 && !force {
		return Release{}, fmt.Errorf("publishing %s: %w with other content: %s (publish with force to replace)",
			r.ID(), ErrExists, strings.Join(conflicts, "; "))
	}
	merged := r
	merged.Layers = layers
	// A layer that is current again (a rebuild reverted) is not superseded;
	// one superseded twice is listed once.
	merged.Superseded = slices.DeleteFunc(superseded, func(s Layer) bool {
		return slices.ContainsFunc(layers, func(l Layer) bool { return l.Digest == s.Digest })
	})
	merged.Superseded = slices.CompactFunc(slices.SortedFunc(slices.Values(merged.Superseded), func(a, b Layer) int {
		return strings.Compare(string(a.Digest), string(b.Digest))
	}), func(a, b Layer) bool { return a.Digest == b.Digest })
	if len(merged.Superseded) == 0 {
		merged.Superseded = nil
	}
	merged.Published = old.Published
	if !force {
		merged.Yanked = old.Yanked // a re-publish does not un-yank
	}
	merged.Canonicalize()
	return merged, nil
}

func describeLayer(l Layer) string {
	return fmt.Sprintf("%s, %d bytes, diffID %s, %s", l.Digest, l.Size, l.DiffID, l.MediaType)
}

// metadataDiff names the fields SameContent found different.
func metadataDiff(a, b Release) []string {
	var out []string
	if a.Version.Metadata() != b.Version.Metadata() {
		out = append(out, fmt.Sprintf("version %s vs %s", a.Version, b.Version))
	}
	if !slices.Equal(a.Env.Path, b.Env.Path) {
		out = append(out, fmt.Sprintf("env path %q vs %q", a.Env.Path, b.Env.Path))
	}
	if !maps.Equal(a.Env.Vars, b.Env.Vars) {
		out = append(out, fmt.Sprintf("env vars %v vs %v", a.Env.Vars, b.Env.Vars))
	}
	if !slices.Equal(a.Requires, b.Requires) {
		out = append(out, fmt.Sprintf("requires %v vs %v", a.Requires, b.Requires))
	}
	if !slices.Equal(a.Conflicts, b.Conflicts) {
		out = append(out, fmt.Sprintf("conflicts %v vs %v", a.Conflicts, b.Conflicts))
	}
	if !maps.Equal(a.Labels, b.Labels) {
		out = append(out, fmt.Sprintf("labels %v vs %v", a.Labels, b.Labels))
	}
	return out
}

// withForms returns l with the stored forms of o (the same layer) that l
// does not record: republishing with --uncompressed-layers or
// --zstd-layers adds a form, and one without them removes none.
func withForms(l, o Layer) Layer {
	l.TarSize = max(l.TarSize, o.TarSize)
	if l.ZstdDigest == "" {
		l.ZstdDigest, l.ZstdSize = o.ZstdDigest, o.ZstdSize
	}
	return l
}
