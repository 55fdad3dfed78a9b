package manifestgen_test

import (
	"fmt"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

var (
	amd64 = catalog.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = catalog.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

func mustVersion(s string) *semver.Version {
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

func mustConstraint(s string) *semver.Constraints {
	c, err := semver.NewConstraint(s)
	if err != nil {
		panic(err)
	}
	return c
}

// fakeLayer describes a layer that does not exist: its digests are hashes
// of a description, stable across Go versions (unlike gzip output), so the
// golden files never change for reasons outside this package.
func fakeLayer(name, version string, p catalog.Platform) catalog.Layer {
	id := name + " " + version + " " + p.String()
	return catalog.Layer{
		Platform:  p,
		Digest:    digest.FromString("blob " + id),
		DiffID:    digest.FromString("tar " + id),
		Size:      int64(1000 + 7*len(id)),
		MediaType: ocispec.MediaTypeImageLayerGzip,
	}
}

func release(name, version string, published time.Time, ps ...catalog.Platform) catalog.Release {
	r := catalog.Release{Name: name, Version: mustVersion(version), Published: published}
	for _, p := range ps {
		r.Layers = append(r.Layers, fakeLayer(name, version, p))
	}
	return r
}

// fixture is a two-platform resolution of env:php-8.2_node-20 with a base
// package, used by the golden files.
func fixture() *resolver.Resolution {
	base := release("base", "12.0.0", time.Date(2024, 1, 10, 8, 0, 0, 0, time.UTC), amd64, arm64)
	base.Env.Path = []string{"/usr/local/base/bin"}
	base.Labels = map[string]string{"maintainer": "base team", "org.opencontainers.image.licenses": "MIT"}

	node := release("nodejs", "20.11.1", time.Date(2024, 2, 1, 12, 30, 0, 0, time.UTC), amd64, arm64)
	node.Env.Path = []string{"/opt/nodejs/bin", "/usr/local/bin"} // the second is also in the stack's PATH
	node.Env.Vars = map[string]string{"NODE_PATH": "/opt/nodejs/lib/node_modules"}

	php := release("php", "8.2.36", time.Date(2024, 3, 5, 9, 15, 42, 0, time.UTC), amd64, arm64)
	php.Env.Path = []string{"/opt/php/bin", "/opt/php/sbin"}
	php.Env.Vars = map[string]string{"PHP_INI_DIR": "/opt/php/etc", "LANG": "en_US.UTF-8"}
	php.Labels = map[string]string{"maintainer": "php team"}

	return &resolver.Resolution{
		Stack: catalog.Stack{
			Name: "env",
			Base: []catalog.Constraint{{Name: "base", Range: "*"}},
			Image: catalog.ImageDefaults{
				Env:        map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"},
				WorkingDir: "/app",
				User:       "1000:1000",
				Entrypoint: []string{"/usr/bin/tini", "--"},
				Cmd:        []string{"/bin/sh"},
				Labels:     map[string]string{"maintainer": "stack", "org.opencontainers.image.vendor": "envreg"},
			},
		},
		Request: resolver.Request{Stack: "env", Requirements: []resolver.Requirement{
			{Name: "nodejs", Range: mustConstraint("20"), Spelling: "20"},
			{Name: "php", Range: mustConstraint("8.2"), Spelling: "8.2"},
		}},
		Releases:  []catalog.Release{base, node, php},
		Platforms: []catalog.Platform{amd64, arm64},
	}
}

// manyReleases is a resolution of n packages on two platforms.
func manyReleases(n int) *resolver.Resolution {
	res := &resolver.Resolution{
		Stack:     catalog.DefaultStack(),
		Platforms: []catalog.Platform{amd64, arm64},
	}
	for i := range n {
		r := release(fmt.Sprintf("pkg%03d", i), fmt.Sprintf("1.%d.0", i), time.Date(2024, 1, 1+i%28, 0, 0, i%60, 0, time.UTC), amd64, arm64)
		r.Env.Path = []string{fmt.Sprintf("/opt/pkg%03d/bin", i)}
		r.Env.Vars = map[string]string{fmt.Sprintf("PKG%03d_HOME", i): fmt.Sprintf("/opt/pkg%03d", i)}
		r.Labels = map[string]string{fmt.Sprintf("pkg%03d.note", i): "x"}
		res.Releases = append(res.Releases, r)
	}
	return res
}
