package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/server/errcode"
	"github.com/envreg/envreg/server/registry"
)

// TestOneErrorTable feeds every kind of domain error through both HTTP
// faces: each gets the code and status of its face's column, and the same
// fact has the same message and the same JSON detail on both (issue 16).
func TestOneErrorTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("resolving env:php-9: %w", err) }
	cases := []struct {
		name          string
		err           error
		kind          errcode.Kind
		registry, api string // code
		regStatus     int
		apiStatus     int
		detail        string // the JSON detail both faces send ("" none)
	}{
		{"unsatisfiable", wrap(&resolver.UnsatisfiableError{Package: "php", Constraint: "9", Available: []string{"8.2.36"}}),
			errcode.KindUnsatisfiable, "MANIFEST_UNKNOWN", "UNSATISFIABLE", 404, 422,
			`{"available":["8.2.36"],"chain":[],"constraint":"9","package":"php"}`},
		{"conflict", wrap(&resolver.ConflictError{Package: "php", Chains: [2][]string{{"requested php 8"}, nil}}),
			errcode.KindConflict, "MANIFEST_UNKNOWN", "CONFLICT", 404, 422,
			`{"chains":[["requested php 8"],[]],"package":"php"}`},
		{"overlap", &resolver.OverlapError{Path: "etc", Platform: "linux/amd64", Packages: [2]string{"base 12.0.0", "x 1.0.0"}, Entries: [2]string{"etc/os-release", "etc"}},
			errcode.KindOverlap, "MANIFEST_UNKNOWN", "OVERLAP", 404, 422,
			`{"entries":["etc/os-release","etc"],"packages":["base 12.0.0","x 1.0.0"],"path":"etc","platform":"linux/amd64"}`},
		{"env conflict", &resolver.EnvConflictError{Variable: "X", Packages: [2]string{"a 1.0.0", "b 1.0.0"}, Values: [2]string{"1", "2"}},
			errcode.KindEnvConflict, "MANIFEST_UNKNOWN", "ENV_CONFLICT", 404, 422,
			`{"packages":["a 1.0.0","b 1.0.0"],"values":["1","2"],"variable":"X"}`},
		{"no platform", &resolver.NoPlatformError{Releases: []resolver.ReleasePlatforms{{Release: "a 1.0.0"}, {Release: "b 1.0.0", Platforms: []string{"linux/amd64"}}}},
			errcode.KindNoPlatform, "MANIFEST_UNKNOWN", "NO_PLATFORM", 404, 422,
			`{"releases":[{"platforms":[],"release":"a 1.0.0"},{"platforms":["linux/amd64"],"release":"b 1.0.0"}]}`},
		{"too many layers", wrap(&manifestgen.TooManyLayersError{Stack: "env", Count: 101, Limit: 100}),
			errcode.KindTooManyLayers, "MANIFEST_UNKNOWN", "TOO_MANY_LAYERS", 404, 422, `{"layers":101,"limit":100,"stack":"env"}`},
		{"too many layers sentinel", fmt.Errorf("%w: 101", resolver.ErrTooManyLayers),
			errcode.KindTooManyLayers, "MANIFEST_UNKNOWN", "TOO_MANY_LAYERS", 404, 422, ""},
		{"empty", fmt.Errorf("%w: stack bare", resolver.ErrEmpty), errcode.KindEmpty, "MANIFEST_UNKNOWN", "EMPTY", 404, 422, ""},
		{"too complex", fmt.Errorf("%w: gave up", resolver.ErrTooComplex), errcode.KindTooComplex, "MANIFEST_UNKNOWN", "TOO_COMPLEX", 404, 422, ""},
		{"unknown package", &resolver.UnknownPackageError{Package: "ruby", Tag: "ruby-3", Component: "ruby-3"},
			errcode.KindUnknownPackage, "MANIFEST_UNKNOWN", "PACKAGE_UNKNOWN", 404, 404,
			`{"component":"ruby-3","known":[],"package":"ruby","tag":"ruby-3"}`},
		{"unknown package sentinel", fmt.Errorf("x: %w", resolver.ErrUnknownPackage),
			errcode.KindUnknownPackage, "MANIFEST_UNKNOWN", "PACKAGE_UNKNOWN", 404, 404, ""},
		{"tag", &resolver.TagError{Tag: "a__b", Reason: "empty component"},
			errcode.KindInvalidTag, "MANIFEST_UNKNOWN", "BAD_REQUEST", 404, 400, `{"reason":"empty component","tag":"a__b"}`},
		{"package metadata", &catalog.ValidationError{Problems: []string{"name: invalid"}},
			errcode.KindPackageInvalid, "MANIFEST_INVALID", "BAD_REQUEST", 400, 400, `{"problems":["name: invalid"]}`},
		{"layer refused", fmt.Errorf("ingesting: %w", &layer.RefusedError{Path: "usr/bin/x", Rule: "setuid"}),
			errcode.KindLayerRefused, "MANIFEST_INVALID", "BAD_REQUEST", 400, 400, `{"entry":"usr/bin/x","rule":"setuid"}`},
		{"device in a pushed layer", fmt.Errorf("layer sha256:…: %w", &layer.UnsupportedFileError{Path: "dev/null", Kind: "character device"}),
			errcode.KindLayerRefused, "MANIFEST_INVALID", "BAD_REQUEST", 400, 400, `{"entry":"dev/null","kind":"character device"}`},
		{"exists", fmt.Errorf("publishing php 8.2.36: %w", catalog.ErrExists),
			errcode.KindExists, "MANIFEST_INVALID", "BAD_REQUEST", 400, 400, ""},
		{"blob unknown", fmt.Errorf("blob x: %w", layerstore.ErrNotFound),
			errcode.KindBlobUnknown, "BLOB_UNKNOWN", "NOT_FOUND", 404, 404, ""},
		{"bad digest", fmt.Errorf("x: %w", digest.ErrDigestInvalidFormat),
			errcode.KindDigestInvalid, "DIGEST_INVALID", "BAD_REQUEST", 400, 400, ""},
		{"digest mismatch", &layerstore.DigestMismatchError{},
			errcode.KindDigestInvalid, "DIGEST_INVALID", "BAD_REQUEST", 400, 400, ""},
		{"backend down", fmt.Errorf("reading the catalog generation from redis://10.0.0.5:6379/0: %w", layerstore.Unavailable(errors.New("dial tcp 10.0.0.5:6379: connect: connection refused"))),
			errcode.KindUnavailable, "UNAVAILABLE", "UNAVAILABLE", 503, 503, ""},
		{"deadline", fmt.Errorf("reading x: %w", context.DeadlineExceeded),
			errcode.KindUnavailable, "UNAVAILABLE", "UNAVAILABLE", 503, 503, ""},
		{"internal", errors.New("open /var/lib/envreg/secret: permission denied"),
			errcode.KindInternal, "UNKNOWN", "INTERNAL", 500, 500, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := errcode.Classify(tc.err)
			if !ok || f.Kind != tc.kind {
				t.Fatalf("Classify = %+v, %v; want kind %s", f, ok, tc.kind)
			}
			r, a := registry.ToError(tc.err), api.ToError(tc.err)
			if r.Code != tc.registry || r.Status != tc.regStatus {
				t.Errorf("registry: %d %s, want %d %s", r.Status, r.Code, tc.regStatus, tc.registry)
			}
			if a.Code != tc.api || a.Status != tc.apiStatus {
				t.Errorf("api: %d %s, want %d %s", a.Status, a.Code, tc.apiStatus, tc.api)
			}
			rd, ad := asJSON(t, r.Detail), asJSON(t, a.Detail)
			if rd != ad || (tc.detail != "" && rd != tc.detail) || (tc.detail == "" && rd != "null") {
				t.Errorf("detail: registry %s, api %s; want %s on both", rd, ad, tc.detail)
			}
			if r.Message != a.Message && tc.kind != errcode.KindPackageInvalid && tc.kind != errcode.KindLayerRefused {
				t.Errorf("message: registry %q, api %q", r.Message, a.Message)
			}
			if tc.kind == errcode.KindInternal || tc.kind == errcode.KindUnavailable {
				for _, m := range []string{r.Message, a.Message} {
					if m == tc.err.Error() {
						t.Errorf("internal details leak to the client: %q", m)
					}
				}
			}
		})
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
