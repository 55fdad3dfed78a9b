package test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envreg/envreg/test/fixtures"
)

// roundLine matches the one line a sync round logs.
var roundLine = regexp.MustCompile(`msg="sync round" published=(\d+) present=(\d+) raced=(\d+) failed=(\d+) stopped=(\w+) took=(\S+)`)

// syncRounds parses the round lines of a sync job's log: published,
// present, raced and failed per round, and how long each took.
func syncRounds(t *testing.T, log string) (counts [][4]int, took []string) {
	t.Helper()
	for _, m := range roundLine.FindAllStringSubmatch(log, -1) {
		var c [4]int
		for i := range c {
			c[i], _ = strconv.Atoi(m[i+1])
		}
		counts = append(counts, c)
		took = append(took, m[6])
	}
	return counts, took
}

// blobFiles counts the files of the embedded store's blob directory.
func blobFiles(t *testing.T, data string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(data, "blobs"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestSyncOnce: `envreg sync` publishes every version the catalog lacks,
// and a round with nothing new publishes and stores nothing; a version
// that cannot be published makes --once exit 1 while the others are
// published (issue 18, item 2).
func TestSyncOnce(t *testing.T) {
	all := fixtures.All()
	dir := recipeDir(t, all[0], all[len(all)-1]) // base 12.0.0, php 8.2.36
	data := filepath.Join(t.TempDir(), "data")

	_, errOut, err := envregResult(t, "sync", "--once", "--data", data, dir)
	if counts, _ := syncRounds(t, errOut); err != nil || len(counts) != 1 || counts[0] != [4]int{2, 0, 0, 0} {
		t.Fatalf("first sync: %v, rounds %v, want 2 published\n%s", err, counts, errOut)
	}
	files := blobFiles(t, data)
	gen := catalogGeneration(t, data)
	_, errOut, err = envregResult(t, "sync", "--once", "--data", data, dir)
	counts, took := syncRounds(t, errOut)
	if err != nil || len(counts) != 1 || counts[0] != [4]int{0, 2, 0, 0} {
		t.Fatalf("second sync: %v, rounds %v, want nothing published, 2 present\n%s", err, counts, errOut)
	}
	if blobFiles(t, data) != files || catalogGeneration(t, data) != gen {
		t.Errorf("a sync with nothing new changed the store: blobs %d → %d, generation %s → %s", files, blobFiles(t, data), gen, catalogGeneration(t, data))
	}
	t.Logf("a round with nothing new took %s", took[0])

	writeRecipe(t, dir, fixtures.Extra("php", "8.2.37"))
	broken := filepath.Join(dir, "nodejs-broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "recipe.yaml"), []byte("name: nodejs\nversion: 20.0.0\nplatforms: [linux/amd64]\nsource:\n  dir: missing/{arch}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = envregResult(t, "sync", "--once", "--data", data, dir)
	var ee *exec.ExitError
	if counts, _ := syncRounds(t, errOut); !errors.As(err, &ee) || ee.ExitCode() != 1 || len(counts) != 1 || counts[0] != [4]int{1, 2, 0, 1} {
		t.Errorf("sync with a broken recipe: %v, rounds %v, want exit 1 with 1 published and 1 failed\n%s", err, counts, errOut)
	}
	if !strings.Contains(errOut, "nodejs 20.0.0 for linux/amd64") {
		t.Errorf("the failure does not name the version and platform:\n%s", errOut)
	}
	s := startServer(t, data)
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2.37", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("php-8.2.37 after sync: %d %s", resp.StatusCode, body)
	}
}

// syncJob is a running `envreg sync --every`.
type syncJob struct {
	cmd  *exec.Cmd
	log  *lockedWriter
	done chan error
}

func startSyncJob(t *testing.T, args ...string) *syncJob {
	t.Helper()
	j := &syncJob{log: &lockedWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	j.cmd = exec.Command(envregBin, append([]string{"sync"}, args...)...)
	j.cmd.Stderr = j.log
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { j.done <- j.cmd.Wait() }()
	t.Cleanup(func() {
		if j.cmd.ProcessState == nil {
			_ = j.cmd.Process.Kill()
			<-j.done
		}
	})
	return j
}

// waitRounds waits until the job has logged n rounds.
func (j *syncJob) waitRounds(t *testing.T, n int) [][4]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := j.log.waitFor(ctx, func(b []byte) bool { return len(roundLine.FindAll(b, -1)) >= n })
	if err != nil {
		t.Fatalf("sync job did not log %d rounds within a minute\n%s", n, j.log.String())
	}
	counts, _ := syncRounds(t, j.log.String())
	return counts
}

// metric returns the value of a sample line of the job's metrics.
func metric(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metrics lack %s", sample)
	return 0
}

// TestSyncEvery: `envreg sync --every` is a long-lived job: each round
// publishes what is new, logs one line and updates its metrics; SIGTERM
// stops it with exit 0 (issue 18, item 2).
func TestSyncEvery(t *testing.T) {
	all := fixtures.All()
	dir := recipeDir(t, all[0], all[len(all)-1])
	data := filepath.Join(t.TempDir(), "data")
	j := startSyncJob(t, "--every", "100ms", "--jitter", "0", "--metrics-addr", "127.0.0.1:0", "--data", data, dir)
	if counts := j.waitRounds(t, 2); counts[0] != [4]int{2, 0, 0, 0} || counts[1] != [4]int{0, 2, 0, 0} {
		t.Fatalf("rounds %v, want 2 published, then 2 present", counts)
	}
	m := regexp.MustCompile(`msg="sync metrics listening" addr=(\S+)`).FindStringSubmatch(j.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log\n%s", j.log.String())
	}
	writeRecipe(t, dir, fixtures.Extra("php", "8.2.37"))
	deadline := time.Now().Add(time.Minute)
	for metric(t, m[1], "envreg_sync_versions_published_total") != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the new version was not published within a minute\n%s", j.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := metric(t, m[1], "envreg_sync_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v, want within the last minute", v)
	}
	if v := metric(t, m[1], `envreg_sync_failures_total{reason="publish"}`); v != 0 {
		t.Errorf("failures %v, want 0", v)
	}
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-j.done:
		if err != nil || !strings.Contains(j.log.String(), "sync job stopped") {
			t.Errorf("after SIGTERM: %v\n%s", err, j.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the job did not stop within 30s of SIGTERM\n%s", j.log.String())
	}
}

// TestSyncConcurrentJobs: two sync jobs started at once on one catalog
// (replicas) publish each version once and whole; the catalog's
// exclusive publish decides which (issue 18, item 2).
func TestSyncConcurrentJobs(t *testing.T) {
	run := func(t *testing.T, data string, storage []string) {
		pkgs := []fixtures.Package{fixtures.All()[0]}
		for i := range 6 {
			pkgs = append(pkgs, fixtures.Extra("php", fmt.Sprintf("8.4.%d", i)))
		}
		dir := recipeDir(t, pkgs...)
		args := append(append([]string{"sync", "--once"}, storage...), dir)
		var wg sync.WaitGroup
		logs := make([]string, 2)
		for i := range logs {
			wg.Go(func() {
				var err error
				if _, logs[i], err = envregResult(t, args...); err != nil {
					t.Errorf("job %d: %v\n%s", i, err, logs[i])
				}
			})
		}
		wg.Wait()
		published := 0
		for i, l := range logs {
			counts, _ := syncRounds(t, l)
			if len(counts) != 1 || counts[0][0]+counts[0][1]+counts[0][2] != len(pkgs) {
				t.Fatalf("job %d: rounds %v, want one accounting for all %d versions\n%s", i, counts, len(pkgs), l)
			}
			published += counts[0][0]
			t.Logf("job %d: published %d, present %d, raced %d", i, counts[0][0], counts[0][1], counts[0][2])
		}
		if published != len(pkgs) {
			t.Errorf("the jobs published %d versions in all, want each of the %d once", published, len(pkgs))
		}
		if out, errOut, err := envregResult(t, append([]string{"verify"}, storage...)...); err != nil {
			t.Errorf("verify after two syncs: %v\n%s%s", err, out, errOut)
		}
		s := startServerWith(t, data, storage...)
		for i := range 6 {
			if resp, body := s.get(t, fmt.Sprintf("/v2/env/manifests/php-8.4.%d", i), ""); resp.StatusCode != http.StatusOK {
				t.Errorf("php-8.4.%d: %d %s", i, resp.StatusCode, body)
			}
		}
	}
	t.Run("data", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		run(t, data, []string{"--data", data})
	})
	t.Run("redis+s3", func(t *testing.T) {
		rs := startRemoteStores(t, "sync")
		run(t, filepath.Join(t.TempDir(), "local"), rs.storage)
	})
}

// catalogGeneration is the embedded catalog's generation number.
func catalogGeneration(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "catalog", "GENERATION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestSyncToRegistry: `envreg sync --registry` reads what a remote envreg
// has from its packages/NAME:VERSION tags, pushes what it lacks, and
// pushes nothing the next round (issue 18, item 2).
func TestSyncToRegistry(t *testing.T) {
	all := fixtures.All()
	dir := recipeDir(t, all[0], all[len(all)-1])
	pw := htpasswd(t, "ci", "sync-pw")
	s := startServer(t, filepath.Join(t.TempDir(), "data"), "--auth-htpasswd", pw)
	t.Setenv("ENVREG_REGISTRY_PASSWORD", "sync-pw")
	args := []string{"sync", "--once", "--registry", "http://" + s.host, "--registry-user", "ci", dir}
	_, errOut, err := envregResult(t, args...)
	if counts, _ := syncRounds(t, errOut); err != nil || len(counts) != 1 || counts[0] != [4]int{2, 0, 0, 0} {
		t.Fatalf("first sync to the registry: %v, rounds %v, want 2 published\n%s", err, counts, errOut)
	}
	_, errOut, err = envregResult(t, args...)
	counts, took := syncRounds(t, errOut)
	if err != nil || len(counts) != 1 || counts[0] != [4]int{0, 2, 0, 0} || strings.Contains(errOut, "pushed package") {
		t.Fatalf("second sync to the registry: %v, rounds %v, want nothing pushed, 2 present\n%s", err, counts, errOut)
	}
	t.Logf("a round against the registry with nothing new took %s", took[0])
	for _, plat := range fixturePlatforms {
		if layers := layerDigests(t, s, "php-8.2", plat); len(layers) != 2 {
			t.Errorf("env:php-8.2 for %s after sync --registry: layers %v, want base and php", plat, layers)
		}
	}
}

// TestSyncStoppedMidRound: a sync job stopped while a version is under way,
// by SIGTERM (a clean exit between steps) or SIGKILL (a crash), records
// nothing of that version; a restart publishes the rest, nothing twice,
// and `envreg verify` finds the store clean (issue 18, items 2 and 5).
func TestSyncStoppedMidRound(t *testing.T) {
	all := fixtures.All()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			archive := newStallingArchive(t)
			dir := recipeDir(t, all[0], all[len(all)-1])
			archive.recipe(t, dir)
			data := filepath.Join(t.TempDir(), "data")
			j := startSyncJob(t, "--every", "1h", "--data", data, "--cache-dir", t.TempDir(), dir)
			select {
			case <-archive.hit:
			case <-time.After(time.Minute):
				t.Fatalf("the job did not reach the stalling archive within a minute\n%s", j.log.String())
			}
			_ = j.cmd.Process.Signal(sig)
			select {
			case err := <-j.done:
				if sig == syscall.SIGTERM && (err != nil || !strings.Contains(j.log.String(), "nothing of this step is in the catalog")) {
					t.Errorf("after SIGTERM mid-step: %v\n%s", err, j.log.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the job did not end within 30s of %s\n%s", sig, j.log.String())
			}
			if err := os.RemoveAll(filepath.Join(dir, "stall")); err != nil {
				t.Fatal(err)
			}
			_, errOut, err := envregResult(t, "sync", "--once", "--data", data, dir)
			counts, _ := syncRounds(t, errOut)
			if err != nil || len(counts) != 1 || counts[0][0]+counts[0][1] != 2 || counts[0][2] != 0 {
				t.Errorf("restart: %v, rounds %v, want base and php published or present, once\n%s", err, counts, errOut)
			}
			if out, errOut, err := envregResult(t, "verify", "--data", data); err != nil || strings.Contains(out, "apt-stall") {
				t.Errorf("verify after the stop: %v\n%s%s", err, out, errOut)
			}
		})
	}
}
