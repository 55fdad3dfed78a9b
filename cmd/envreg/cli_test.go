package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/test/fixtures"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpOnEverySubcommand(t *testing.T) {
	for _, c := range commands() {
		code, out, errOut := runCLI(t, c.name, "--help")
		if code != 0 || !strings.Contains(out, "envreg "+c.name) || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d\nstdout %s\nstderr %s", c.name, code, out, errOut)
		}
	}
	code, out, _ := runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "publish") || !strings.Contains(out, "serve") {
		t.Errorf("help: exit %d, %s", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %s", code, errOut)
	}
	if code, out, _ := runCLI(t, "help", "--help"); code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("help --help: exit %d", code)
	}
	if code, _, errOut := runCLI(t, "publish", "x.yaml", "--data", t.TempDir()); code != 2 || !strings.Contains(errOut, "flags go before arguments") {
		t.Errorf("flag after argument: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "serve", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("unknown flag: exit %d, %s", code, errOut)
	}
}

// TestPublishFlags exercises the public flag form of "envreg publish" that
// scripts and CI jobs call, then resolves what it published.
func TestPublishFlags(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base := fixtures.All()[0]
	if base.Name != "base" {
		t.Fatalf("first fixture is %s, want base", base.Name)
	}
	plat := catalog.Platform{OS: "linux", Architecture: "amd64"}
	baseRoot := filepath.Join(t.TempDir(), "base")
	if err := fixtures.WriteTree(baseRoot, base, plat); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "publish", "--data", data, "--name", "base", "--version", "12.0.0",
		"--platform", "linux/amd64", "--from-dir", baseRoot); code != 0 || !strings.Contains(out, "published base 12.0.0 for linux/amd64") {
		t.Fatalf("publish base: exit %d\n%s\n%s", code, out, errOut)
	}

	// --from-tar with every repeatable flag.
	phpRoot := filepath.Join(t.TempDir(), "php")
	if err := os.MkdirAll(filepath.Join(phpRoot, "usr/local/php/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(phpRoot, "usr/local/php/bin/php"), []byte("#!/bin/sh\necho 8.2.36\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(t.TempDir(), "php.tar")
	writeTar(t, phpRoot, tarFile)
	code, out, errOut := runCLI(t, "publish", "--data", data, "--name", "php", "--version", "8.2.36",
		"--platform", "linux/amd64", "--from-tar", tarFile, "--path", "/usr/local/php/bin", "--path", "/usr/local/php/sbin",
		"--env", "PHP_INI_DIR=/usr/local/etc/php", "--env", "PHP_VERSION=8.2.36", "--requires", "base ^12", "--label", "team=web")
	if code != 0 {
		t.Fatalf("publish php: exit %d\n%s\n%s", code, out, errOut)
	}

	// Same input again: same digest, accepted. Different content: refused unless --force.
	if code, _, errOut := runCLI(t, "publish", "--data", data, "--name", "php", "--version", "8.2.36",
		"--platform", "linux/amd64", "--from-tar", tarFile, "--path", "/usr/local/php/bin", "--path", "/usr/local/php/sbin",
		"--env", "PHP_INI_DIR=/usr/local/etc/php", "--env", "PHP_VERSION=8.2.36", "--requires", "base ^12", "--label", "team=web"); code != 0 {
		t.Errorf("republishing identical input: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "publish", "--data", data, "--name", "php", "--version", "8.2.36",
		"--platform", "linux/amd64", "--from-dir", baseRoot, "--path", "/usr/local/php/bin", "--path", "/usr/local/php/sbin",
		"--env", "PHP_INI_DIR=/usr/local/etc/php", "--env", "PHP_VERSION=8.2.36", "--requires", "base ^12", "--label", "team=web"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("republishing different content: exit %d: %s", code, errOut)
	}

	code, out, errOut = runCLI(t, "resolve", "--data", data, "--json", "php=^8.2")
	if code != 0 {
		t.Fatalf("resolve: exit %d\n%s\n%s", code, out, errOut)
	}
	var res resolveOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 2 || res.Packages[0] != (resolvedPackage{"base", "12.0.0"}) || res.Packages[1] != (resolvedPackage{"php", "8.2.36"}) {
		t.Errorf("resolved %+v", res.Packages)
	}
	if !strings.HasPrefix(res.Reference, "env@sha256:") || len(res.Manifests) != 1 || res.Manifests[0].Platform != "linux/amd64" {
		t.Errorf("resolve output %+v", res)
	}
	// The tag form gives the same pinned reference.
	code, out, _ = runCLI(t, "resolve", "--data", data, "--tag", "php-8.2")
	if code != 0 || !strings.HasPrefix(out, res.Reference+"\n") {
		t.Errorf("resolve --tag php-8.2: exit %d, %q; want %s first", code, out, res.Reference)
	}

	code, _, errOut = runCLI(t, "resolve", "--data", data, "php=^9")
	if code != 1 || !strings.Contains(errOut, "no version of php satisfies ^9 (available: 8.2.36)") {
		t.Errorf("unsatisfiable: exit %d, %q", code, errOut)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	data := t.TempDir()
	cases := [][]string{
		{"publish", "--data", data},
		{"publish", "--data", data, "--from-dir", data},
		{"publish", "--data", data, "--name", "x", "--version", "1.0.0", "--from-dir", data, "--env", "NOEQUALS"},
		{"publish", "--data", data, "--name", "x", "--version", "1.0.0", "--from-dir", data, "--platform", "linux"},
	}
	for _, args := range cases {
		if code, _, errOut := runCLI(t, args...); code != 2 || !strings.Contains(errOut, "--help") {
			t.Errorf("%v: exit %d, %q; want usage error 2", args, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "publish", "--data", data, "--name", "x", "--version", "8.2", "--from-dir", data); code != 1 || !strings.Contains(errOut, "8.2") {
		t.Errorf("non-strict version: exit %d, %q", code, errOut)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	data := filepath.Join(t.TempDir(), "from-env")
	t.Setenv("ENVREG_DATA", data)
	code, out, errOut := runCLI(t, "stack")
	if code != 0 || !strings.Contains(out, "name: env") {
		t.Fatalf("stack: exit %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "catalog")); err != nil {
		t.Errorf("ENVREG_DATA was not used: %v", err)
	}
	// What to publish never comes from the environment.
	t.Setenv("ENVREG_NAME", "sneaky")
	if code, _, errOut := runCLI(t, "publish", "--from-dir", t.TempDir(), "--version", "1.0.0"); code != 2 || !strings.Contains(errOut, "--name and --version are required") {
		t.Errorf("ENVREG_NAME was used: exit %d %s", code, errOut)
	}
	// A flag wins over the environment.
	other := filepath.Join(t.TempDir(), "from-flag")
	if code, _, errOut := runCLI(t, "stack", "--data", other); code != 0 {
		t.Fatal(errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "catalog")); err != nil {
		t.Errorf("--data did not win over ENVREG_DATA: %v", err)
	}
}

func TestStackFile(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte("name: web\nbase: [base]\naliases: {node: nodejs}\nimage:\n  workingDir: /app\n  cmd: [/bin/sh]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "stack", "--data", data, file); code != 0 || !strings.Contains(out, "stack web saved") {
		t.Fatalf("exit %d %s %s", code, out, errOut)
	}
	code, out, _ := runCLI(t, "stack", "--data", data)
	if code != 0 || !strings.Contains(out, "name: web") || !strings.Contains(out, "workingDir: /app") {
		t.Errorf("stack list: %s", out)
	}
	if err := os.WriteFile(file, []byte("name: web\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "stack", "--data", data, file); code != 1 || !strings.Contains(errOut, "bogus") {
		t.Errorf("invalid stack: exit %d %s", code, errOut)
	}
}

func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envreg.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 127.0.0.1:0\nlog-level: warn\ndata: "+filepath.Join(dir, "from-file")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := newFlags(&cliEnv{stdout: io.Discard, stderr: io.Discard}, "serve")
	configFlag(fs)
	store := storageFlags(fs)
	addr := fs.String("addr", ":5000", "")
	level := fs.String("log-level", "info", "")
	t.Setenv("ENVREG_LOG_LEVEL", "error") // environment beats the file
	if err := parseFlags(fs, []string{"--config", cfg, "--addr", "127.0.0.1:7"}); err != nil {
		t.Fatal(err)
	}
	if store.data != filepath.Join(dir, "from-file") || *addr != "127.0.0.1:7" || *level != "error" {
		t.Errorf("data %q addr %q level %q; want file's data, flag's addr, env's level", store.data, *addr, *level)
	}

	if err := os.WriteFile(cfg, []byte("name: php\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "serve", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, `unknown setting "name"`) {
		t.Errorf("unknown config setting: exit %d %s", code, errOut)
	}
}
