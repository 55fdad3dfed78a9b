package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// SetYanked marks the release name v yanked (or not) and returns it as
// stored. Yanking is a forced publish of the same release with the flag
// changed, so every backend records it atomically and bumps the
// generation; yanking a yanked version changes nothing. An unknown
// version is an error wrapping ErrNotFound that lists the versions there
// are.
func SetYanked(ctx context.Context, store interface {
	Reader
	Publisher
}, name string, v *semver.Version, yanked bool) (Release, error) {
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return Release{}, err
	}
	rels := snap.Releases(name)
	var versions []string
	for _, r := range rels {
		if !r.Version.Equal(v) {
			versions = append([]string{r.Version.String()}, versions...)
			continue
		}
		r.Yanked = yanked
		if err := store.Publish(ctx, r, PublishOptions{Force: true}); err != nil {
			return Release{}, err
		}
		return r, nil
	}
	if len(versions) == 0 {
		return Release{}, fmt.Errorf("package %s: %w (no version published)", name, ErrNotFound)
	}
	return Release{}, fmt.Errorf("%s %s: %w (published: %s)", name, v, ErrNotFound, strings.Join(versions, ", "))
}
