package debian_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages/internal/debian"
)

// These tests use the real Debian archive through the machine's apt
// sources. They skip, saying why, when apt or the archive is not
// available, and fail instead when CI=true. Set ENVREG_TEST_CACHE to a
// directory to keep lists and .debs between runs.

var testCache string

func TestMain(m *testing.M) {
	testCache = os.Getenv("ENVREG_TEST_CACHE")
	if testCache == "" {
		dir, err := os.MkdirTemp("", "envreg-debian-test-*")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		testCache = dir
	}
	m.Run()
}

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (required when CI=true)", args...)
	}
	t.Skipf(format, args...)
}

var apts = map[string]*debian.Apt{}

// newApt returns an updated Apt for arch on the machine's sources, shared
// by the tests unless log is given.
func newApt(t *testing.T, arch string, log *bytes.Buffer) *debian.Apt {
	t.Helper()
	if a := apts[arch]; a != nil && log == nil {
		return a
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not available: %v", tool, err)
		}
	}
	cfg := debian.Config{CacheDir: testCache, Arch: arch}
	if log != nil {
		cfg.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	a, err := debian.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(t.Context()); err != nil {
		unavailable(t, "Debian archive not reachable: %v", err)
	}
	if log == nil {
		apts[arch] = a
	}
	return a
}

func req(t *testing.T, s string) debian.Request {
	t.Helper()
	r, err := debian.ParseRequest(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func installed(pkgs []debian.Package) []debian.Paragraph {
	var out []debian.Paragraph
	for _, p := range pkgs {
		out = append(out, p.Installed())
	}
	return out
}

func names(pkgs []debian.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name)
	}
	return out
}

// versions returns the versions of name the archive has, newest first,
// from the NotFoundError of a version that cannot exist.
func versions(t *testing.T, a *debian.Apt, name string) []string {
	t.Helper()
	_, err := a.Resolve(t.Context(), []debian.Request{{Name: name, Version: "0.0.0-0envreg"}}, nil)
	var nf *debian.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("resolving a bogus version of %s: %v, want a *NotFoundError", name, err)
	}
	return nf.Available
}

func TestResolveMinusInstalled(t *testing.T) {
	a := newApt(t, "amd64", nil)
	base, err := a.Resolve(t.Context(), []debian.Request{req(t, "libc6"), req(t, "dash")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(base); !slices.Contains(n, "libc6") || !slices.Contains(n, "dash") || !slices.IsSorted(n) {
		t.Fatalf("closure of libc6 dash = %v", n)
	}
	for _, p := range base {
		if len(p.SHA256) != 64 || p.Size <= 0 || !strings.HasSuffix(p.File, ".deb") || (p.Architecture != "amd64" && p.Architecture != "all") {
			t.Errorf("package %+v lacks index data", p)
		}
	}
	got, err := a.Resolve(t.Context(), []debian.Request{req(t, "coreutils")}, installed(base))
	if err != nil {
		t.Fatal(err)
	}
	n := names(got)
	if !slices.Contains(n, "coreutils") || slices.Contains(n, "libc6") {
		t.Errorf("closure of coreutils on top of libc6+dash = %v, want coreutils without libc6", n)
	}
}

func TestResolvePinsSourcePackage(t *testing.T) {
	a := newApt(t, "amd64", nil)
	vs := versions(t, a, "php8.2-cli")
	if len(vs) < 2 {
		t.Skipf("the archive has one version of php8.2-cli (%v); pinning an older one cannot be tested", vs)
	}
	older, newer := vs[len(vs)-1], vs[0]
	got, err := a.Resolve(t.Context(), []debian.Request{{Name: "php8.2-cli", Version: older}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Source == "php8.2" && p.Version != older {
			t.Errorf("%s from source php8.2 has version %s, want the pinned %s", p.Name, p.Version, older)
		}
	}

	// php8.2-cli of one version needs php8.2-common of the same version.
	_, err = a.Resolve(t.Context(), []debian.Request{{Name: "php8.2-cli", Version: older}, {Name: "php8.2-common", Version: newer}}, nil)
	var ue *debian.UnsatisfiableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "php8.2-cli") || !strings.Contains(err.Error(), "php8.2-common") {
		t.Errorf("conflicting pins: err = %v, want an *UnsatisfiableError naming php8.2-cli and php8.2-common", err)
	}
}

func TestResolveErrors(t *testing.T) {
	a := newApt(t, "amd64", nil)
	_, err := a.Resolve(t.Context(), []debian.Request{req(t, "dash=0.0.1-99")}, nil)
	var nf *debian.NotFoundError
	if !errors.As(err, &nf) || nf.Package != "dash" || nf.Version != "0.0.1-99" || len(nf.Available) == 0 {
		t.Errorf("missing version: err = %v", err)
	} else if want := "debian package dash version 0.0.1-99 not found for amd64 (available: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("missing version: err = %q, want prefix %q", err, want)
	}

	_, err = a.Resolve(t.Context(), []debian.Request{req(t, "dash"), req(t, "envreg-no-such-package")}, nil)
	if !errors.As(err, &nf) || nf.Package != "envreg-no-such-package" {
		t.Errorf("missing package: err = %v", err)
	}

	// An installed libc6 older than what dash needs: the layer would have
	// to replace a file of the base.
	old := debian.StatusRecord(debian.Paragraph{
		{Name: "Package", Value: "libc6"}, {Name: "Version", Value: "2.0-1"},
		{Name: "Architecture", Value: "amd64"}, {Name: "Multi-Arch", Value: "same"},
	})
	_, err = a.Resolve(t.Context(), []debian.Request{req(t, "dash")}, []debian.Paragraph{old})
	var ic *debian.InstalledConflictError
	if !errors.As(err, &ic) || ic.Package != "libc6" || ic.Installed != "2.0-1" {
		t.Errorf("outdated base: err = %v, want an *InstalledConflictError for libc6", err)
	}

	// The same, upgrading: the newer libc6 is part of the closure.
	pkgs, err := a.ResolveUpgrading(t.Context(), []debian.Request{req(t, "dash")}, []debian.Paragraph{old})
	if err != nil {
		t.Fatalf("ResolveUpgrading on an outdated base: %v", err)
	}
	i := slices.IndexFunc(pkgs, func(p debian.Package) bool { return p.Name == "libc6" })
	if i < 0 || pkgs[i].Version == "2.0-1" {
		t.Errorf("ResolveUpgrading closure %v: want the archive's libc6, newer than the installed 2.0-1", pkgs)
	}
	if !slices.ContainsFunc(pkgs, func(p debian.Package) bool { return p.Name == "dash" }) {
		t.Errorf("ResolveUpgrading closure %v has no dash", pkgs)
	}
}

func TestFetch(t *testing.T) {
	var log bytes.Buffer
	a := newApt(t, "arm64", &log) // arm64 .debs come from the same archive
	pkgs, err := a.Resolve(t.Context(), []debian.Request{req(t, "zlib1g")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Fetch(t.Context(), pkgs); err != nil {
		t.Fatal(err)
	}
	var zlib debian.Package
	for _, p := range pkgs {
		if err := debian.Verify(p); err != nil {
			t.Errorf("after Fetch: %v", err)
		}
		if p.Name == "zlib1g" {
			zlib = p
		}
	}
	if zlib.Architecture != "arm64" || !strings.HasSuffix(zlib.File, "_arm64.deb") {
		t.Errorf("zlib1g for arm64 = %+v", zlib)
	}

	// A corrupted cached file (same size) is noticed and downloaded again.
	data, err := os.ReadFile(zlib.File)
	if err != nil {
		t.Fatal(err)
	}
	data[100] ^= 0xff
	if err := os.WriteFile(zlib.File, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Fetch(t.Context(), []debian.Package{zlib}); err != nil {
		t.Fatalf("Fetch after corrupting the cache: %v", err)
	}
	if err := debian.Verify(zlib); err != nil {
		t.Errorf("after re-download: %v", err)
	}
	if !strings.Contains(log.String(), "does not match the archive index") {
		t.Errorf("no warning logged about the corrupted file:\n%s", log.String())
	}

	// A file that never matches what the index says is refused.
	wrong := zlib
	wrong.SHA256 = strings.Repeat("0", 64)
	err = a.Fetch(t.Context(), []debian.Package{wrong})
	var ce *debian.ChecksumError
	if !errors.As(err, &ce) || ce.Package != "zlib1g" {
		t.Errorf("Fetch with a wrong index hash = %v, want a *ChecksumError for zlib1g", err)
	}
}

// TestResolveRelativeTempDir: a relative TempDir (what "--data ./data"
// gives) must not hide the installed list from apt, which reads relative
// Dir:: paths against its own directories.
func TestResolveRelativeTempDir(t *testing.T) {
	shared := newApt(t, "amd64", nil) // updates the lists in testCache
	base, err := shared.Resolve(t.Context(), []debian.Request{req(t, "libc6"), req(t, "dash")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.Mkdir("tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := debian.New(debian.Config{CacheDir: testCache, Arch: "amd64", TempDir: "tmp"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Resolve(t.Context(), []debian.Request{req(t, "coreutils")}, installed(base))
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); !slices.Contains(n, "coreutils") || slices.Contains(n, "libc6") {
		t.Errorf("closure of coreutils on top of libc6+dash with a relative TempDir = %v, want coreutils without libc6", n)
	}
}
