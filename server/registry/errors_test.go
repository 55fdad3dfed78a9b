package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/server/registry"
)

func TestToError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("resolving env:php@9: %w", err) }
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"unsatisfiable", wrap(&resolver.UnsatisfiableError{Package: "php", Constraint: "9"}), 404, "MANIFEST_UNKNOWN"},
		{"conflict", wrap(&resolver.ConflictError{Package: "php"}), 404, "MANIFEST_UNKNOWN"},
		{"tag", &resolver.TagError{Tag: "a__b", Reason: "empty component"}, 404, "MANIFEST_UNKNOWN"},
		{"unknown package", fmt.Errorf("tag x: %w", resolver.ErrUnknownPackage), 404, "MANIFEST_UNKNOWN"},
		{"no platform", &resolver.NoPlatformError{}, 404, "MANIFEST_UNKNOWN"},
		{"env conflict", &resolver.EnvConflictError{Variable: "X"}, 404, "MANIFEST_UNKNOWN"},
		{"too many layers", wrap(&manifestgen.TooManyLayersError{Count: 101, Limit: 100}), 404, "MANIFEST_UNKNOWN"},
		{"blob not found", fmt.Errorf("blob x: %w", layerstore.ErrNotFound), 404, "BLOB_UNKNOWN"},
		{"bad digest", digest.ErrDigestInvalidFormat, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", fmt.Errorf("x: %w", digest.ErrDigestUnsupported), 400, "DIGEST_INVALID"},
		{"internal", errors.New("open /var/lib/envreg/secret: permission denied"), 500, "UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := registry.ToError(tc.err)
			if e == nil || e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("ToError = %+v, want %d %s", e, tc.status, tc.code)
			}
			if tc.code == "UNKNOWN" && strings.Contains(e.Message, "/var/lib") {
				t.Errorf("internal details leak to the client: %q", e.Message)
			}
			if tc.code != "UNKNOWN" && !errors.Is(e, tc.err) && e.Message == "" {
				t.Errorf("no message for %v", tc.err)
			}
		})
	}
	if e := registry.ToError(fmt.Errorf("x: %w", context.Canceled)); e != nil {
		t.Errorf("canceled request mapped to %+v; want nothing sent", e)
	}
}

func TestToErrorOverlap(t *testing.T) {
	e := registry.ToError(fmt.Errorf("composing: %w", &resolver.OverlapError{Path: "a", Platform: "linux/amd64"}))
	if e == nil || e.Status != 404 || e.Code != "MANIFEST_UNKNOWN" {
		t.Errorf("overlap mapped to %+v", e)
	}
}
