package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/server/api"
)

// postJSON posts body to the server and returns the status, headers and
// response body.
func (s *server) postJSON(t *testing.T, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, buf.Bytes()
}

// TestAPIResolveAndPull drives the API of the real binary: resolve the
// issue's example, pull the pinned reference with ggcr and validate every
// blob, ask again "from" it, and check errors carry the request id that
// the server's log names.
func TestAPIResolveAndPull(t *testing.T) {
	s := startServer(t, publishAll(t))

	resp, body := s.postJSON(t, "/api/v1/stacks/env/resolve",
		`{"requirements": {"php": "^8.2", "graphicsmagick": "*", "nodejs": "^20"}, "platforms": ["linux/amd64"]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("resolve: %d\n%s", resp.StatusCode, body)
	}
	var out api.ResolveResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	want := []api.PackageVersion{{Name: "base", Version: "12.0.0"}, {Name: "graphicsmagick", Version: "1.3.42"}, {Name: "nodejs", Version: "20.12.2"}, {Name: "php", Version: "8.2.36"}}
	if !slices.Equal(out.Packages, want) || out.Reference != s.host+"/env@"+out.Digest || len(out.Platforms) != 1 {
		t.Fatalf("resolution %+v", out)
	}

	// The pinned reference is a complete, valid image index.
	r, err := name.ParseReference(out.Reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", out.Reference, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validating %s: %v", out.Reference, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[0].Digest.String() != out.Platforms[0].Digest {
		t.Errorf("index manifests %+v; reported linux/amd64 %s", im.Manifests, out.Platforms[0].Digest)
	}
	// So is the canonical tag, and it names the same index.
	if out.Tag == "" || digestOf(t, s, "env:"+out.Tag).String() != out.Digest {
		t.Errorf("tag %q (%s) does not name %s", out.Tag, out.TagOmitted, out.Digest)
	}

	// Moving from an older environment: only php's layer is new.
	old := s.resolveAPI(t, `{"requirements": {"php": "8.2.32", "graphicsmagick": "*", "nodejs": "^20"}}`)
	next := s.resolveAPI(t, `{"requirements": {"php": "^8.2", "graphicsmagick": "*", "nodejs": "^20"}, "from": "`+old.Digest+`", "policy": "patch"}`)
	if next.Digest != out.Digest || next.From == nil || len(next.From.Changes) != 1 || next.From.Changes[0] != (api.Change{Package: "php", Change: "upgraded", From: "8.2.32", To: "8.2.36"}) {
		t.Fatalf("from: %+v", next.From)
	}
	for _, p := range next.Platforms {
		if p.Download == nil || p.Download.Layers != 1 || p.Download.Size != p.Layers[3].Size {
			t.Errorf("%s: download %+v, want php's layer only (%d bytes)", p.Platform, p.Download, p.Layers[3].Size)
		}
	}

	// Errors: JSON with the request id, which the log names too.
	resp, body = s.postJSON(t, "/api/v1/stacks/env/resolve", `{"requirements": {"php": "^9"}}`)
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 422 || e.Code != "UNSATISFIABLE" ||
		e.Message != "no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)" {
		t.Fatalf("unsatisfiable: %d %s", resp.StatusCode, body)
	}
	if e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("request id %q in the body, %q in the header", e.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if !s.waitLog(t, `msg="api request failed"`+" method=POST path=/api/v1/stacks/env/resolve status=422 code=UNSATISFIABLE request_id="+e.RequestID) {
		t.Errorf("the log does not name the failed request %s:\n%s", e.RequestID, s.logs())
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"requirements": `, 400},
		{`{"requirements": {"php": "^8"}, "extra": 1}`, 400},
		{`{"requirements": {"php": "` + strings.Repeat("x", api.MaxBodyBytes) + `"}}`, 413},
	} {
		resp, body := s.postJSON(t, "/api/v1/stacks/env/resolve", tc.body)
		if resp.StatusCode != tc.status || !json.Valid(body) {
			t.Errorf("%.40s…: %d %s, want %d", tc.body, resp.StatusCode, body, tc.status)
		}
	}
	if resp, body := s.postJSON(t, "/api/v1/stacks/nope/resolve", `{}`); resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"STACK_UNKNOWN"`) {
		t.Errorf("unknown stack: %d %s", resp.StatusCode, body)
	}

	// The catalog endpoints and the document.
	for path, has := range map[string]string{
		"/api/v1/stacks":       `"name":"env"`,
		"/api/v1/packages":     `"name":"nodejs","latest":"20.12.2","versions":["20.12.2","20.11.1","18.20.4"]`,
		"/api/v1/packages/php": `"version":"8.2.36","published":"`,
		"/api/v1/openapi.yaml": "/api/v1/stacks/{stack}/resolve:",
	} {
		resp, body := s.get(t, path, "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), has) {
			t.Errorf("GET %s: %d, want %s in\n%.300s", path, resp.StatusCode, has, body)
		}
	}
}

func (s *server) resolveAPI(t *testing.T, body string) *api.ResolveResponse {
	t.Helper()
	resp, data := s.postJSON(t, "/api/v1/stacks/env/resolve", body)
	if resp.StatusCode != 200 {
		t.Fatalf("resolve %s: %d\n%s", body, resp.StatusCode, data)
	}
	var out api.ResolveResponse
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestAPICLIParity: "envreg resolve --registry URL" prints what the local
// form prints, with the server's host in the reference, and fails the same
// way.
func TestAPICLIParity(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data)
	reqs := []string{"php=^8.2", "graphicsmagick=*", "nodejs=^20"}
	remoteArgs := func(extra ...string) []string {
		return append(append([]string{"resolve", "--registry", "http://" + s.host, "--stack", "env"}, extra...), reqs...)
	}
	localArgs := func(extra ...string) []string {
		return append(append([]string{"resolve", "--data", data, "--stack", "env"}, extra...), reqs...)
	}

	remoteOut, localOut := envreg(t, remoteArgs()...), envreg(t, localArgs()...)
	rFirst, rRest, _ := strings.Cut(remoteOut, "\n")
	lFirst, lRest, _ := strings.Cut(localOut, "\n")
	if rFirst != s.host+"/"+lFirst || !strings.HasPrefix(lFirst, "env@sha256:") {
		t.Errorf("reference %q, local %q", rFirst, lFirst)
	}
	if rRest != lRest || !strings.Contains(rRest, "php             8.2.36") {
		t.Errorf("tables differ:\n--- registry\n%s\n--- local\n%s", rRest, lRest)
	}

	var remote, local struct {
		Stack, Reference, Digest string
		Packages, Manifests      []map[string]any
	}
	if err := json.Unmarshal([]byte(envreg(t, remoteArgs("--json")...)), &remote); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(envreg(t, localArgs("--json")...)), &local); err != nil {
		t.Fatal(err)
	}
	if remote.Digest != local.Digest || remote.Reference != s.host+"/"+local.Reference ||
		!slices.EqualFunc(remote.Packages, local.Packages, mapsEqual) || !slices.EqualFunc(remote.Manifests, local.Manifests, mapsEqual) || len(remote.Manifests) != 2 {
		t.Errorf("--json differs:\nregistry %+v\nlocal    %+v", remote, local)
	}

	// The tag form.
	rTag := envreg(t, "resolve", "--registry", s.host, "--tag", "php-8.2_gm_node-20")
	if first, _, _ := strings.Cut(rTag, "\n"); first != rFirst {
		t.Errorf("--tag: %q, want %q", first, rFirst)
	}

	// Failures: exit 1 with the same explanation.
	for _, args := range [][]string{
		{"php=^9"},
		{"--stack", "nope", "php"},
		{"ruby=3"},
		{"php=^8", "php=^8.2"},
		{"php="},
	} {
		_, rErr, rCode := envregExit(t, append([]string{"resolve", "--registry", "http://" + s.host}, args...)...)
		_, lErr, lCode := envregExit(t, append([]string{"resolve", "--data", data}, args...)...)
		if rCode != 1 || lCode != 1 || rErr != lErr {
			t.Errorf("%v: registry exit %d %q, local exit %d %q", args, rCode, rErr, lCode, lErr)
		}
	}
	if _, errOut, code := envregExit(t, "resolve", "--registry", s.host, "php=^9"); code != 1 ||
		!strings.Contains(errOut, "envreg resolve: no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)") {
		t.Errorf("unsatisfiable: exit %d %q", code, errOut)
	}
	if _, errOut, code := envregExit(t, "resolve", "--registry", s.host, "--data", data, "php"); code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--registry with --data: exit %d %q", code, errOut)
	}
	if _, errOut, code := envregExit(t, "resolve", "--registry", "http://127.0.0.1:1", "php"); code != 1 || errOut == "" {
		t.Errorf("unreachable registry: exit %d %q", code, errOut)
	}
	if _, errOut, code := envregExit(t, "resolve", "--data", data, "--registry-user", "u", "php"); code != 2 || !strings.Contains(errOut, "need --registry") {
		t.Errorf("--registry-user without --registry: exit %d %q", code, errOut)
	}
	if _, errOut, code := envregExit(t, "resolve", "--registry", s.host, "--registry-user", "u", "php"); code != 2 || !strings.Contains(errOut, "needs a password") {
		t.Errorf("--registry-user without a password: exit %d %q", code, errOut)
	}
}

func mapsEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// envregExit runs the binary and returns stdout, stderr and the exit code.
func envregExit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, errOut, err := envregResult(t, args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, errOut, 0
	case errors.As(err, &ee):
		return out, errOut, ee.ExitCode()
	}
	t.Fatalf("envreg %s: %v", strings.Join(args, " "), err)
	return "", "", -1
}
