package ingest_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/ingest"
)

func TestParseLabels(t *testing.T) {
	pl, problems := ingest.ParseLabels(map[string]string{
		"io.envreg.package.name":            "php",
		"io.envreg.package.version":         "8.2.36",
		"io.envreg.package.env.path":        "/usr/local/php/bin: /usr/local/php/sbin",
		"io.envreg.package.env.PHP_INI_DIR": "/etc/php",
		"io.envreg.package.requires":        "base ^12; openssl >=3.0, <4",
		"io.envreg.package.conflicts":       "hhvm",
		"io.envreg.package.aliases":         "php8; php-cli",
		"io.envreg.package.label.source":    "https://example.org/php",
		"org.opencontainers.image.title":    "ignored",
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if pl.Name != "php" || pl.Version != "8.2.36" ||
		!slices.Equal(pl.Path, []string{"/usr/local/php/bin", "/usr/local/php/sbin"}) ||
		!maps.Equal(pl.Env, map[string]string{"PHP_INI_DIR": "/etc/php"}) ||
		!slices.Equal(pl.Requires, []string{"base ^12", "openssl >=3.0, <4"}) ||
		!slices.Equal(pl.Conflicts, []string{"hhvm"}) ||
		!slices.Equal(pl.Aliases, []string{"php8", "php-cli"}) ||
		!maps.Equal(pl.Labels, map[string]string{"source": "https://example.org/php"}) {
		t.Fatalf("parsed %+v", pl)
	}

	// An empty PATH entry would be the working directory.
	for _, v := range []string{"/a::/b", "/a:", ":/a", " : "} {
		_, problems = ingest.ParseLabels(map[string]string{ingest.LabelPath: v})
		if len(problems) == 0 || !strings.Contains(problems[0], "is empty (an empty PATH entry means the working directory)") {
			t.Errorf("path label %q: problems %q", v, problems)
		}
	}
	if pl, problems := ingest.ParseLabels(map[string]string{ingest.LabelPath: " "}); len(problems) > 0 || pl.Path != nil {
		t.Errorf("a blank path label: %+v %q, want no entries", pl, problems)
	}

	_, problems = ingest.ParseLabels(map[string]string{
		"io.envreg.package.require": "base", // a typo must not drop a requirement
		"io.envreg.package.env.":    "x",
		"io.envreg.package.label.":  "x",
	})
	if len(problems) != 3 || !strings.Contains(strings.Join(problems, "\n"), "io.envreg.package.require: unknown package label") {
		t.Fatalf("problems %q", problems)
	}
}

func TestReleaseLabelsRoundTrip(t *testing.T) {
	rel := catalog.Release{
		Name: "nodejs", Version: semver.MustParse("20.11.1"),
		Env:       catalog.Env{Path: []string{"/opt/node/bin", "/opt/node/lib/bin"}, Vars: map[string]string{"NODE_PATH": "/opt/node/lib"}},
		Requires:  []catalog.Constraint{{Name: "base", Range: "^12"}, {Name: "openssl", Range: ">=3.0, <4"}},
		Conflicts: []catalog.Constraint{{Name: "iojs", Range: "*"}},
		Labels:    map[string]string{"debian.packages": "nodejs=20.11.1"},
	}
	rel.Aliases = []string{"node"}
	labels := ingest.ReleaseLabels(rel)
	pl, problems := ingest.ParseLabels(labels)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var req []string
	for _, c := range rel.Requires {
		req = append(req, c.String())
	}
	if pl.Name != rel.Name || pl.Version != "20.11.1" || !slices.Equal(pl.Path, rel.Env.Path) || !maps.Equal(pl.Env, rel.Env.Vars) ||
		!slices.Equal(pl.Requires, req) || !slices.Equal(pl.Conflicts, []string{"iojs *"}) ||
		!slices.Equal(pl.Aliases, []string{"node"}) || !maps.Equal(pl.Labels, rel.Labels) {
		t.Fatalf("round trip: %+v from %v", pl, labels)
	}
}

// FuzzParseLabels: any labels parse without panicking, and the
// labels of a release parse back to it.
func FuzzParseLabels(f *testing.F) {
	f.Add("io.envreg.package.requires", "base ^12; php >=8.1 <8.4", "io.envreg.package.env.path", "/a:/b")
	f.Add("io.envreg.package.env.X", "y", "io.envreg.package.aliases", "a;b;;c")
	f.Add("io.envreg.package.", "", "io.envreg.package.label.k", "v")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		pl, problems := ingest.ParseLabels(map[string]string{k1: v1, k2: v2})
		if len(problems) > 0 {
			return
		}
		for _, s := range slices.Concat(pl.Requires, pl.Conflicts, pl.Aliases, pl.Path) {
			if strings.TrimSpace(s) != s || s == "" {
				t.Fatalf("list entry %q not trimmed", s)
			}
		}
	})
}
