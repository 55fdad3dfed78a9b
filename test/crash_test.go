package test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envreg/envreg/test/fixtures"
)

// TestCrashSafety kills "envreg publish" and "envreg serve" with SIGKILL at
// random points, in a bounded loop, and checks after every crash that the
// store is consistent: "envreg verify" rehashes every blob and checks that
// every visible package version has its blobs and every stored manifest
// references only what exists; the next publish and the next pull work.
func TestCrashSafety(t *testing.T) {
	data := publishAll(t)
	rng := rand.New(rand.NewPCG(1, 2))
	verify := func(t *testing.T, after string) {
		t.Helper()
		out, errOut, err := envregResult(t, "verify", "--data", data)
		if err != nil {
			t.Fatalf("envreg verify after %s: %v\n%s\n%s", after, err, out, errOut)
		}
	}

	for i := range 6 {
		// A publish killed somewhere between building, storing the blob and
		// writing the catalog.
		p := fixtures.Extra("crash", fmt.Sprintf("1.0.%d", i))
		root := filepath.Join(t.TempDir(), "rootfs")
		if err := fixtures.WriteTree(root, p, fixturePlatforms[0]); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(envregBin, publishArgs([]string{"--data", data}, p, fixturePlatforms[0], root)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		verify(t, fmt.Sprintf("killing publish %d", i))

		// A server killed while composing new combinations.
		s := startServer(t, data)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := range 20 {
				tag := fmt.Sprintf("php-8.%d_node-%d", 1+j%2, 18+2*(j%2))
				if j%3 == 0 {
					tag += "_gm"
				}
				_, _ = httpGet("http://" + s.host + "/v2/env/manifests/" + tag)
			}
		}()
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		_ = s.cmd.Process.Kill()
		<-s.done
		<-done
		verify(t, fmt.Sprintf("killing serve %d", i))
	}

	// Afterwards the store works: a publish of the same content succeeds
	// (no half-published version blocks it) and pulls validate.
	for i := range 6 {
		publishFixture(t, data, fixtures.Extra("crash", fmt.Sprintf("1.0.%d", i)))
	}
	s := startServer(t, data)
	pullIndex(t, s, "env:crash-1.0.0_php-8.2")
	verify(t, "the final publish")
	if out := envreg(t, "verify", "--data", data); !strings.Contains(strings.ToLower(out), "blob") {
		t.Errorf("verify output does not report the blobs it checked: %s", out)
	}
}

// httpGet fetches a URL and discards the body; errors are expected while
// the server is being killed.
func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
