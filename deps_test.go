package envreg_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainDependencies keeps the domain packages free of HTTP and of
// storage clients: the HTTP layer and the backends depend on the domain,
// never the reverse (ggcr's depcheck).
func TestDomainDependencies(t *testing.T) {
	domain := []string{"./catalog", "./resolver", "./manifestgen", "./layerstore", "./packages", "./packages/layer", "./packages/ingest", "./maintenance"}
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
