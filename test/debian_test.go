package test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/server/api"
)

// catalogVersions returns the versions of every package in the catalog s
// serves (GET /api/v1/packages/NAME): cores by name, e.g. php: [8.2.36
// 8.2.32 8.4.16], and the full version (with build metadata) of a core.
// The bundled recipes name ranges, so these are what the archive offers
// today; the tests assert relations against them (newest patch wins, a pin
// gets its version), never literal versions, which the archive moves.
func catalogVersions(t *testing.T, s *server) (cores map[string][]*semver.Version, full func(name string, core *semver.Version) string) {
	t.Helper()
	resp, body := s.get(t, "/api/v1/packages", "application/json")
	var list api.PackageList
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/v1/packages: %d %v\n%s", resp.StatusCode, err, body)
	}
	cores = map[string][]*semver.Version{}
	fulls := map[string]string{}
	for _, p := range list.Packages {
		resp, body := s.get(t, "/api/v1/packages/"+p.Name, "application/json")
		var detail api.PackageDetail
		if err := json.Unmarshal(body, &detail); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET /api/v1/packages/%s: %d %v\n%s", p.Name, resp.StatusCode, err, body)
		}
		for _, info := range detail.Versions {
			v, err := semver.StrictNewVersion(info.Version)
			if err != nil {
				t.Fatalf("%s %s: %v", p.Name, info.Version, err)
			}
			core, _ := v.SetMetadata("")
			cores[p.Name] = append(cores[p.Name], &core)
			fulls[p.Name+" "+core.String()] = info.Version
		}
	}
	full = func(name string, core *semver.Version) string {
		t.Helper()
		f, ok := fulls[name+" "+core.String()]
		if !ok {
			t.Fatalf("the catalog has no %s %s", name, core)
		}
		return f
	}
	return cores, full
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

// needPatchelf skips (locally) or fails (CI=true) without Debian's
// patchelf, which sets the DT_RPATH of relocated layers.
func needPatchelf(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("patchelf"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("patchelf not found: the bundled Debian packages cannot be published")
		}
		t.Skip("patchelf not found: skipping the real-package tests")
	}
}

// bundledRecipeDir copies the bundled recipes into a directory, each for
// linux/amd64 only except the files named in all (e.g. php/8.2.yaml),
// which keep every platform: a test publishes only the platforms it needs.
func bundledRecipeDir(t *testing.T, all ...string) string {
	t.Helper()
	recipes, err := packages.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, rc := range recipes {
		data, err := fs.ReadFile(packages.BundledFS(), rc.File)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(all, rc.File) {
			data = regexp.MustCompile(`(?m)^platforms: .*$`).ReplaceAll(data, []byte("platforms: [linux/amd64]"))
		}
		file := filepath.Join(dir, filepath.FromSlash(rc.File))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bundledRecipeSubset copies the bundled recipes named by files (with
// every platform) into a directory, each with the replacements edits
// (old → new) made.
func bundledRecipeSubset(t *testing.T, edits map[string]string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		data, err := fs.ReadFile(packages.BundledFS(), f)
		if err != nil {
			t.Fatal(err)
		}
		for old, new := range edits {
			data = bytes.ReplaceAll(data, []byte(old), []byte(new))
		}
		file := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bundledVersion finds the newest version of name in versions with the
// given major.minor or major ("" for the newest).
func bundledVersion(t *testing.T, versions map[string][]*semver.Version, name, minor string) *semver.Version {
	t.Helper()
	var out []*semver.Version
	for _, v := range versions[name] {
		if minor == "" || fmt.Sprintf("%d.%d", v.Major(), v.Minor()) == minor || fmt.Sprint(v.Major()) == minor {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no bundled %s %s (have %v)", name, minor, versions[name])
	}
	return newest(out)
}

// TestBundledPackages publishes the bundled recipes (real Debian packages
// from bookworm, trixie and forky on a trixie base; linux/amd64, and
// php 8.2, nodejs 20 and nodejs 24 for arm64 and arm/v7 too), then proves
// with the Docker engine that every combination of php and nodejs runs
// with gm, composer, FPM and the extensions, and npm with its nodejs; that
// arm64 and arm/v7 layers hold only ELF files of their machine and their
// programs run under emulation; that pins and newest-patch resolution
// reach the programs; that the API and the CLI pin the seed's requirement
// set to one reference; that switching php downloads only the php layer;
// and that scanners find a dpkg record for every package of every layer.
func TestBundledPackages(t *testing.T) {
	needDebian(t)
	needPatchelf(t)
	recipes := bundledRecipeDir(t, "base/recipe.yaml", "php/8.2.yaml", "nodejs/20.yaml", "nodejs/24.yaml")
	data := filepath.Join(t.TempDir(), "data")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), envregBin, "publish", "--data", data, "--log-level", "info", recipes)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("envreg publish: %v\n%s", err, out)
	}
	t.Logf("published in %s:\n%s", time.Since(start).Round(time.Second), grepLines(string(out), "published "))

	// Seeding from the same recipes publishes nothing.
	gen := generation(t, data)
	s := startServer(t, data, "--seed", recipes)
	if g := generation(t, data); g != gen {
		t.Errorf("generation %s -> %s after starting with --seed of the published recipes: it published again", gen, g)
	}
	versions, full := catalogVersions(t, s)
	php82, php84 := bundledVersion(t, versions, "php", "8.2"), bundledVersion(t, versions, "php", "8.4")
	node18, node20 := bundledVersion(t, versions, "nodejs", "18"), bundledVersion(t, versions, "nodejs", "20")
	node24 := bundledVersion(t, versions, "nodejs", "24")
	if len(versions["php"]) < 3 {
		t.Errorf("php versions %v: want the newest 8.2 patches (php/8.2.yaml keeps 3) and 8.4", versions["php"])
	}
	t.Run("arm layers hold their machine's ELF files and dpkg records", func(t *testing.T) {
		base := full("base", newest(versions["base"]))
		checkArmLayers(t, s, "php-8.2_node-20", map[string]string{"base": base,
			"php": full("php", php82), "nodejs": full("nodejs", node20)})
		// nodejs 24 carries forky's glibc and loader in its prefix.
		checkArmLayers(t, s, "node-24", map[string]string{"base": base, "nodejs": full("nodejs", node24)})
	})
	t.Run("arm programs run under emulation", func(t *testing.T) {
		for _, plat := range []string{"linux/arm64", "linux/arm/v7"} {
			t.Run(plat, func(t *testing.T) {
				checkEmulated(t, s, plat, php82, node20, node24)
			})
		}
	})
	t.Run("every combination composes", func(t *testing.T) {
		// The overlap check refuses a composition in which two layers
		// write one path differently: every php, nodejs, gm (none,
		// bookworm's, trixie's) and composer (or none) must compose.
		gms := []string{""}
		for _, v := range versions["graphicsmagick"] {
			gms = append(gms, "_gm-"+v.String())
		}
		n := 0
		for _, php := range []string{"php-8.2", "php-8.4"} {
			for _, node := range []string{"_node-18", "_node-20", "_node-24"} {
				npms := []string{"", "_npm"} // Debian's npm for every nodejs
				for _, gm := range gms {
					for _, composer := range []string{"", "_composer"} {
						for _, npm := range npms {
							tag := php + node + gm + composer + npm
							resp, body := s.get(t, "/v2/env/manifests/"+tag, "application/vnd.oci.image.index.v1+json")
							if resp.StatusCode != 200 {
								t.Errorf("%s: %d %s", tag, resp.StatusCode, body)
							}
							n++
						}
					}
				}
			}
		}
		t.Logf("%d combinations compose", n)
	})
	docker := dockerEngine(t)
	t.Run("docker run", func(t *testing.T) {
		out := runImage(t, docker, s.host+"/env:php-8.2_node-20", `php -r 'echo PHP_VERSION;'; echo; node -v`)
		if want := php82.String() + "\nv" + node20.String(); out != want {
			t.Errorf("php-8.2_node-20 printed %q, want %q", out, want)
		}
		oldest := versions["php"][0]
		for _, v := range versions["php"] {
			if v.LessThan(oldest) {
				oldest = v
			}
		}
		if got := runImage(t, docker, s.host+"/env:php-"+oldest.String(), "php -r 'echo PHP_VERSION;'"); got != oldest.String() {
			t.Errorf("php-%s runs php %s", oldest, got)
		}
	})
	t.Run("every php and nodejs with gm and composer", func(t *testing.T) {
		for _, php := range []*semver.Version{php82, php84} {
			for _, node := range []*semver.Version{node18, node20, node24} {
				checkCombination(t, docker, s, php, node, versions)
			}
		}
	})
	t.Run("npm installs a package with its nodejs", func(t *testing.T) {
		npms := map[uint64]string{}
		for _, node := range []*semver.Version{node18, node20, node24} {
			tag := fmt.Sprintf("node-%d_npm", node.Major())
			// Offline: a local package, installed into a new project,
			// listed, packed, and loaded by node.
			out := runImage(t, docker, s.host+"/env:"+tag, `node -v; npm -v
mkdir -p /tmp/dep /tmp/app && cd /tmp/dep && echo '{"name":"dep","version":"1.0.0","main":"i.js"}' > package.json && echo 'module.exports = 42' > i.js
cd /tmp/app && npm init -y >/dev/null && npm install --offline --no-audit --no-fund ../dep >/dev/null && npm ls --parseable | while read -r p; do echo "${p##*/}"; done && npm pack --silent ../dep && node -e 'console.log(require("dep"))'`)
			lines := strings.Split(out, "\n")
			if len(lines) != 6 {
				t.Errorf("%s printed %q", tag, lines)
				continue
			}
			known := slices.ContainsFunc(versions["npm"], func(v *semver.Version) bool { return v.String() == lines[1] })
			if lines[0] != "v"+node.String() || !known || lines[2] != "app" || lines[3] != "dep" || lines[4] != "dep-1.0.0.tgz" || lines[5] != "42" {
				t.Errorf("%s printed %q, want v%s, an npm of the catalog (%v), app, dep, dep-1.0.0.tgz and 42", tag, lines, node, versions["npm"])
			}
			npms[node.Major()] = lines[1]
		}
		// One npm release serves nodejs 18 and 20 (packages/npm/trixie.yaml
		// carries node-minimatch, which only nodejs 20's layer has);
		// nodejs 24 has forky's.
		if len(npms) == 3 && (npms[18] != npms[20] || npms[24] == npms[20]) {
			t.Errorf("npm by nodejs major: %v, want 18 and 20 alike (trixie's), 24 another (forky's)", npms)
		}
	})
	t.Run("API and CLI pin the seed's requirements alike", func(t *testing.T) {
		ref := checkResolveParity(t, s, data)
		out := runImage(t, docker, ref, `php -r 'echo PHP_VERSION;'; echo; node -v; gm version | head -n 1`)
		// ^8.2 admits 8.4: the newest php wins.
		if !strings.HasPrefix(out, php84.String()+"\nv"+node20.String()+"\nGraphicsMagick ") {
			t.Errorf("%s printed %q", ref, out)
		}
	})
	t.Run("switching php fetches only the php layer", func(t *testing.T) {
		checkOnlyChangedLayerTransferred(t, docker, s, "php-8.2_node-20", "php-8.4_node-20")
	})
}

// runImage pulls image and runs script with sh in it, without network,
// and returns its trimmed output.
func runImage(t *testing.T, docker, image, script string) string {
	t.Helper()
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "--force", image).Run() })
	runTool(t, docker, "pull", "-q", image)
	return strings.TrimSpace(runTool(t, docker, "run", "--rm", "--network", "none", image, "sh", "-c", script))
}

// phpExtensions are the modules every bundled php loads (php -m).
var phpExtensions = []string{"curl", "dom", "gd", "intl", "mbstring", "mysqli", "mysqlnd", "openssl", "PDO", "pdo_mysql",
	"readline", "SimpleXML", "xml", "xmlreader", "xmlwriter", "zip", "Zend OPcache"}

// checkCombination runs php, its extensions, FPM's configuration test,
// node, gm and composer in one container of php, node, gm and composer
// (the newest gm, or bookworm's with php 8.2 and node 18).
func checkCombination(t *testing.T, docker string, s *server, php, node *semver.Version, versions map[string][]*semver.Version) {
	t.Helper()
	minor := fmt.Sprintf("%d.%d", php.Major(), php.Minor())
	gm := newest(versions["graphicsmagick"])
	if minor == "8.2" && node.Major() == 18 {
		gm = bundledVersion(t, versions, "graphicsmagick", "1.3") // the oldest minor is bookworm's
		for _, v := range versions["graphicsmagick"] {
			if v.LessThan(gm) {
				gm = v
			}
		}
	}
	tag := fmt.Sprintf("php-%s_node-%d_gm-%s_composer", minor, node.Major(), gm)
	script := fmt.Sprintf(`php -r 'echo PHP_VERSION, "\n";'; php -m | tr '\n' ,; echo; node -e 'console.log(process.version)';
gm version | head -n 1; COMPOSER_ALLOW_SUPERUSER=1 composer --version 2>/dev/null | head -n 1
if fpm=$(php-fpm%s -t 2>&1); then echo fpm ok; else echo "fpm failed: $fpm" | tr '\n' ' '; fi`, minor)
	lines := strings.Split(runImage(t, docker, s.host+"/env:"+tag, script), "\n")
	if len(lines) != 6 {
		t.Fatalf("%s printed %q", tag, lines)
	}
	if lines[0] != php.String() {
		t.Errorf("%s: php %s, want %s", tag, lines[0], php)
	}
	for _, ext := range phpExtensions {
		if !strings.Contains(","+lines[1], ","+ext+",") {
			t.Errorf("%s: php -m lacks %s: %s", tag, ext, lines[1])
		}
	}
	if lines[2] != "v"+node.String() {
		t.Errorf("%s: node %s, want v%s", tag, lines[2], node)
	}
	if !strings.HasPrefix(lines[3], "GraphicsMagick ") {
		t.Errorf("%s: gm version printed %q", tag, lines[3])
	}
	if !strings.HasPrefix(lines[4], "Composer version ") {
		t.Errorf("%s: composer --version printed %q", tag, lines[4])
	}
	if lines[5] != "fpm ok" {
		t.Errorf("%s: php-fpm%s -t printed %q", tag, minor, lines[5])
	}
}

// checkResolveParity resolves the seed's requirement set through the API
// and the CLI and returns the API's pinned reference.
func checkResolveParity(t *testing.T, s *server, data string) string {
	t.Helper()
	resp, body := s.postJSON(t, "/api/v1/stacks/env/resolve", `{"requirements":{"php":"^8.2","graphicsmagick":"*","nodejs":"^20"}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("resolve: %d\n%s", resp.StatusCode, body)
	}
	var out api.ResolveResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	cli, _, _ := strings.Cut(envreg(t, "resolve", "--data", data, "--stack", "env", "php=^8.2", "graphicsmagick=*", "nodejs=^20"), "\n")
	if s.host+"/"+cli != out.Reference {
		t.Errorf("envreg resolve pins %s, the API %s", cli, out.Reference)
	}
	return out.Reference
}

// checkArmLayers pulls tag for linux/arm64 and linux/arm/v7 and checks
// that every ELF file of every layer is for that machine, and that every
// package each layer's release names (io.envreg.debian.packages) has a
// dpkg record with its exact version.
func checkArmLayers(t *testing.T, s *server, tag string, releases map[string]string) {
	crane := tool(t, "crane")
	for plat, machine := range map[string]elf.Machine{"linux/arm64": elf.EM_AARCH64, "linux/arm/v7": elf.EM_ARM} {
		dir := filepath.Join(t.TempDir(), "oci")
		runTool(t, crane, "pull", "--insecure", "--platform", plat, "--format", "oci", s.host+"/env:"+tag, dir)
		elves, wrong := 0, []string{}
		records := map[string]string{}
		forEachLayerFile(t, dir, func(name string, r io.Reader) {
			if rec, ok := strings.CutPrefix(name, "var/lib/dpkg/status.d/"); ok && !strings.HasSuffix(rec, ".md5sums") {
				pkg, version := readRecord(t, r)
				records[pkg+"="+version] = name
				return
			}
			head := make([]byte, 20)
			if n, _ := io.ReadFull(r, head); n < 20 || string(head[:4]) != "\x7fELF" {
				return
			}
			elves++
			var m elf.Machine
			if head[5] == 1 { // little-endian
				m = elf.Machine(uint16(head[18]) | uint16(head[19])<<8)
			}
			if m != machine {
				wrong = append(wrong, fmt.Sprintf("/%s (%s)", name, m))
			}
		})
		if elves == 0 || len(wrong) > 0 {
			t.Errorf("%s: %d ELF files, %d not %s: %v", plat, elves, len(wrong), machine, wrong)
		}
		t.Logf("%s: %d ELF files, all %s; %d dpkg records", plat, elves, machine, len(records))
		for _, want := range labelPackages(t, s, plat, releases) {
			if records[want] == "" {
				t.Errorf("%s: no dpkg record for %s", plat, want)
			}
		}
	}
}
func generation(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "catalog", "GENERATION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// forEachLayerFile calls fn with every regular file of every layer of the
// single image in an OCI layout (names without "./").
func forEachLayerFile(t *testing.T, dir string, fn func(name string, r io.Reader)) {
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
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Typeflag == tar.TypeReg {
				fn(strings.TrimPrefix(hdr.Name, "./"), tr)
			}
		}
		rc.Close()
	}
}

// readRecord returns the Package and Version of a dpkg status record.
func readRecord(t *testing.T, r io.Reader) (pkg, version string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Package: "); ok {
			pkg = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "Version: "); ok {
			version = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pkg, version
}

// labelPackages returns name=version of every Debian package that the
// releases of an image (name → version) carry on plat, from their
// io.envreg.debian.packages labels.
func labelPackages(t *testing.T, s *server, plat string, releases map[string]string) []string {
	t.Helper()
	arch := map[string]string{"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm/v7": "armhf"}[plat]
	var out []string
	for name, version := range releases {
		resp, body := s.get(t, "/api/v1/packages/"+name, "application/json")
		var pkg api.PackageDetail
		if resp.StatusCode != 200 || json.Unmarshal(body, &pkg) != nil {
			t.Fatalf("GET /api/v1/packages/%s: %d %s", name, resp.StatusCode, body)
		}
		i := slices.IndexFunc(pkg.Versions, func(r api.ReleaseInfo) bool { return r.Version == version })
		if i < 0 {
			t.Fatalf("%s %s is not published", name, version)
		}
		for _, p := range strings.Fields(pkg.Versions[i].Labels[packages.LabelDebianPackages]) {
			nv, _, _ := strings.Cut(p, "=")
			if n, a, qualified := strings.Cut(nv, ":"); qualified {
				if a != arch {
					continue
				}
				p = n + p[len(nv):]
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no Debian packages labelled for %v", releases)
	}
	return out
}

// checkEmulated runs the programs of the php-8.2_node-20 and node-24
// images for plat (linux/arm64 or linux/arm/v7) under qemu's user-mode
// emulation, in the image's own root: the image is flattened with crane
// export into a directory, Debian's statically linked qemu-user is copied
// in, and chroot starts it there, so the kernel resolves every path (the
// loader, DT_RPATH, the absolute symbolic links of php's conf.d) in the
// image as in a container; no binfmt registration and no second engine.
// php prints its version, loads every bundled extension and passes FPM's
// configuration test; node 20 (trixie's, relocated libraries) and node 24
// (forky's, with its own glibc and loader) print theirs and hash with
// OpenSSL. chroot needs root: without it the test skips, and fails with
// CI=true.
func checkEmulated(t *testing.T, s *server, plat string, php, node20, node24 *semver.Version) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "running arm programs in their image's root needs chroot, which needs root (run as root, or in CI)")
	}
	qemu := tool(t, map[string]string{"linux/arm64": "qemu-aarch64-static", "linux/arm/v7": "qemu-arm-static"}[plat])
	crane := tool(t, "crane")
	export := func(tag string) string {
		t.Helper()
		root := t.TempDir()
		flat := filepath.Join(t.TempDir(), "image.tar")
		runTool(t, crane, "export", "--insecure", "--platform", plat, s.host+"/env:"+tag, flat)
		runTool(t, "tar", "-xf", flat, "-C", root)
		data, err := os.ReadFile(qemu)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "qemu"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		// php-fpm opens /dev/null, which a container engine provides.
		if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mknod(filepath.Join(root, "dev", "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
		return root
	}
	run := func(root string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "chroot", append([]string{root, "/qemu"}, args...)...)
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %s under %s: %v\n%s", plat, strings.Join(args, " "), filepath.Base(qemu), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	root := export("php-8.2_node-20")
	if got := run(root, "/usr/bin/php", "-r", "echo PHP_VERSION;"); got != php.String() {
		t.Errorf("%s: php printed %q, want %s", plat, got, php)
	}
	mods := "," + strings.ReplaceAll(run(root, "/usr/bin/php", "-m"), "\n", ",") + ","
	for _, ext := range phpExtensions {
		if !strings.Contains(mods, ","+ext+",") {
			t.Errorf("%s: php -m lacks %s: %s", plat, ext, mods)
		}
	}
	if strings.Contains(mods, "Warning") {
		t.Errorf("%s: php -m warned: %s", plat, mods)
	}
	minor := fmt.Sprintf("%d.%d", php.Major(), php.Minor())
	if got := run(root, "/usr/sbin/php-fpm"+minor, "-t"); !strings.Contains(got, "test is successful") {
		t.Errorf("%s: php-fpm%s -t printed %q", plat, minor, got)
	}
	hash := `const c = require("crypto"); console.log(process.version, process.arch, c.createHash("sha256").update("envreg").digest("hex"))`
	want := "7eedefc61200c49dda1e4e096de6fe4b52a41eef12846f042caf5a65cf02cdd1"
	arch := map[string]string{"linux/arm64": "arm64", "linux/arm/v7": "arm"}[plat]
	for _, c := range []struct {
		tag  string
		node *semver.Version
	}{{"", node20}, {"node-24", node24}} {
		if c.tag != "" {
			root = export(c.tag)
		}
		if got, want := run(root, "/usr/bin/node", "-e", hash), "v"+c.node.String()+" "+arch+" "+want; got != want {
			t.Errorf("%s: node printed %q, want %q", plat, got, want)
		}
	}
	t.Logf("%s: php %s (FPM, %d extensions), node %s and %s ran under %s", plat, php, len(phpExtensions), node20, node24, filepath.Base(qemu))
}
