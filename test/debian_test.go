package test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/envreg/envreg/packages"
)

// bundledVersions returns the semver cores of the bundled recipes by
// package name, e.g. php: [8.2.32 8.2.36]. The tests assert relations
// against them (newest patch wins, a pin gets its version) instead of
// literal versions, which the archive may move.
func bundledVersions(t *testing.T) map[string][]*semver.Version {
	t.Helper()
	recipes, err := packages.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*semver.Version{}
	for _, rc := range recipes {
		v, err := semver.StrictNewVersion(rc.Version)
		if err != nil {
			t.Fatalf("bundled recipe %s: version %q: %v", rc.Name, rc.Version, err)
		}
		core, _ := v.SetMetadata("")
		out[rc.Name] = append(out[rc.Name], &core)
	}
	return out
}

func newest(vs []*semver.Version) *semver.Version {
	n := vs[0]
	for _, v := range vs[1:] {
		if v.GreaterThan(n) {
			n = v
		}
	}
	return n
}

// needDebian skips (locally) or fails (CI=true) when the machine cannot
// build Debian layers: apt-get, apt-cache and dpkg-deb are required.
func needDebian(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: the bundled Debian packages cannot be published", bin)
			}
			t.Skipf("%s not found: skipping the real-package tests", bin)
		}
	}
}

// TestBundledPackages seeds a registry with the bundled recipes (real
// Debian packages for amd64 and arm64), then proves with the Docker engine
// that composed environments run, that pins and newest-patch resolution
// reach the programs, that a second pull downloads only the php layer, and
// that scanners find the dpkg records.
func TestBundledPackages(t *testing.T) {
	needDebian(t)
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, data, "--seed", "../packages")
	versions := bundledVersions(t)
	php, node, gm := versions["php"], newest(versions["nodejs"]), newest(versions["graphicsmagick"])
	if len(php) < 2 {
		t.Fatalf("bundled php versions %v: want two patch versions of one minor", php)
	}
	oldest := php[0]
	for _, v := range php {
		if v.LessThan(oldest) {
			oldest = v
		}
	}
	phpTag := fmt.Sprintf("php-%d.%d", newest(php).Major(), newest(php).Minor())
	nodeTag := fmt.Sprintf("node-%d", node.Major())

	// A second start with the same recipes publishes nothing.
	gen := generation(t, data)
	s.stop(t)
	s = startServer(t, data, "--seed", "../packages")
	if g := generation(t, data); g != gen {
		t.Errorf("generation %s -> %s after restarting with the same --seed: it published again", gen, g)
	}

	t.Run("scanners read dpkg records", func(t *testing.T) {
		crane := tool(t, "crane")
		dir := filepath.Join(t.TempDir(), "oci")
		runTool(t, crane, "pull", "--insecure", "--platform", "linux/arm64", "--format", "oci", s.host+"/env:"+phpTag+"_node_gm", dir)
		records := dpkgRecords(t, dir)
		for pkg, want := range map[string]string{
			fmt.Sprintf("php%d.%d-cli", newest(php).Major(), newest(php).Minor()): newest(php).String() + "-",
			"nodejs":         node.String() + "+",
			"graphicsmagick": gm.String(),
		} {
			got, ok := records[pkg]
			if !ok {
				t.Errorf("no /var/lib/dpkg/status.d record for %s (have %d records)", pkg, len(records))
				continue
			}
			if !strings.Contains(got, want) {
				t.Errorf("%s: Debian version %q does not carry %s", pkg, got, want)
			}
		}
	})

	docker := dockerEngine(t)
	// The containers need no network: --network none keeps them off the
	// engine's bridge, which a CI machine may not have.
	run := func(t *testing.T, tag string, cmd ...string) string {
		t.Helper()
		image := s.host + "/env:" + tag
		t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", image).Run() })
		runTool(t, docker, "pull", "-q", image)
		return strings.TrimSpace(runTool(t, docker, append([]string{"run", "--rm", "--network", "none", image}, cmd...)...))
	}
	t.Run("docker run", func(t *testing.T) {
		tag := phpTag + "_" + nodeTag + "_gm"
		out := run(t, tag, "sh", "-c", `php -r 'echo PHP_VERSION;'; echo; node -v; gm version | head -n 1`)
		lines := strings.Split(out, "\n")
		if len(lines) != 3 {
			t.Fatalf("docker run %s printed %q", tag, out)
		}
		if lines[0] != newest(php).String() {
			t.Errorf("%s: php %s, want the newest patch %s", tag, lines[0], newest(php))
		}
		if lines[1] != "v"+node.String() {
			t.Errorf("%s: node %s, want v%s", tag, lines[1], node)
		}
		if !strings.HasPrefix(lines[2], "GraphicsMagick "+gm.String()) {
			t.Errorf("%s: gm version %q, want GraphicsMagick %s", tag, lines[2], gm)
		}
		if got := run(t, "php-"+oldest.String(), "php", "-r", "echo PHP_VERSION;"); got != oldest.String() {
			t.Errorf("php-%s runs php %s", oldest, got)
		}
	})
	t.Run("second pull fetches only php", func(t *testing.T) {
		checkOnlyChangedLayerTransferred(t, docker, s, "php-"+oldest.String()+"_"+nodeTag, phpTag+"_"+nodeTag)
	})
}

func generation(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "catalog", "GENERATION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dpkgRecords reads every layer of the single image in an OCI layout and
// returns Package -> Version from /var/lib/dpkg/status.d/*, the distroless
// convention syft, trivy and grype read.
func dpkgRecords(t *testing.T, dir string) map[string]string {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("layout index: %v, %d manifests", err, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]string{}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(hdr.Name, "./")
			if !strings.HasPrefix(name, "var/lib/dpkg/status.d/") || strings.HasSuffix(name, ".md5sums") || hdr.Typeflag != tar.TypeReg {
				continue
			}
			var pkg, version string
			sc := bufio.NewScanner(tr)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "Package: "); ok {
					pkg = v
				}
				if v, ok := strings.CutPrefix(sc.Text(), "Version: "); ok {
					version = v
				}
			}
			if pkg != "" {
				records[pkg] = version
			}
		}
		rc.Close()
	}
	return records
}
