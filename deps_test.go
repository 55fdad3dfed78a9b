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
	domain := []string{"./catalog", "./resolver", "./manifestgen", "./layerstore", "./packages", "./maintenance"}
	forbidden := []string{"net/http", "github.com/gorilla/", "github.com/redis/", "github.com/envreg/envreg/server",
		"github.com/envreg/envreg/catalog/fsstore", "github.com/envreg/envreg/layerstore/fs"}
	for _, pkg := range domain {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %d packages; expected its dependency graph", pkg, len(deps))
		}
		for _, dep := range deps {
			for _, bad := range forbidden {
				if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s; domain packages must not import %s", pkg, dep, bad)
				}
			}
		}
	}
}
