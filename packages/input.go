package packages

import (
	"fmt"

	"github.com/envreg/envreg/catalog"
)

// Input is one package version for one platform, as given to
// `envreg publish`: the release's metadata (checked as
// catalog.ReleaseSpec.Release checks it) and exactly one of Dir and Tar,
// naming the content.
type Input struct {
	catalog.ReleaseSpec
	Platform catalog.Platform // e.g. linux/amd64
	// Dir is a directory whose tree becomes the layer.
	Dir string
	// Tar is a tar file (gzip-compressed or plain) whose tree becomes the
	// layer, normalized as layer.NormalizeTar does.
	Tar string
	// Force replaces an existing layer or metadata with different content
	// instead of failing with catalog.ErrExists.
	Force bool
}

// validatePlatform checks that p is what catalog.ParsePlatform accepts.
func validatePlatform(field string, p catalog.Platform) []string {
	parsed, err := catalog.ParsePlatform(p.String())
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", field, err)}
	}
	if parsed != p {
		return []string{fmt.Sprintf("%s: invalid platform %q", field, p)}
	}
	return nil
}

// validate checks the whole input and returns the release it describes.
func (in Input) validate() (catalog.Release, error) {
	r, problems := in.ReleaseSpec.Release()
	problems = append(problems, validatePlatform("platform", in.Platform)...)
	switch {
	case in.Dir != "" && in.Tar != "":
		problems = append(problems, "source: give a directory or a tar file, not both")
	case in.Dir == "" && in.Tar == "":
		problems = append(problems, "source: a directory or a tar file is required")
	}
	if len(problems) > 0 {
		return catalog.Release{}, &catalog.ValidationError{Problems: problems}
	}
	return r, nil
}
