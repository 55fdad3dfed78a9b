package test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.yaml.in/yaml/v3"
)

// The OCI distribution-spec conformance suite, pinned.
//
// The suite is its own Go module inside the distribution-spec repository.
// Upstream tags only the repository root (v1.1.0, v1.1.1, ...), never
// "conformance/vX.Y.Z", so the module proxy has no semver version of this
// module: "go list -m -versions" lists none and @latest resolves to a
// pseudo-version of the main branch. We pin that pseudo-version (the newest
// on the proxy when this was written) so every run tests against the same
// checks; bump it deliberately.
//
// The suite is built from a copy of the module in a temporary directory as
// its own main module, so it never becomes a dependency of envreg's go.mod.
const (
	conformanceModule  = "github.com/opencontainers/distribution-spec/conformance"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
)

// conformanceMustPass are the API checks that the pull-only run has to
// exercise and pass. The suite's overall verdict alone is not enough: it
// is "Pass" as soon as one check passes and none fails, so a run that
// silently ignored the read-only inputs would still pass.
var conformanceMustPass = []string{
	"Ping",
	"Manifest get by tag",
	"Manifest get by digest",
	"Manifest head by tag",
	"Manifest head by digest",
	"Blob get",
	"Blob head",
	"Tag listing",
	"Referrers",
}

// TestConformance runs the OCI distribution-spec conformance suite against
// "envreg serve" twice, from one build of the suite:
//
//   - "ordinary": every workflow (pull, push, content discovery, content
//     management) with every data type the suite has, sha512 and the
//     referrers API included, on an ordinary (pushed-to) repository, with
//     the spec version "dev" defaults (upload cancel, digest headers and
//     the tag query parameter tested too). Every API and data check must
//     pass.
//   - "composed": the pull workflow against a composed (virtual) tag of the
//     stack "env", given as read-only inputs: the tag, the digests of the
//     index and of each platform manifest it names, and the digests of
//     those manifests' config and layer blobs. For read-only inputs the
//     suite checks status codes, digests and empty HEAD bodies, not
//     content, Content-Type or Content-Length; the other end-to-end tests
//     check those for composed images.
func TestConformance(t *testing.T) {
	start := time.Now()
	bin := buildConformance(t)
	built := time.Now()

	s := startServer(t, publishAll(t))
	ready := time.Now()

	t.Run("ordinary", func(t *testing.T) {
		runConformance(t, bin, conformanceFullEnv, map[string]string{
			"OCI_REGISTRY": s.host,
			"OCI_REPO1":    "conformance/repo1",
			"OCI_REPO2":    "conformance/repo2",
		}, nil, true)
		// Whatever the suite pushed and deleted, the store is consistent:
		// every stored manifest's blobs exist and match their digests.
		if out, errOut, err := envregResult(t, "verify", "--data", s.data); err != nil {
			t.Errorf("envreg verify after the conformance run: %v\n%s\n%s", err, out, errOut)
		}
		// gc collects what the suite deleted and nothing else: the store
		// still verifies, and the composed tag still pulls.
		if out, errOut, err := envregResult(t, "gc", "--data", s.data, "--grace", "0"); err != nil {
			t.Errorf("envreg gc after the conformance run: %v\n%s\n%s", err, out, errOut)
		} else {
			t.Logf("gc after the conformance run: %s", out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
		}
		if out, errOut, err := envregResult(t, "verify", "--data", s.data); err != nil {
			t.Errorf("envreg verify after gc: %v\n%s\n%s", err, out, errOut)
		}
	})
	full := time.Now()

	t.Run("composed", func(t *testing.T) {
		// A composed tag that tags/list also lists (one per package
		// version), so the tag-listing checks apply.
		const repo, tag = "env", "php-8.2.36"
		manifests, blobs := existingContent(t, s, repo, tag)
		runConformance(t, bin, conformanceEnv, map[string]string{
			"OCI_REGISTRY": s.host,
			"OCI_REPO1":    repo,
			"OCI_REPO2":    repo, // used only by blob mount, a push API
			// The read-only inputs: every request goes to OCI_REPO1.
			"OCI_RO_DATA_TAGS":      tag,
			"OCI_RO_DATA_MANIFESTS": strings.Join(manifests, " "),
			"OCI_RO_DATA_BLOBS":     strings.Join(blobs, " "),
		}, conformanceMustPass, false)
	})
	done := time.Now()
	t.Logf("timing: build suite %s, publish fixtures + start server %s, ordinary run %s, composed run %s, total %s",
		built.Sub(start).Round(time.Millisecond), ready.Sub(built).Round(time.Millisecond),
		full.Sub(ready).Round(time.Millisecond), done.Sub(full).Round(time.Millisecond), done.Sub(start).Round(time.Millisecond))
}

// TestConformanceReplicas runs every workflow of the suite on an ordinary
// repository against two replicas on one Redis and one S3 server behind a
// round-robin proxy, a load balancer without session affinity: each
// request goes to the other replica than the one before, so chunked
// uploads, mounts, manifests and tags written on one replica are read and
// continued on the other. Every check must pass, and upload sessions must
// have hopped between the replicas.
func TestConformanceReplicas(t *testing.T) {
	bin := buildConformance(t)
	rs := sharedReplicas(t, "conformance", 2, false)
	rr := newRoundRobin(t, rs...)
	runConformance(t, bin, conformanceFullEnv, map[string]string{
		"OCI_REGISTRY": rr.host,
		"OCI_REPO1":    "conformance/repo1",
		"OCI_REPO2":    "conformance/repo2",
	}, nil, true)
	hopped, all := rr.hopped()
	t.Logf("%d of %d upload sessions were served by both replicas", hopped, all)
	if hopped == 0 {
		t.Error("no upload session was served by both replicas: the run proves nothing about affinity")
	}
	for _, s := range rs {
		noLocalUploads(t, s)
	}
}

// skipOrFail skips locally and fails in CI (CI=true), like tool().
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// goEnv is the environment for go commands that work on the suite's module:
// outside any workspace, free to record checksums in the copy's go.sum.
func goEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
}

// goCmd runs a go command in dir and returns stdout, stderr and the error.
func goCmd(t *testing.T, dir string, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// buildConformance fetches the pinned suite through the module proxy and
// builds it with "go build" (the suite's documented way; "go test -c"
// builds the same code behind a deprecated TestLegacy wrapper). It skips
// locally, and fails in CI, when the module or its dependencies cannot be
// fetched.
func buildConformance(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	mod := conformanceModule + "@" + conformanceVersion
	out, errOut, err := goCmd(t, work, 3*time.Minute, "mod", "download", "-json", mod)
	var dl struct{ Dir, Error string }
	if jerr := json.Unmarshal([]byte(out), &dl); jerr != nil && err == nil {
		t.Fatalf("go mod download -json %s: %v\n%s", mod, jerr, out)
	}
	if err != nil || dl.Error != "" || dl.Dir == "" {
		skipOrFail(t, "cannot fetch the conformance suite %s (no access to the module proxy?): %v %s %s",
			mod, err, dl.Error, strings.TrimSpace(errOut))
	}

	// The module cache is read-only; build in a writable copy that is its
	// own main module.
	src := filepath.Join(work, "src")
	if err := os.CopyFS(src, os.DirFS(dl.Dir)); err != nil {
		t.Fatal(err)
	}
	patchConformance(t, src)
	if _, errOut, err := goCmd(t, src, 3*time.Minute, "mod", "download"); err != nil {
		skipOrFail(t, "cannot fetch the dependencies of %s (no access to the module proxy?): %v\n%s", mod, err, errOut)
	}
	bin := filepath.Join(work, "conformance")
	// main.Version is what the reports show as the conformance commit.
	if _, errOut, err := goCmd(t, src, 5*time.Minute, "build",
		"-ldflags", "-X main.Version="+conformanceVersion, "-o", bin, "."); err != nil {
		t.Fatalf("building %s: %v\n%s", mod, err, errOut)
	}
	return bin
}

// conformancePatches work around bugs of the pinned suite. They touch only
// how results are written, never what is checked or how it is judged.
var conformancePatches = []struct{ file, why, old, new string }{{
	file: "run.go",
	why: "with OCI_API_PUSH=false, TestBlobAPIs records a status for its " +
		"test data (\"blobs-sha256\", \"blobs-sha512\") before creating the " +
		"data, so ReportResultsYAML dereferences a nil *testData and the " +
		"suite panics (exit 2) after printing its summary and before writing " +
		"results.yaml, junit.xml and report.html; name such entries by key",
	old: "\tfor k, v := range r.State.DataStatus {\n" +
		"\t\tresults.Data[r.State.Data[k].name] = v\n" +
		"\t}\n",
	new: "\tfor k, v := range r.State.DataStatus {\n" +
		"\t\tname := k\n" +
		"\t\tif td := r.State.Data[k]; td != nil {\n" +
		"\t\t\tname = td.name\n" +
		"\t\t}\n" +
		"\t\tresults.Data[name] = v\n" +
		"\t}\n",
}}

// patchConformance applies conformancePatches to the copy in src. A patch
// that no longer applies fails the test: after a version bump, check
// whether upstream fixed the bug and drop the patch.
func patchConformance(t *testing.T, src string) {
	t.Helper()
	for _, p := range conformancePatches {
		path := filepath.Join(src, p.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), p.old); n != 1 {
			t.Fatalf("patch for %s of %s@%s matches %d times, want 1 (fixed upstream? %s)",
				p.file, conformanceModule, conformanceVersion, n, p.why)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), p.old, p.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// existingContent returns the digests the suite pulls: the manifest that
// repo:tag names (for the suite's Accept header, an index) and each
// platform manifest in it, and every config and layer blob of those.
func existingContent(t *testing.T, s *server, repo, tag string) (manifests, blobs []string) {
	t.Helper()
	// The suite sends both media types as separate Accept values.
	getManifest := func(ref string) (string, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url("/v2/"+repo+"/manifests/"+ref), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Accept", ocispec.MediaTypeImageIndex)
		req.Header.Add("Accept", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		if _, err := body.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET manifest %s: %d\n%s", ref, resp.StatusCode, body.Bytes())
		}
		d := digest.FromBytes(body.Bytes())
		if h := resp.Header.Get("Docker-Content-Digest"); h != d.String() {
			t.Fatalf("GET manifest %s: Docker-Content-Digest %q, body digest %s", ref, h, d)
		}
		return d.String(), body.Bytes()
	}

	indexDigest, body := getManifest(tag)
	var index ocispec.Index
	if err := json.Unmarshal(body, &index); err != nil || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) == 0 {
		t.Fatalf("%s:%s is not an image index (%v):\n%s", repo, tag, err, body)
	}
	manifests = append(manifests, indexDigest)
	for _, desc := range index.Manifests {
		d, body := getManifest(desc.Digest.String())
		if d != desc.Digest.String() {
			t.Fatalf("GET manifest %s served bytes with digest %s", desc.Digest, d)
		}
		manifests = append(manifests, d)
		var m ocispec.Manifest
		if err := json.Unmarshal(body, &m); err != nil || m.MediaType != ocispec.MediaTypeImageManifest || len(m.Layers) == 0 {
			t.Fatalf("manifest %s is not an image manifest with layers (%v):\n%s", d, err, body)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if !slices.Contains(blobs, b.Digest.String()) {
				blobs = append(blobs, b.Digest.String())
			}
		}
	}
	return manifests, blobs
}

// conformanceFullEnv is the suite's configuration for the run on an
// ordinary repository: everything on (the "dev" version's defaults enable
// upload cancel, the digest headers and the tag query parameter on top of
// 1.1's) and every data type on by default.
var conformanceFullEnv = map[string]string{
	"OCI_CONFIGURATION": "",
	"OCI_VERSION":       "dev",
	"OCI_TLS":           "disabled",
	"OCI_LOG":           "warn",
}

// conformanceEnv is the suite's configuration for a pull-only registry.
// The suite reads OCI_* variables (see its README and config.go); the
// legacy names of conformance v1.0/v1.1 map as noted.
var conformanceEnv = map[string]string{
	"OCI_CONFIGURATION": "", // set but empty: no oci-conformance.yaml is read
	"OCI_VERSION":       "1.1",
	"OCI_TLS":           "disabled", // http:// (legacy OCI_ROOT_URL=http://...)
	"OCI_LOG":           "warn",     // legacy OCI_DEBUG=0
	// The pull workflow (legacy OCI_TEST_PULL=1) and the registry ping.
	"OCI_API_PING": "true",
	"OCI_API_PULL": "true",
	// No push workflow (legacy OCI_TEST_PUSH=0): envreg answers every push
	// 405 UNSUPPORTED, and the suite then generates no content of its own.
	// OCI_API_MANIFESTS_DIGEST_HEADER stays at its 1.1 default (false): for
	// read-only inputs the suite checks the header on a response it never
	// captured and always reports it missing.
	"OCI_API_PUSH":                  "false",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS": "false",
	"OCI_API_BLOBS_UPLOAD_CANCEL":   "false",
	"OCI_API_MANIFESTS_TAG_PARAM":   "false",
	// Content discovery (legacy OCI_TEST_CONTENT_DISCOVERY=1): tags/list with
	// pagination, and the referrers API (an empty index for composed images).
	// The tag is one that tags/list lists: a composed combination such as
	// php-8.2_node-20 is one of unboundedly many and is not listed.
	"OCI_API_TAGS_LIST": "true",
	"OCI_API_REFERRER":  "true",
	// No content management (legacy OCI_TEST_CONTENT_MANAGEMENT=0).
	"OCI_API_TAGS_DELETE":      "false",
	"OCI_API_MANIFESTS_DELETE": "false",
	"OCI_API_BLOBS_DELETE":     "false",
}

// runConformance runs the suite binary with base plus extra and fails the
// test, printing the suite's report and each failed check, unless it
// passes and the API checks in mustPass all ran and passed; with all, every
// API and data check it reports must have passed.
func runConformance(t *testing.T, bin string, base, extra map[string]string, mustPass []string, all bool) {
	t.Helper()
	dir := t.TempDir() // working directory: holds no oci-conformance.yaml
	results := filepath.Join(dir, "results")

	// Start from our environment without any OCI_* variable, so that a
	// developer's settings (or legacy names) cannot change the run.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") {
			env = append(env, kv)
		}
	}
	for k, v := range base {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	env = append(env, "OCI_RESULTS_DIR="+results) // legacy OCI_REPORT_DIR

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	// The suite exits 0 without running anything when its configuration
	// does not load, so a zero exit alone proves nothing: it must also
	// have written results.yaml with a passing verdict.
	var problems []string
	if runErr != nil {
		problems = append(problems, fmt.Sprintf("conformance suite exited with %v", runErr))
	}
	var res struct {
		APIs map[string]string `yaml:"apis"`
		Data map[string]string `yaml:"data"`
	}
	if b, err := os.ReadFile(filepath.Join(results, "results.yaml")); err != nil {
		problems = append(problems, fmt.Sprintf("no results.yaml: %v", err))
	} else if err := yaml.Unmarshal(b, &res); err != nil {
		problems = append(problems, fmt.Sprintf("parsing results.yaml: %v", err))
	} else {
		for _, api := range mustPass {
			if got := res.APIs[api]; got != "Pass" {
				problems = append(problems, fmt.Sprintf("API %q: %s, want Pass", api, got))
			}
		}
		if all {
			for _, k := range slices.Sorted(maps.Keys(res.APIs)) {
				if res.APIs[k] != "Pass" {
					problems = append(problems, fmt.Sprintf("API %q: %s, want Pass", k, res.APIs[k]))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(res.Data)) {
				if res.Data[k] != "Pass" && (res.Data[k] != "Disabled" || !conformanceDataOff[k]) {
					problems = append(problems, fmt.Sprintf("data %q: %s, want Pass", k, res.Data[k]))
				}
			}
			if len(res.APIs) < conformanceAPIs {
				problems = append(problems, fmt.Sprintf("only %d API checks reported, want all %d", len(res.APIs), conformanceAPIs))
			}
		} else if got := res.Data["Read Only Inputs"]; got != "Pass" {
			problems = append(problems, fmt.Sprintf("data %q: %s, want Pass", "Read Only Inputs", got))
		}
	}
	if !strings.Contains(stdout.String(), "OCI Conformance Result: Pass\n") {
		problems = append(problems, "the suite's verdict is not Pass")
	}
	if len(problems) == 0 {
		t.Logf("conformance suite %s@%s passed (%s); API results:\n%s", conformanceModule, conformanceVersion,
			junitCounts(t, filepath.Join(results, "junit.xml")), apiSummary(res.APIs))
		return
	}
	t.Errorf("conformance:\n  %s", strings.Join(problems, "\n  "))
	t.Logf("suite stdout:\n%s", stdout.String())
	t.Logf("suite stderr:\n%s", stderr.String())
	for _, f := range junitFailures(t, filepath.Join(results, "junit.xml")) {
		t.Log(f)
	}
}

// conformanceDataOff are the suite's data types that are off by default
// in every spec version: sparse manifests (an index whose children were
// never pushed) are refused by envreg with MANIFEST_UNKNOWN, which the spec
// allows ("the registry MAY reject a manifest ... that references content
// it does not have"), so every index it serves is pullable whole.
var conformanceDataOff = map[string]bool{"Sparse Manifests": true}

// conformanceAPIs is how many API kinds the pinned suite reports
// (stateAPIMax in its state.go).
const conformanceAPIs = 28

// junitCounts counts the checks of the suite's junit report by status.
func junitCounts(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("no junit report: %v", err)
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Status string `xml:"status,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &report); err != nil {
		return fmt.Sprintf("parsing junit report: %v", err)
	}
	n := map[string]int{}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			n[c.Status]++
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

func apiSummary(apis map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(apis)) {
		fmt.Fprintf(&b, "  %-30s %s\n", k, apis[k])
	}
	return b.String()
}

// junitFailures returns, for each failed or errored check in the suite's
// junit report, its name, its errors and the requests and responses it
// made.
func junitFailures(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("no junit report: %v", err)}
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Name      string `xml:"name,attr"`
				Status    string `xml:"status,attr"`
				SystemOut string `xml:"system-out"`
				SystemErr string `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &report); err != nil {
		return []string{fmt.Sprintf("parsing junit report: %v", err)}
	}
	var out []string
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			if c.Status == "passed" || c.Status == "skipped" {
				continue
			}
			out = append(out, fmt.Sprintf("FAILED CHECK %s (%s)\nerrors:\n%s\nrequests and responses:\n%s",
				c.Name, c.Status, strings.TrimSpace(c.SystemOut), strings.TrimSpace(c.SystemErr)))
		}
	}
	return out
}
