package envreg_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed lists, for every package of the module but cmd/envreg and the
// tests, what it may import besides the standard library: envreg packages
// by their path below the module ("catalog"), others in full. A new import,
// or a new package, fails TestImportsAllowList until it is added here: a
// dependency is a decision, not an accident (go-containerregistry's
// depcheck, as an allow-list). stdForbidden are standard packages the
// domain must not use.
var allowed = map[string][]string{
	"":                {},
	"catalog":         {"layerstore", "github.com/Masterminds/semver/v3", "github.com/opencontainers/go-digest", "go.yaml.in/yaml/v3"},
	"catalog/fsstore": {"catalog", "layerstore", "internal/durable", "github.com/Masterminds/semver/v3", "github.com/opencontainers/go-digest"},
	"catalog/redisstore": {"catalog", "layerstore", "layerstore/uploads", "github.com/Masterminds/semver/v3",
		"github.com/opencontainers/go-digest", "github.com/redis/go-redis/v9"},
	"catalog/catalogtest": {"catalog", "github.com/Masterminds/semver/v3", "github.com/opencontainers/go-digest",
		"github.com/opencontainers/image-spec/specs-go/v1"},
	"internal/durable":     {},
	"internal/testservers": {"github.com/minio/minio-go/v7", "github.com/minio/minio-go/v7/pkg/credentials", "github.com/redis/go-redis/v9"},
	"layerstore":           {"github.com/opencontainers/go-digest"},
	"layerstore/fs":        {"layerstore", "internal/durable", "github.com/opencontainers/go-digest"},
	"layerstore/s3": {"layerstore", "layerstore/uploads", "github.com/minio/minio-go/v7", "github.com/minio/minio-go/v7/pkg/credentials",
		"github.com/minio/minio-go/v7/pkg/s3utils", "github.com/opencontainers/go-digest"},
	"layerstore/layerstoretest":      {"layerstore", "github.com/opencontainers/go-digest"},
	"layerstore/uploads":             {"layerstore", "github.com/opencontainers/go-digest"},
	"layerstore/uploads/disk":        {"layerstore", "layerstore/uploads", "internal/durable", "github.com/opencontainers/go-digest"},
	"layerstore/uploads/uploadstest": {"layerstore", "layerstore/uploads", "github.com/opencontainers/go-digest"},
	"resolver":                       {"catalog", "github.com/Masterminds/semver/v3"},
	"manifestgen": {"catalog", "layerstore", "resolver", "sbom", "github.com/Masterminds/semver/v3", "github.com/opencontainers/go-digest",
		"github.com/opencontainers/image-spec/specs-go", "github.com/opencontainers/image-spec/specs-go/v1"},
	"maintenance": {"catalog", "layerstore", "manifestgen", "sbom", "github.com/Masterminds/semver/v3",
		"github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1"},
	"packages": {"catalog", "layerstore", "packages/layer", "packages/internal/debian", "sbom", "github.com/Masterminds/semver/v3",
		"github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1", "go.yaml.in/yaml/v3"},
	"packages/internal/debian":         {"github.com/Masterminds/semver/v3"},
	"packages/internal/debian/debtest": {},
	"packages/layer":                   {"github.com/klauspost/compress/zstd", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1"},
	"packages/layer/layertest":         {"packages/layer"},
	"packages/ingest":                  {"catalog", "layerstore", "packages/layer", "sbom", "github.com/opencontainers/image-spec/specs-go/v1"},
	// sbom renders SPDX with spdx/tools-golang (the library the SPDX
	// project keeps) instead of writing the JSON by hand.
	"sbom": {"catalog", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go",
		"github.com/opencontainers/image-spec/specs-go/v1", "github.com/spdx/tools-golang/json",
		"github.com/spdx/tools-golang/spdx/v2/common", "github.com/spdx/tools-golang/spdx/v2/v2_3"},
	// sbomtest checks documents in tests as a consumer would: the library's
	// parser and validator, and the SPDX 2.3 JSON schema.
	"sbom/sbomtest": {"sbom", "github.com/santhosh-tekuri/jsonschema/v6", "github.com/spdx/tools-golang/spdx",
		"github.com/spdx/tools-golang/spdxlib"},
	"server": {"catalog", "layerstore", "layerstore/uploads", "manifestgen", "server/api", "server/errcode", "server/registry",
		"github.com/gorilla/mux", "github.com/opencontainers/go-digest", "github.com/prometheus/client_golang/prometheus",
		"github.com/prometheus/client_golang/prometheus/collectors", "github.com/prometheus/client_golang/prometheus/promhttp"},
	"server/api": {"catalog", "manifestgen", "resolver", "sbom", "server/errcode", "server/peer", "server/registry", "github.com/Masterminds/semver/v3",
		"github.com/gorilla/mux", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1"},
	"server/auth":    {"server/peer", "server/registry", "go.yaml.in/yaml/v3", "golang.org/x/crypto/bcrypt"},
	"server/errcode": {"catalog", "layerstore", "manifestgen", "packages/layer", "resolver", "github.com/opencontainers/go-digest"},
	"server/peer":    {},
	"server/registry": {"catalog", "layerstore", "layerstore/uploads", "manifestgen", "packages/ingest", "resolver", "server/errcode",
		"server/peer", "github.com/gorilla/mux", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1"},
}

// domain are the packages that must not speak HTTP (stdForbidden).
var (
	domain       = []string{"catalog", "resolver", "manifestgen", "layerstore", "layerstore/uploads", "packages", "packages/layer", "packages/ingest", "maintenance", "sbom"}
	stdForbidden = []string{"net/http"}
)

// TestImportsAllowList checks every package's direct imports against
// allowed, and the domain's against stdForbidden.
func TestImportsAllowList(t *testing.T) {
	const mod = "github.com/envreg/envreg"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], mod), "/")
		if pkg == "cmd/envreg" || pkg == "test" || strings.HasPrefix(pkg, "test/") || strings.HasPrefix(pkg, "bench") {
			continue
		}
		allow, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %q is not in the allow-list of deps_allow_test.go: add it with what it may import", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			short, inModule := strings.CutPrefix(imp, mod+"/")
			switch {
			case inModule && !slices.Contains(allow, short), !inModule && strings.Contains(strings.Split(imp, "/")[0], ".") && !slices.Contains(allow, imp):
				t.Errorf("%s imports %s, which its allow-list does not name", pkg, imp)
			case slices.Contains(domain, pkg) && slices.Contains(stdForbidden, imp):
				t.Errorf("%s imports %s; the domain does not speak HTTP", pkg, imp)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("checked %d packages; go list found fewer than expected, so the check would prove little", seen)
	}
}
