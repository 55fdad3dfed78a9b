package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/server/api"
	"github.com/envreg/envreg/test/fixtures"
)

var (
	amd64 = catalog.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = catalog.Platform{OS: "linux", Architecture: "arm64"}
)

// TestCalls is a table of requests over the real server (ggcr TestCalls
// style): status, error code and a fragment of the body. Every answer is
// JSON with a request id, errors carry it in the body too.
func TestCalls(t *testing.T) {
	p := newPublished(t)
	p.publish(t, fixtures.Package{Name: "legacy", Version: "1.0.0", Requires: []string{"base *", "php <8.2"}})
	p.publish(t, fixtures.Package{Name: "php-compat", Version: "1.0.0", Requires: []string{"base *"}, Env: map[string]string{"PHP_VERSION": "7.4.0"}})
	p.publishOne(t, "armonly", "1.0.0", arm64)
	p.publishOne(t, "amdonly", "1.0.0", amd64)
	if err := p.cat.PutStack(t.Context(), catalog.Stack{Name: "bare"}); err != nil {
		t.Fatal(err)
	}
	zero := "sha256:" + strings.Repeat("0", 64)
	manifest := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "8.2"}}).Platforms[0].Digest

	cases := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string
		status      int
		code        string // API error code, for errors
		bodyHas     string
	}{
		{name: "stacks", method: "GET", path: "/api/v1/stacks", status: 200, bodyHas: `"name":"env","base":["base *"]`},
		{name: "stack", method: "GET", path: "/api/v1/stacks/env", status: 200, bodyHas: `"aliases":{"gm":"graphicsmagick","node":"nodejs"}`},
		{name: "unknown stack", method: "GET", path: "/api/v1/stacks/nope", status: 404, code: "STACK_UNKNOWN", bodyHas: `"known":["bare","env"]`},
		{name: "packages", method: "GET", path: "/api/v1/packages", status: 200, bodyHas: `{"name":"php","latest":"8.2.36","versions":["8.2.36","8.2.32","8.1.27"],"platforms":["linux/amd64","linux/arm64"]}`},
		{name: "package", method: "GET", path: "/api/v1/packages/php", status: 200, bodyHas: `"requires":["base *"]`},
		{name: "unknown package", method: "GET", path: "/api/v1/packages/ruby", status: 404, code: "PACKAGE_UNKNOWN", bodyHas: `"package":"ruby"`},
		{name: "openapi", method: "GET", path: "/api/v1/openapi.yaml", status: 200, bodyHas: "openapi: 3."},
		{name: "unknown route", method: "GET", path: "/api/v1/nothing", status: 404, code: "NOT_FOUND"},
		{name: "wrong method", method: "DELETE", path: "/api/v1/stacks", status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "GET resolve", method: "GET", path: "/api/v1/stacks/env/resolve", status: 405, code: "METHOD_NOT_ALLOWED"},

		{name: "resolve", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":"^8.2"}}`, status: 200, bodyHas: `{"name":"php","version":"8.2.36"}`},
		{name: "resolve alias", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"node":"18"}}`, status: 200, bodyHas: `{"name":"nodejs","version":"18.20.4"}`},
		{name: "resolve tag", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"tag":"php-8.1_gm"}`, status: 200, bodyHas: `{"name":"php","version":"8.1.27"}`},
		{name: "base only", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{}`, status: 200, bodyHas: `"packages":[{"name":"base","version":"12.0.0"}]`},
		{name: "charset", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{}`, contentType: "application/json; charset=utf-8", status: 200},

		{name: "bad JSON", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":`, status: 400, code: "BAD_REQUEST", bodyHas: "invalid JSON body"},
		{name: "not an object", method: "POST", path: "/api/v1/stacks/env/resolve", body: `["php"]`, status: 400, code: "BAD_REQUEST"},
		{name: "wrong type", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":8}}`, status: 400, code: "BAD_REQUEST"},
		{name: "unknown field", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirement":{"php":"^8"}}`, status: 400, code: "BAD_REQUEST", bodyHas: `unknown field \"requirement\"`},
		{name: "trailing data", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{} {}`, status: 400, code: "BAD_REQUEST", bodyHas: "after the first JSON value"},
		{name: "empty body", method: "POST", path: "/api/v1/stacks/env/resolve", body: ``, status: 400, code: "BAD_REQUEST", bodyHas: "empty request body"},
		{name: "not JSON type", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{}`, contentType: "text/plain", status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "bad range", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":"^^8"}}`, status: 400, code: "BAD_REQUEST", bodyHas: "version range"},
		{name: "empty range", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":""}}`, status: 400, code: "BAD_REQUEST", bodyHas: `use \"*\"`},
		{name: "bad name", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"PHP":"8"}}`, status: 400, code: "BAD_REQUEST"},
		{name: "alias twice", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"node":"18","nodejs":"20"}}`, status: 400, code: "BAD_REQUEST", bodyHas: "duplicate requirement for nodejs"},
		{name: "tag and requirements", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"tag":"php","requirements":{"php":"8"}}`, status: 400, code: "BAD_REQUEST"},
		{name: "bad tag", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"tag":"php__gm"}`, status: 400, code: "BAD_REQUEST", bodyHas: `"reason":"empty component"`},
		{name: "bad platform", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"platforms":["amd64"]}`, status: 400, code: "BAD_REQUEST"},
		{name: "bad policy", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"policy":"patchLevel","from":"` + zero + `"}`, status: 400, code: "BAD_REQUEST"},
		{name: "policy without from", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"policy":"patch"}`, status: 400, code: "BAD_REQUEST", bodyHas: "needs from"},
		{name: "bad from", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"from":"sha256:abc"}`, status: 400, code: "BAD_REQUEST"},

		{name: "resolve unknown stack", method: "POST", path: "/api/v1/stacks/nope/resolve", body: `{}`, status: 404, code: "STACK_UNKNOWN", bodyHas: `unknown stack \"nope\"`},
		{name: "resolve unknown package", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"ruby":"3"}}`, status: 404, code: "PACKAGE_UNKNOWN", bodyHas: `"package":"ruby"`},
		{name: "unknown from", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"from":"` + zero + `"}`, status: 404, code: "FROM_UNKNOWN"},

		{name: "unsatisfiable", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":"^9"}}`, status: 422, code: "UNSATISFIABLE",
			bodyHas: `"message":"no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)","detail":{"available":["8.1.27","8.2.32","8.2.36"],"chain":[],"constraint":"^9","package":"php"}`},
		{name: "conflict", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":"^8.2","legacy":"*"}}`, status: 422, code: "CONFLICT",
			bodyHas: `"chains":[["requested php ^8.2"],["requested legacy","legacy 1.0.0 requires php <8.2"]]`},
		{name: "env conflict", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"php":"*","php-compat":"*"}}`, status: 422, code: "ENV_CONFLICT", bodyHas: `"variable":"PHP_VERSION"`},
		{name: "no platform", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"armonly":"*","amdonly":"*"}}`, status: 422, code: "NO_PLATFORM", bodyHas: `{"platforms":["linux/arm64"],"release":"armonly 1.0.0"}`},
		{name: "platform unsupported", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"requirements":{"armonly":"*"},"platforms":["linux/amd64"]}`, status: 422, code: "PLATFORM_UNSUPPORTED",
			bodyHas: `"detail":{"available":["linux/arm64"],"missing":["armonly 1.0.0"],"platform":"linux/amd64"}`},
		{name: "empty", method: "POST", path: "/api/v1/stacks/bare/resolve", body: `{}`, status: 422, code: "EMPTY"},
		{name: "from is a manifest", method: "POST", path: "/api/v1/stacks/env/resolve", body: `{"from":"` + manifest + `"}`, status: 422, code: "FROM_INVALID", bodyHas: "not an image index"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method == "POST" {
				body = []byte(tc.body)
			}
			ct := tc.contentType
			if ct == "" && tc.method == "POST" {
				ct = "application/json"
			}
			status, h, data := p.call(t, tc.method, tc.path, body, "Content-Type", ct)
			if status != tc.status {
				t.Fatalf("%s %s: %d, want %d\n%s", tc.method, tc.path, status, tc.status, data)
			}
			id := h.Get("X-Request-Id")
			if id == "" {
				t.Error("no X-Request-Id header")
			}
			if tc.bodyHas != "" && !strings.Contains(string(data), tc.bodyHas) {
				t.Errorf("body does not contain %s:\n%s", tc.bodyHas, data)
			}
			if strings.HasSuffix(tc.path, ".yaml") {
				return
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tc.code == "" {
				if !json.Valid(data) {
					t.Errorf("body is not JSON: %s", data)
				}
				return
			}
			var e api.Error
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatalf("error body: %v\n%s", err, data)
			}
			if e.Code != tc.code || e.Status != tc.status || e.Message == "" || strings.Contains(e.Message, "\n") {
				t.Errorf("error %+v, want code %s status %d and a one-line message", e, tc.code, tc.status)
			}
			if e.RequestID != id {
				t.Errorf("requestId %q in the body, X-Request-Id %q", e.RequestID, id)
			}
			if tc.status == 405 && h.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

// TestResolve checks the whole answer for the example and that
// everything it names can be pulled.
func TestResolve(t *testing.T) {
	p := newPublished(t)
	status, h, data := p.call(t, "POST", "/api/v1/stacks/env/resolve",
		[]byte(`{"requirements": {"php": "^8.2", "graphicsmagick": "*", "nodejs": "^20"}, "platforms": ["linux/amd64"]}`),
		"Content-Type", "application/json", "X-Request-Id", "req-42")
	if status != 200 || h.Get("X-Request-Id") != "req-42" {
		t.Fatalf("resolve: %d, X-Request-Id %q\n%s", status, h.Get("X-Request-Id"), data)
	}
	var out api.ResolveResponse
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(p.srv.URL, "http://")

	wantPkgs := []api.PackageVersion{{"base", "12.0.0"}, {"graphicsmagick", "1.3.42"}, {"nodejs", "20.12.2"}, {"php", "8.2.36"}}
	if !slices.Equal(out.Packages, wantPkgs) {
		t.Errorf("packages %v, want %v", out.Packages, wantPkgs)
	}
	if out.Stack != "env" || out.Reference != host+"/env@"+out.Digest || out.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("stack %q reference %q media type %q", out.Stack, out.Reference, out.MediaType)
	}
	wantTag := "base-12.0.0_graphicsmagick-1.3.42_nodejs-20.12.2_php-8.2.36"
	if out.Tag != wantTag || out.TagReference != host+"/env:"+wantTag || out.TagOmitted != "" {
		t.Errorf("tag %q (%q), omitted %q; want %s", out.Tag, out.TagReference, out.TagOmitted, wantTag)
	}
	wantReqs := []api.RequirementResult{
		{Name: "graphicsmagick", Constraint: "*", Effective: "*"},
		{Name: "nodejs", Constraint: "^20", Effective: "^20"},
		{Name: "php", Constraint: "^8.2", Effective: "^8.2"},
	}
	if !slices.Equal(out.Requirements, wantReqs) {
		t.Errorf("requirements %+v", out.Requirements)
	}
	if !slices.Equal(out.IndexPlatforms, []string{"linux/amd64", "linux/arm64"}) || len(out.Platforms) != 1 || out.Platforms[0].Platform != "linux/amd64" {
		t.Fatalf("index platforms %v, reported %+v", out.IndexPlatforms, out.Platforms)
	}
	if out.From != nil || out.Platforms[0].Download != nil {
		t.Errorf("from %+v / download %+v without from", out.From, out.Platforms[0].Download)
	}
	for _, l := range out.Platforms[0].Layers {
		if l.Download != nil {
			t.Errorf("layer %s %s: download %v without from", l.Package, l.Version, *l.Download)
		}
	}

	// The index is stored: pullable by digest, with the reported manifest,
	// whose layers are the reported ones.
	idx := getIndex(t, p, out.Digest)
	if len(idx.Manifests) != 2 || idx.Annotations["io.envreg.package.php"] != "8.2.36" {
		t.Fatalf("stored index %+v", idx)
	}
	pr := out.Platforms[0]
	var m ocispec.Manifest
	getJSON(t, p, "/v2/env/manifests/"+pr.Digest, &m)
	if idx.Manifests[0].Digest.String() != pr.Digest || len(m.Layers) != len(pr.Layers) {
		t.Fatalf("manifest %s: %+v; reported %+v", pr.Digest, m, pr)
	}
	var total int64
	for i, l := range pr.Layers {
		if m.Layers[i].Digest.String() != l.Digest || m.Layers[i].Size != l.Size || l.Package != wantPkgs[i].Name || l.Version != wantPkgs[i].Version {
			t.Errorf("layer %d: reported %+v, manifest %+v", i, l, m.Layers[i])
		}
		if status, _, _ := p.call(t, "HEAD", "/v2/env/blobs/"+l.Digest, nil); status != 200 {
			t.Errorf("layer %s: HEAD %d", l.Digest, status)
		}
		total += l.Size
	}
	if pr.Size != total || total == 0 {
		t.Errorf("size %d, layers sum to %d", pr.Size, total)
	}

	// The canonical tag and the tag form resolve to the same index.
	for _, tag := range []string{out.Tag, "php-8.2_gm_node-20"} {
		status, h, _ := p.call(t, "HEAD", "/v2/env/manifests/"+tag, nil)
		if status != 200 || h.Get("Docker-Content-Digest") != out.Digest {
			t.Errorf("GET /v2/env/manifests/%s: %d %s, want %s", tag, status, h.Get("Docker-Content-Digest"), out.Digest)
		}
	}
	if again := p.mustResolve(t, api.ResolveRequest{Tag: "php-8.2_gm_node-20"}); again.Digest != out.Digest || len(again.Platforms) != 2 {
		t.Errorf("tag form: %s with %d platforms, want %s with 2", again.Digest, len(again.Platforms), out.Digest)
	}
}

// TestResolveTagOmitted: a resolution whose tag would be too long has none,
// and says why.
func TestResolveTagOmitted(t *testing.T) {
	p := newPublished(t)
	reqs := map[string]string{}
	for i := range 8 {
		name := fmt.Sprintf("package-with-a-long-name-%d", i)
		p.publish(t, fixtures.Extra(name, "1.0.0"))
		reqs[name] = "*"
	}
	out := p.mustResolve(t, api.ResolveRequest{Requirements: reqs})
	if out.Tag != "" || !strings.Contains(out.TagOmitted, "tags are limited to 128") {
		t.Errorf("tag %q, omitted %q", out.Tag, out.TagOmitted)
	}
}

func getJSON(t *testing.T, p *published, path string, v any) {
	t.Helper()
	status, _, data := p.call(t, "GET", path, nil, "Accept", ocispec.MediaTypeImageIndex+", "+ocispec.MediaTypeImageManifest)
	if status != 200 {
		t.Fatalf("GET %s: %d\n%s", path, status, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func getIndex(t *testing.T, p *published, d string) ocispec.Index {
	t.Helper()
	var idx ocispec.Index
	getJSON(t, p, "/v2/env/manifests/"+d, &idx)
	return idx
}

// TestResolveFromForeignIndex: "from" must be an index a stack composed.
// An index stored for an ordinary repository (pushed, with envreg's
// annotations copied into it) is unknown, as it is to a pull by digest
// through a stack: the answer would show what another repository holds.
func TestResolveFromForeignIndex(t *testing.T) {
	p := newPublished(t)
	own := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "=8.1.27"}})
	doc, err := p.cat.Document(t.Context(), digest.Digest(own.Digest))
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(doc.Data, &idx); err != nil {
		t.Fatal(err)
	}
	idx["annotations"].(map[string]any)["io.envreg.package.secret"] = "1.0.0" // what bob's index would show
	data, _ := json.Marshal(idx)
	foreign := catalog.Document{MediaType: doc.MediaType, Digest: digest.FromBytes(data), Data: data}
	if err := p.cat.PutDocument(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}
	status, _, e := p.resolve(t, "env", api.ResolveRequest{Requirements: map[string]string{"php": "*"}, From: foreign.Digest.String()})
	if status != 404 || e.Code != "FROM_UNKNOWN" || strings.Contains(e.Message, "secret") {
		t.Errorf("from a foreign index: %d %+v", status, e)
	}
	if status, out, e := p.resolve(t, "env", api.ResolveRequest{Requirements: map[string]string{"php": "*"}, From: own.Digest}); status != 200 || out.From == nil {
		t.Errorf("from the stack's own index: %d %+v", status, e)
	}
}

// TestResolveFrom covers "from" with every policy: versions, changes and
// the bytes to download.
func TestResolveFrom(t *testing.T) {
	p := newPublished(t)
	old := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "=8.1.27", "nodejs": "=18.20.4", "graphicsmagick": "=1.3.40"}})
	reqs := map[string]string{"php": "^8.1", "nodejs": "*", "graphicsmagick": "*"}

	cases := []struct {
		policy  string
		reqs    map[string]string
		want    map[string]string
		changes []api.Change
	}{
		{policy: "all", reqs: reqs,
			want:    map[string]string{"base": "12.0.0", "php": "8.2.36", "nodejs": "20.12.2", "graphicsmagick": "1.3.42"},
			changes: []api.Change{{"graphicsmagick", "upgraded", "1.3.40", "1.3.42", ""}, {"nodejs", "upgraded", "18.20.4", "20.12.2", ""}, {"php", "upgraded", "8.1.27", "8.2.36", ""}}},
		{policy: "", reqs: reqs, // default: all
			want:    map[string]string{"base": "12.0.0", "php": "8.2.36", "nodejs": "20.12.2", "graphicsmagick": "1.3.42"},
			changes: []api.Change{{"graphicsmagick", "upgraded", "1.3.40", "1.3.42", ""}, {"nodejs", "upgraded", "18.20.4", "20.12.2", ""}, {"php", "upgraded", "8.1.27", "8.2.36", ""}}},
		{policy: "minor", reqs: reqs,
			want:    map[string]string{"base": "12.0.0", "php": "8.2.36", "nodejs": "18.20.4", "graphicsmagick": "1.3.42"},
			changes: []api.Change{{"graphicsmagick", "upgraded", "1.3.40", "1.3.42", ""}, {"php", "upgraded", "8.1.27", "8.2.36", ""}}},
		{policy: "patch", reqs: reqs,
			want:    map[string]string{"base": "12.0.0", "php": "8.1.27", "nodejs": "18.20.4", "graphicsmagick": "1.3.42"},
			changes: []api.Change{{"graphicsmagick", "upgraded", "1.3.40", "1.3.42", ""}}},
		{policy: "none", reqs: reqs,
			want:    map[string]string{"base": "12.0.0", "php": "8.1.27", "nodejs": "18.20.4", "graphicsmagick": "1.3.40"},
			changes: []api.Change{}},
		// A requirement that excludes what runs is a deliberate change: the
		// policy does not hold it back; the others stay.
		{policy: "none", reqs: map[string]string{"php": "^8.2", "nodejs": "*", "graphicsmagick": "*"},
			want:    map[string]string{"base": "12.0.0", "php": "8.2.36", "nodejs": "18.20.4", "graphicsmagick": "1.3.40"},
			changes: []api.Change{{"php", "upgraded", "8.1.27", "8.2.36", ""}}},
		{policy: "patch", reqs: map[string]string{"php": "8.1", "nodejs": "18"},
			want:    map[string]string{"base": "12.0.0", "php": "8.1.27", "nodejs": "18.20.4"},
			changes: []api.Change{{"graphicsmagick", "removed", "1.3.40", "", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.policy+" "+fmt.Sprint(tc.reqs), func(t *testing.T) {
			out := p.mustResolve(t, api.ResolveRequest{Requirements: tc.reqs, From: old.Digest, Policy: tc.policy})
			if got := versions(out); !maps.Equal(got, tc.want) {
				t.Errorf("versions %v, want %v", got, tc.want)
			}
			wantPolicy := tc.policy
			if wantPolicy == "" {
				wantPolicy = "all"
			}
			if out.From == nil || out.From.Digest != old.Digest || out.From.Policy != wantPolicy || out.From.Stack != "env" {
				t.Fatalf("from %+v", out.From)
			}
			if !slices.Equal(out.From.Packages, []api.PackageVersion{{"base", "12.0.0"}, {"graphicsmagick", "1.3.40"}, {"nodejs", "18.20.4"}, {"php", "8.1.27"}}) {
				t.Errorf("from packages %v", out.From.Packages)
			}
			if !slices.Equal(out.From.Changes, tc.changes) {
				t.Errorf("changes %+v, want %+v", out.From.Changes, tc.changes)
			}
			// Download: the new layers whose digests the old manifest lacks.
			for i, pr := range out.Platforms {
				oldLayers := map[string]bool{}
				for _, l := range old.Platforms[i].Layers {
					oldLayers[l.Digest] = true
				}
				want := api.Download{Prefetch: []api.PrefetchBlob{}}
				for _, l := range pr.Layers {
					if !oldLayers[l.Digest] {
						want.Size += l.Size
						want.Layers++
						want.Prefetch = append(want.Prefetch, api.PrefetchBlob{Digest: l.Digest, Size: l.Size, URL: "/v2/env/blobs/" + l.Digest})
					}
					if l.Download == nil || *l.Download != !oldLayers[l.Digest] {
						t.Errorf("%s: layer %s %s marked download %v, want %v", pr.Platform, l.Package, l.Version, l.Download, !oldLayers[l.Digest])
					}
				}
				want.FromManifest = old.Platforms[i].Digest
				if pr.Download == nil || !reflect.DeepEqual(*pr.Download, want) {
					t.Errorf("%s: download %+v, want %+v", pr.Platform, pr.Download, want)
				}
				if len(tc.changes) > 0 && want.Layers != len(tc.changes)-countRemoved(tc.changes) {
					t.Errorf("%s: %d new layers for changes %+v", pr.Platform, want.Layers, tc.changes)
				}
			}
			if len(tc.changes) == 0 && out.Digest != old.Digest {
				t.Errorf("nothing changed but the digest did: %s, from %s", out.Digest, old.Digest)
			}
		})
	}

	// The effective ranges are reported, with what the policy did.
	out := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "^8.2 || ^8.1", "nodejs": "20"}, From: old.Digest, Policy: "patch"})
	want := []api.RequirementResult{
		{Name: "base", Constraint: "*", Effective: ">=12.0.0 <12.1.0", Policy: "patch from 12.0.0: >=12.0.0 <12.1.0", Base: true},
		{Name: "nodejs", Constraint: "20", Effective: "20", Policy: "patch not applied: nodejs 18.20.4 (from) does not satisfy 20, so the requirement was changed on purpose"},
		{Name: "php", Constraint: "^8.2 || ^8.1", Effective: "^8.2, >=8.1.27 <8.2.0 || ^8.1, >=8.1.27 <8.2.0", Policy: "patch from 8.1.27: >=8.1.27 <8.2.0"},
	}
	if !slices.Equal(out.Requirements, want) {
		t.Errorf("requirements\n%+v\nwant\n%+v", out.Requirements, want)
	}
	if v := versions(out); v["php"] != "8.1.27" || v["nodejs"] != "20.12.2" {
		t.Errorf("versions %v", v)
	}

	// Added, and downgraded with policy all.
	newer := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "8.2"}})
	out = p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "8.1", "gm": "*"}, From: newer.Digest})
	if !slices.Equal(out.From.Changes, []api.Change{{"graphicsmagick", "added", "", "1.3.42", ""}, {"php", "downgraded", "8.2.36", "8.1.27", ""}}) {
		t.Errorf("changes %+v", out.From.Changes)
	}

	// A policy that collides with a new requirement is explained as usual.
	p.publish(t, fixtures.Package{Name: "modern", Version: "1.0.0", Requires: []string{"base *", "php >=8.2"}})
	status, _, e := p.resolve(t, "env", api.ResolveRequest{Requirements: map[string]string{"php": "*", "modern": "*"}, From: old.Digest, Policy: "patch"})
	if status != 422 || e.Code != "CONFLICT" || !strings.Contains(e.Message, "php") {
		t.Errorf("policy conflict: %d %+v", status, e)
	}
}

func countRemoved(cs []api.Change) int {
	n := 0
	for _, c := range cs {
		if c.Change == "removed" {
			n++
		}
	}
	return n
}

// TestResolveFromDockerList: a from digest of a Docker manifest list (what
// docker pull got) works like an OCI index.
func TestResolveFromDockerList(t *testing.T) {
	p := newPublished(t)
	status, h, _ := p.call(t, "HEAD", "/v2/env/manifests/php-8.2.32", nil, "Accept", manifestgen.MediaTypeDockerManifestList)
	if status != 200 {
		t.Fatalf("HEAD: %d", status)
	}
	out := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "^8.2"}, From: h.Get("Docker-Content-Digest"), Policy: "patch"})
	if !slices.Equal(out.From.Changes, []api.Change{{"php", "upgraded", "8.2.32", "8.2.36", ""}}) {
		t.Errorf("changes %+v", out.From.Changes)
	}
	for _, pr := range out.Platforms {
		if pr.Download.Layers != 1 || pr.Download.Size != pr.Layers[1].Size {
			t.Errorf("%s: download %+v, want only php's layer (%d bytes)", pr.Platform, pr.Download, pr.Layers[1].Size)
		}
	}
}

// TestOversizedBody: a body over 1 MiB is refused with 413 before it is
// read whole.
func TestOversizedBody(t *testing.T) {
	p := newPublished(t)
	body := []byte(`{"requirements":{"php":"` + strings.Repeat(" ", api.MaxBodyBytes) + `^8"}}`)
	status, _, data := p.call(t, "POST", "/api/v1/stacks/env/resolve", body, "Content-Type", "application/json")
	var e api.Error
	if err := json.Unmarshal(data, &e); err != nil || status != 413 || e.Code != "BODY_TOO_LARGE" || e.RequestID == "" {
		t.Errorf("oversized body: %d %+v (%v)", status, e, err)
	}
}

// TestConcurrentResolveDuringPublish resolves from many goroutines while a
// new php version is published: no request fails, every answer is stored
// and consistent with its generation, and the new version shows up.
func TestConcurrentResolveDuringPublish(t *testing.T) {
	p := newPublished(t)
	before := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "^8.2"}})

	type answer struct {
		gen    uint64
		digest string
		php    string
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
		ready   sync.WaitGroup // every goroutine has an answer: they are running
		stop    = make(chan struct{})
	)
	for range 8 {
		ready.Add(1)
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 1 {
					ready.Done()
				}
				select {
				case <-stop:
					if i > 0 {
						return
					}
				default:
				}
				status, out, e := p.resolve(t, "env", api.ResolveRequest{Requirements: map[string]string{"php": "^8.2", "node": "*"}})
				if status != 200 {
					t.Errorf("resolve during publish: %d %+v", status, e)
					if i == 0 {
						ready.Done()
					}
					return
				}
				mu.Lock()
				answers = append(answers, answer{out.Generation, out.Digest, versions(out)["php"]})
				mu.Unlock()
			}
		})
	}
	ready.Wait()
	p.publish(t, fixtures.Extra("php", "8.2.37"))
	close(stop)
	wg.Wait()

	byGen := map[uint64]answer{}
	for _, a := range answers {
		if a.php != "8.2.36" && a.php != "8.2.37" {
			t.Errorf("php %s", a.php)
		}
		if a.gen <= before.Generation && a.php != "8.2.36" || a.gen > before.Generation && a.php != "8.2.37" {
			t.Errorf("generation %d (before the publish: %d) resolved php %s", a.gen, before.Generation, a.php)
		}
		if prev, ok := byGen[a.gen]; ok && prev != a {
			t.Errorf("generation %d answered %+v and %+v", a.gen, prev, a)
		}
		byGen[a.gen] = a
	}
	for _, a := range byGen {
		if idx := getIndex(t, p, a.digest); idx.Annotations["io.envreg.package.php"] != a.php {
			t.Errorf("stored index %s says php %s, the answer %s", a.digest, idx.Annotations["io.envreg.package.php"], a.php)
		}
	}
	after := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "^8.2"}})
	if versions(after)["php"] != "8.2.37" || after.Generation <= before.Generation {
		t.Errorf("after the publish: %v at generation %d", versions(after), after.Generation)
	}
	t.Logf("%d answers over %d generations", len(answers), len(byGen))
}

// TestLoopbackOnly: without authentication, only clients on this host are
// served: a loopback peer that addresses the server as a loopback address
// or localhost, and not a web page of another origin.
func TestLoopbackOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := api.LoopbackOnly(ok)
	cases := []struct {
		remote string
		host   string // default 127.0.0.1:5000
		header []string
		status int
		why    string // a fragment of the 403 message
	}{
		{remote: "127.0.0.1:40000", status: 204},
		{remote: "127.8.9.10:1", status: 204},
		{remote: "[::1]:40000", status: 204},
		{remote: "[::ffff:127.0.0.1]:40000", status: 204},
		{remote: "::1", status: 204},
		{remote: "127.0.0.1:40000", host: "localhost:5000", status: 204},
		{remote: "127.0.0.1:40000", host: "[::1]:5000", status: 204},
		{remote: "127.0.0.1:40000", header: []string{"Origin", "http://127.0.0.1:5000", "Sec-Fetch-Site", "same-origin"}, status: 204},
		{remote: "10.0.0.7:40000", status: 403, why: "client address 10.0.0.7:40000"},
		{remote: "192.168.1.20:5000", status: 403},
		{remote: "[2001:db8::1]:443", status: 403},
		{remote: "[::ffff:10.0.0.1]:1", status: 403},
		{remote: "", status: 403},
		{remote: "not-an-address", status: 403},
		{remote: "127.0.0.1:40000", host: "attacker.example:5000", status: 403, why: "DNS rebinding"},
		{remote: "127.0.0.1:40000", header: []string{"Origin", "https://attacker.example"}, status: 403, why: "Origin: https://attacker.example"},
		{remote: "127.0.0.1:40000", header: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, why: "Sec-Fetch-Site: cross-site"},
	}
	for _, tc := range cases {
		t.Run(tc.remote+" "+tc.host+" "+strings.Join(tc.header, " "), func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/stacks", nil)
			req.RemoteAddr, req.Host = tc.remote, "127.0.0.1:5000"
			if tc.host != "" {
				req.Host = tc.host
			}
			req.Header.Set("X-Forwarded-For", "127.0.0.1") // never trusted
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("RemoteAddr %q: %d, want %d\n%s", tc.remote, rec.Code, tc.status, rec.Body)
			}
			if tc.status != 403 {
				return
			}
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != "FORBIDDEN" || !strings.Contains(e.Message, "loopback clients only") ||
				!strings.Contains(e.Message, tc.why) || e.RequestID == "" || e.RequestID != rec.Header().Get("X-Request-Id") {
				t.Errorf("403 body %s (%v)", rec.Body, err)
			}
		})
	}
}

// TestLoopbackOnlyMounted: the check guards every API route of the real
// server, including unknown ones, but not the registry.
func TestLoopbackOnlyMounted(t *testing.T) {
	p := newPublished(t)
	h := p.srv.Config.Handler
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/stacks", 403},
		{"POST", "/api/v1/stacks/env/resolve", 403},
		{"GET", "/api/v1/nothing", 403},
		{"GET", "/v2/env/tags/list", 200},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		req.RemoteAddr = "203.0.113.9:5555"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s from 203.0.113.9: %d, want %d\n%s", tc.method, tc.path, rec.Code, tc.status, rec.Body)
		}
	}
}

// TestToError is the table of the one error mapping.
func TestToError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("resolving env:php@9: %w", err) }
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		detail string // a fragment of the JSON detail
	}{
		{"unsatisfiable", wrap(&resolver.UnsatisfiableError{Package: "php", Constraint: "^9", Available: []string{"8.2.36"}}), 422, "UNSATISFIABLE", `"chain":[]`},
		{"conflict", wrap(&resolver.ConflictError{Package: "php", Chains: [2][]string{{"requested php 8"}, nil}}), 422, "CONFLICT", `"chains":[["requested php 8"],[]]`},
		{"overlap", &resolver.OverlapError{Path: "usr/bin/x", Platform: "linux/amd64"}, 422, "OVERLAP", `"path":"usr/bin/x"`},
		{"overlap beneath a link", &resolver.OverlapError{Path: "etc", Platform: "linux/amd64", Entries: [2]string{"etc/os-release", "etc"}}, 422, "OVERLAP", `"entries":["etc/os-release","etc"]`},
		{"env conflict", &resolver.EnvConflictError{Variable: "X"}, 422, "ENV_CONFLICT", `"variable":"X"`},
		{"no platform", &resolver.NoPlatformError{Releases: []resolver.ReleasePlatforms{{Release: "a 1.0.0"}}}, 422, "NO_PLATFORM", `"platforms":[]`},
		{"platform", &api.PlatformError{Platform: "linux/s390x"}, 422, "PLATFORM_UNSUPPORTED", `"missing":[]`},
		{"too many layers", wrap(&manifestgen.TooManyLayersError{Count: 101, Limit: 100}), 422, "TOO_MANY_LAYERS", `"limit":100`},
		{"too many layers sentinel", fmt.Errorf("%w: 101", resolver.ErrTooManyLayers), 422, "TOO_MANY_LAYERS", ""},
		{"empty", fmt.Errorf("%w: stack bare", resolver.ErrEmpty), 422, "EMPTY", ""},
		{"too complex", fmt.Errorf("%w: gave up", resolver.ErrTooComplex), 422, "TOO_COMPLEX", ""},
		{"unknown package", &resolver.UnknownPackageError{Package: "ruby"}, 404, "PACKAGE_UNKNOWN", `"known":[]`},
		{"unknown package sentinel", fmt.Errorf("x: %w", resolver.ErrUnknownPackage), 404, "PACKAGE_UNKNOWN", ""},
		{"tag", &resolver.TagError{Tag: "a__b", Reason: "empty component"}, 400, "BAD_REQUEST", `"reason":"empty component"`},
		{"too large", fmt.Errorf("%w", &http.MaxBytesError{Limit: 1 << 20}), 413, "BODY_TOO_LARGE", `"limit":1048576`},
		{"bad digest", digest.ErrDigestInvalidFormat, 400, "BAD_REQUEST", ""}, // a client fault is never a 500
		{"internal", errors.New("open /var/lib/envreg/secret: permission denied"), 500, "INTERNAL", ""},
		{"catalog not found", fmt.Errorf("x: %w", catalog.ErrNotFound), 500, "INTERNAL", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := api.ToError(tc.err)
			if e == nil || e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("ToError = %+v, want %d %s", e, tc.status, tc.code)
			}
			if tc.code == "INTERNAL" {
				if e.Message != "internal server error" || e.Detail != nil {
					t.Errorf("internal details leak to the client: %+v", e)
				}
				return
			}
			if e.Code == "BODY_TOO_LARGE" {
				if e.Message != "request body larger than 1048576 bytes" {
					t.Errorf("message %q", e.Message)
				}
			} else if e.Message != tc.err.Error() && !strings.Contains(tc.err.Error(), e.Message) {
				t.Errorf("message %q; want the error's own sentence %q", e.Message, tc.err.Error())
			}
			if !errors.Is(e, tc.err) && !errors.Is(e.Unwrap(), tc.err) {
				t.Errorf("the cause is not kept for the log")
			}
			detail, _ := json.Marshal(e.Detail)
			if !strings.Contains(string(detail), tc.detail) {
				t.Errorf("detail %s does not contain %s", detail, tc.detail)
			}
		})
	}
	if e := api.ToError(fmt.Errorf("x: %w", context.Canceled)); e != nil {
		t.Errorf("canceled request mapped to %+v; want nothing sent", e)
	}
	if e := api.ToError(nil); e != nil {
		t.Errorf("nil mapped to %+v", e)
	}
}

// TestOpenAPI keeps openapi.yaml true: every API route and method is
// documented, every documented operation is routed, every $ref resolves,
// and the document is what the server serves.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}

	router := mux.NewRouter()
	api.New(nil, nil, nil, api.WithLogger(slog.New(slog.DiscardHandler))).Register(router)
	routed := map[string]bool{}
	regexVar := regexp.MustCompile(`\{([^}:]+):[^}]*\}`)
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // the subrouter's prefix route
		}
		tpl = regexVar.ReplaceAllString(tpl, "{$1}")
		for _, m := range methods {
			routed[m+" "+tpl] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routed) < 6 {
		t.Fatalf("walked %d routes: %v", len(routed), routed)
	}
	if !routed["GET /"] {
		t.Error("no catalog page at GET /")
	}
	for r := range routed {
		if _, path, _ := strings.Cut(r, " "); !strings.HasPrefix(path, api.Prefix+"/") {
			continue // the HTML page is not part of the JSON API
		}
		if !documented[r] {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.yaml documents %s, which has no route", d)
		}
	}

	// Every $ref points at a component that exists.
	refs := regexp.MustCompile(`\$ref: "#/components/([^/]+)/([^"]+)"`).FindAllStringSubmatch(string(api.OpenAPI), -1)
	if len(refs) == 0 {
		t.Fatal("no $ref found")
	}
	for _, m := range refs {
		if _, ok := doc.Components[m[1]][m[2]]; !ok {
			t.Errorf("$ref %s/%s does not resolve", m[1], m[2])
		}
	}

	// Every error code the API can send is listed.
	for _, c := range []api.ErrorCode{api.CodeBadRequest, api.CodeUnauthorized, api.CodeForbidden, api.CodeNotFound, api.CodeStackUnknown,
		api.CodePackageUnknown, api.CodeFromUnknown, api.CodeMethodNotAllowed, api.CodeBodyTooLarge, api.CodeUnsupportedMediaType,
		api.CodeUnsatisfiable, api.CodeConflict, api.CodeOverlap, api.CodeEnvConflict, api.CodeNoPlatform,
		api.CodePlatformUnsupported, api.CodeEmpty, api.CodeTooComplex, api.CodeTooManyLayers, api.CodeFromInvalid, api.CodeInternal} {
		if !strings.Contains(string(api.OpenAPI), c.Code) {
			t.Errorf("code %s is not documented", c.Code)
		}
	}

	p := newPublished(t)
	status, h, body := p.call(t, "GET", "/api/v1/openapi.yaml", nil)
	if status != 200 || string(body) != string(api.OpenAPI) || h.Get("Content-Type") != "application/yaml" {
		t.Errorf("GET openapi.yaml: %d %s, same bytes %v", status, h.Get("Content-Type"), string(body) == string(api.OpenAPI))
	}
}

// TestResolveFromRebuild: after a rebuild of the running php version (same
// version, build metadata .r2, other layers, published with force), the
// from answer says "rebuilt" with the rebuild's reason, and the image
// pinned before the rebuild still pulls whole: its old php layer is kept
// as superseded and the stack still serves it.
func TestResolveFromRebuild(t *testing.T) {
	p := newPublished(t)
	status, h, _ := p.call(t, "HEAD", "/v2/env/manifests/php-8.2.36", nil, "Accept", "application/vnd.oci.image.index.v1+json")
	if status != 200 {
		t.Fatalf("HEAD: %d", status)
	}
	pinned := h.Get("Docker-Content-Digest")
	snap, err := p.cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var php, other catalog.Release
	for _, r := range snap.Releases("php") {
		switch r.Version.String() {
		case "8.2.36":
			php = r
		case "8.2.32":
			other = r
		}
	}
	const reason = "libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1"
	rebuilt := php
	v, _ := php.Version.SetMetadata("r2")
	rebuilt.Version = &v
	rebuilt.Layers = other.Layers // stored blobs that differ from php 8.2.36's
	rebuilt.Labels = map[string]string{catalog.LabelRebuild: reason}
	if err := p.cat.Publish(t.Context(), rebuilt, catalog.PublishOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	out := p.mustResolve(t, api.ResolveRequest{Requirements: map[string]string{"php": "8.2.36"}, From: pinned})
	want := []api.Change{{Package: "php", Change: "rebuilt", From: "8.2.36", To: "8.2.36+r2", Reason: reason}}
	if !slices.Equal(out.From.Changes, want) {
		t.Errorf("changes %+v, want %+v", out.From.Changes, want)
	}
	if out.Digest == pinned {
		t.Errorf("the rebuild resolves to the pinned digest %s", pinned)
	}

	// The pinned image pulls whole: index, manifests, configs and layers.
	status, _, body := p.call(t, "GET", "/v2/env/manifests/"+pinned, nil, "Accept", "application/vnd.oci.image.index.v1+json")
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); status != 200 || err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("GET pinned index: %d %v", status, err)
	}
	pulled := 0
	for _, m := range idx.Manifests {
		status, _, body := p.call(t, "GET", "/v2/env/manifests/"+m.Digest, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
		var man struct {
			Config struct{ Digest string }   `json:"config"`
			Layers []struct{ Digest string } `json:"layers"`
		}
		if err := json.Unmarshal(body, &man); status != 200 || err != nil {
			t.Fatalf("GET pinned manifest %s: %d %v", m.Digest, status, err)
		}
		ds := []string{man.Config.Digest}
		for _, l := range man.Layers {
			ds = append(ds, l.Digest)
		}
		for _, d := range ds {
			if status, _, _ := p.call(t, "HEAD", "/v2/env/blobs/"+d, nil); status != 200 {
				t.Errorf("pinned image: blob %s answers %d", d, status)
			}
			pulled++
		}
	}
	for _, l := range php.Layers {
		if !snapHas(t, p, l.Digest.String()) {
			t.Errorf("old php layer %s is not kept", l.Digest)
		}
	}
	t.Logf("pinned image: %d blobs pulled after the rebuild", pulled)
}

// snapHas reports whether the catalog keeps d as a layer blob.
func snapHas(t *testing.T, p *published, d string) bool {
	t.Helper()
	snap, err := p.cat.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return snap.HasLayer(digest.Digest(d))
}
