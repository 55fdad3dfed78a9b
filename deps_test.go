package envreg_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDomainDependencies keeps the domain packages free of HTTP and of
// storage clients: the HTTP layer and the backends depend on the domain,
// never the reverse (ggcr's depcheck).
func TestDomainDependencies(t *testing.T) {
	domain := []string{"./catalog", "./resolver", "./manifestgen", "./layerstore", "./layerstore/uploads", "./packages", "./packages/layer", "./packages/ingest", "./maintenance"}
	forbidden := []string{"net/http", "github.com/gorilla/", "github.com/redis/", "github.com/envreg/envreg/server",
		"github.com/envreg/envreg/catalog/fsstore", "github.com/envreg/envreg/layerstore/fs"}
	for _, pkg := range domain {
		for _, dep := range goListDeps(t, pkg) {
			for _, bad := range forbidden {
				if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s; domain packages must not import %s", pkg, dep, bad)
				}
			}
		}
	}
}

// TestPackagesCutByConcept keeps the three concerns of package layers
// apart (issue 16): the registry links layer checking and push
// ingestion, never the publishing job (package packages: recipes, and
// apt through packages/internal/debian); ingestion does not import the
// publishing job either; and layer building is pure tar code that
// imports no other envreg package.
func TestPackagesCutByConcept(t *testing.T) {
	const mod = "github.com/envreg/envreg/"
	for _, pkg := range []string{"./server/registry", "./packages/ingest"} {
		for _, dep := range goListDeps(t, pkg) {
			if dep == mod+"packages" || strings.HasPrefix(dep, mod+"packages/internal/") {
				t.Errorf("%s depends on %s; only cmd/envreg (and tests) may link the publishing job", pkg, dep)
			}
		}
	}
	for _, dep := range goListDeps(t, "./packages/layer") {
		if strings.HasPrefix(dep, mod) && dep != mod+"packages/layer" {
			t.Errorf("./packages/layer depends on %s; layer building imports no other envreg package", dep)
		}
	}
}

// goListDeps lists pkg and every package it depends on, directly or not.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps %s listed %d packages; expected its dependency graph", pkg, len(deps))
	}
	return deps
}

// TestServerDependsOnPorts keeps the HTTP layer on the ports: the server
// and its handlers receive the catalog, blob store and upload sessions
// from cmd/envreg and never name a backend.
func TestServerDependsOnPorts(t *testing.T) {
	backends := []string{"catalog/fsstore", "catalog/redisstore", "layerstore/fs", "layerstore/s3", "layerstore/uploads/disk"}
	out, err := exec.Command("go", "list", "-deps", "./server/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./server/...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/envreg/envreg/layerstore/uploads") {
		t.Fatalf("go list -deps ./server/... does not list the uploads port; the check would prove nothing:\n%s", out)
	}
	for _, b := range backends {
		if slices.Contains(deps, "github.com/envreg/envreg/"+b) {
			t.Errorf("./server/... depends on the backend %s; it must receive it through a port", b)
		}
	}
}
