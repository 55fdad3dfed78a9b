package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPrintConfig: serve --print-config prints what serve would run with,
// defaults < config file < ENVREG_* < flags, with the Redis password
// masked, and exits without opening anything.
func TestPrintConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "envreg.yaml")
	if err := os.WriteFile(cfg, []byte("catalog: redis://envreg:s3cret@10.0.0.5:6379/0\nlog-level: warn\naddr: \":6000\"\nmax-connections: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVREG_LOG_LEVEL", "error")
	code, out, errOut := runCLI(t, "serve", "--config", cfg, "--addr", ":7000", "--print-config")
	if code != 0 {
		t.Fatalf("serve --print-config: exit %d\n%s", code, errOut)
	}
	var got map[string]string
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	for key, want := range map[string]string{
		"addr": ":7000", "log-level": "error", "max-connections": "100", "shutdown-timeout": "30s", "data": "data",
	} {
		if got[key] != want {
			t.Errorf("%s = %q, want %q", key, got[key], want)
		}
	}
	if strings.Contains(out, "s3cret") || !strings.Contains(got["catalog"], "10.0.0.5:6379") {
		t.Errorf("catalog %q: want the URL with the password masked", got["catalog"])
	}
	// What it prints is a config file serve accepts.
	again := filepath.Join(t.TempDir(), "printed.yaml")
	if err := os.WriteFile(again, []byte(strings.ReplaceAll(out, "xxxxx", "s3cret")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVREG_LOG_LEVEL", "")
	os.Unsetenv("ENVREG_LOG_LEVEL")
	if code, out2, errOut := runCLI(t, "serve", "--config", again, "--print-config"); code != 0 || out2 != out {
		t.Errorf("the printed config read back: exit %d, %s\n%s\nwant\n%s", code, errOut, out2, out)
	}
}

// TestInvalidConfig: an invalid setting fails at start-up, naming every
// key and why, before anything is opened.
func TestInvalidConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "envreg.yaml")
	if err := os.WriteFile(cfg, []byte("log-level: loud\nmax-connections: -1\ncatalog: mysql://db/envreg\naddr: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	code, _, errOut := runCLI(t, "serve", "--config", cfg, "--data", data)
	if code != 2 {
		t.Fatalf("serve with an invalid config: exit %d, want 2\n%s", code, errOut)
	}
	for _, want := range []string{"log-level", `"loud"`, "max-connections", "negative", "catalog", "mysql", "addr", "nowhere"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error does not name %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("serve created its data directory before refusing the configuration")
	}
}
