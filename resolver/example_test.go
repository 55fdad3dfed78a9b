package resolver_test

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// Example resolves a tag against a small catalog: the newest php 8.2 and
// nodejs 20, and the newest composer that accepts that php.
func Example() {
	release := func(name, version string, requires ...string) catalog.Release {
		r := catalog.Release{
			Name:    name,
			Version: semver.MustParse(version),
			Layers: []catalog.Layer{{
				Platform:  catalog.Platform{OS: "linux", Architecture: "amd64"},
				Digest:    digest.FromString(name + version),
				DiffID:    digest.FromString(name + version + "tar"),
				Size:      1,
				MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
			}},
		}
		for _, s := range requires {
			c, _ := catalog.ParseConstraint(s)
			r.Requires = append(r.Requires, c)
		}
		return r
	}
	snap := catalog.NewSnapshot(1, []catalog.Release{
		release("base", "12.0.0"),
		release("php", "8.1.27"), release("php", "8.2.32"), release("php", "8.2.36"), release("php", "8.3.4"),
		release("nodejs", "18.20.4"), release("nodejs", "20.17.0"), release("nodejs", "22.8.0"),
		release("composer", "2.7.0", "php >=8.1"), release("composer", "2.8.0", "php >=8.3"),
	}, nil)
	st, _ := snap.Stack(catalog.DefaultStackName) // base "base", alias node -> nodejs

	req, err := resolver.ParseTag("composer_node-20_php-8.2", st, resolver.StackNames(snap, st))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Key())
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Releases {
		fmt.Println(r.ID())
	}
	fmt.Println(res.Platforms)

	req, _ = resolver.ParseTag("php-9", st, resolver.StackNames(snap, st))
	_, err = resolver.Resolve(snap, st, req)
	fmt.Println(err)
	// Output:
	// env:composer@*,nodejs@20,php@8.2
	// base 12.0.0
	// nodejs 20.17.0
	// php 8.2.36
	// composer 2.7.0
	// [linux/amd64]
	// no version of php satisfies 9 (available: 8.1.27, 8.2.32, 8.2.36, 8.3.4)
}
