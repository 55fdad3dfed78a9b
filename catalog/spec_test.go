package catalog_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

func validSpec() catalog.ReleaseSpec {
	return catalog.ReleaseSpec{
		Name:      "php",
		Version:   "8.2.36",
		Path:      []string{"/usr/local/php/bin"},
		Env:       map[string]string{"PHP_INI_DIR": "/usr/local/etc/php"},
		Requires:  []string{"zlib", "base ^12", "zlib"},
		Conflicts: []string{"php5"},
		Labels:    map[string]string{"org.example.note": "hi"},
	}
}

// TestReleaseSpecRelease: a valid spec gives the release it describes,
// with constraints sorted and deduplicated and its maps copied.
func TestReleaseSpecRelease(t *testing.T) {
	s := validSpec()
	r, problems := s.Release()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var req []string
	for _, c := range r.Requires {
		req = append(req, c.String())
	}
	if r.Name != "php" || r.Version.String() != "8.2.36" || !slices.Equal(r.Env.Path, s.Path) ||
		!maps.Equal(r.Env.Vars, s.Env) || !maps.Equal(r.Labels, s.Labels) ||
		!slices.Equal(req, []string{"base ^12", "zlib *"}) || len(r.Conflicts) != 1 || r.Conflicts[0].Name != "php5" {
		t.Fatalf("release %+v, requires %q", r, req)
	}
	s.Env["PHP_INI_DIR"], s.Labels["org.example.note"] = "changed", "changed"
	if r.Env.Vars["PHP_INI_DIR"] != "/usr/local/etc/php" || r.Labels["org.example.note"] != "hi" {
		t.Errorf("the release shares its maps with the spec: %+v", r)
	}
	if r.Layers != nil || !r.Published.IsZero() {
		t.Errorf("layers %v, published %v; a spec has neither", r.Layers, r.Published)
	}
}

// TestReleaseSpecProblems: every field is checked, each problem names its
// field, and an Env that would end up in every image config is refused
// when it holds control characters or unclean PATH entries (issue 15).
func TestReleaseSpecProblems(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*catalog.ReleaseSpec)
		want   string
	}{
		{"short version", func(s *catalog.ReleaseSpec) { s.Version = "8.2" }, `version: "8.2" is not a strict semantic version`},
		{"v prefix", func(s *catalog.ReleaseSpec) { s.Version = "v8.2.36" }, "version:"},
		{"bad name", func(s *catalog.ReleaseSpec) { s.Name = "PHP" }, "name:"},
		{"env PATH", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"PATH": "/bin"} }, "env: PATH is not allowed"},
		{"env name", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A=B": "x"} }, "env: invalid variable name"},
		{"env name with a leading digit", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"1A": "x"} }, `env: invalid variable name "1A"`},
		{"newline in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\nB=y"} }, "env: value of A contains the control character U+000A at byte 1"},
		{"carriage return in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\r"} }, "U+000D"},
		{"NUL in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\x00"} }, "U+0000"},
		{"escape in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "\x1b[2J"} }, "U+001B"},
		{"C1 control in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\u0085y"} }, "U+0085"},
		{"line separator in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\u2028y"} }, "U+2028"},
		{"paragraph separator in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\u2029y"} }, "U+2029"},
		{"invalid UTF-8 in env", func(s *catalog.ReleaseSpec) { s.Env = map[string]string{"A": "x\xffy"} }, "env: value of A is not valid UTF-8"},
		{"relative path", func(s *catalog.ReleaseSpec) { s.Path = []string{"usr/bin"} }, `path[0]: "usr/bin" is not an absolute path`},
		{"empty path", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/x/bin", ""} }, "path[1]: empty"},
		{"newline in path", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/x\n/bin"} }, `path[0]: "/opt/x\n/bin" contains the control character U+000A`},
		{"colon in path", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/x:/bin"} }, `contains ':', the PATH separator`},
		{"unclean path", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/x/../bin"} }, `path[0]: "/opt/x/../bin" is not a clean path (write "/opt/bin")`},
		{"trailing slash", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/x/bin/"} }, `write "/opt/x/bin"`},
		{"dot in path", func(s *catalog.ReleaseSpec) { s.Path = []string{"/opt/./bin"} }, "not a clean path"},
		{"bad requires", func(s *catalog.ReleaseSpec) { s.Requires = []string{"base ^^12"} }, "requires[0]:"},
		{"bad conflicts", func(s *catalog.ReleaseSpec) { s.Conflicts = []string{"Bad_Name"} }, "conflicts[0]:"},
		{"label key with a space", func(s *catalog.ReleaseSpec) { s.Labels = map[string]string{"a b": "x"} }, `labels: invalid label key "a b"`},
		{"empty label key", func(s *catalog.ReleaseSpec) { s.Labels = map[string]string{"": "x"} }, `labels: invalid label key ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.modify(&s)
			_, problems := s.Release()
			if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
				t.Fatalf("problems %q, want one mentioning %q", problems, tc.want)
			}
		})
	}

	// Every problem is reported at once.
	s := validSpec()
	s.Version, s.Path = "8.2", []string{"bin"}
	if _, problems := s.Release(); len(problems) != 2 {
		t.Fatalf("problems %q, want 2", problems)
	}
	err := &catalog.ValidationError{Problems: []string{"a: x", "b: y"}}
	if err.Error() != "a: x; b: y" {
		t.Errorf("ValidationError says %q", err)
	}
}

// TestStoredReleaseEnvNotRechecked: the Env rules of ReleaseSpec are for
// new input; a release stored before them (a newline in a variable, an
// unclean PATH entry) still decodes, so an old store keeps loading.
func TestStoredReleaseEnvNotRechecked(t *testing.T) {
	r := catalog.Release{
		Name: "old", Version: semver.MustParse("1.0.0"),
		Layers: []catalog.Layer{{Platform: catalog.Platform{OS: "linux", Architecture: "amd64"},
			Digest: digest.FromString("blob"), DiffID: digest.FromString("tar"), Size: 4,
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}},
		Env: catalog.Env{Path: []string{"/opt/old/../bin", ""}, Vars: map[string]string{"OLD": "a\nb"}},
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.DecodeRelease(data)
	if err != nil {
		t.Fatalf("a release stored before the Env rules no longer loads: %v", err)
	}
	if got.Env.Vars["OLD"] != "a\nb" || !slices.Equal(got.Env.Path, r.Env.Path) {
		t.Fatalf("decoded env %+v, want it as stored", got.Env)
	}
	_, problems := catalog.ReleaseSpec{Name: r.Name, Version: "1.0.0", Path: r.Env.Path, Env: r.Env.Vars}.Release()
	if len(problems) != 3 {
		t.Fatalf("as new input the same metadata has problems %q, want 3", problems)
	}
}
