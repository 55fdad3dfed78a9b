package test

import (
	"bytes"
	"context"
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
//
// The points are counted in progress, not time, so that the test proves
// the same on a fast and on a loaded machine: publish is killed after a
// random number of its steps on disk, serve after a random number of
// answered requests.
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
		killAfterSteps(t, cmd, data, rng.IntN(publishSteps))
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
		n := rng.IntN(21)
		t.Logf("serve %d: killed after %d requests (%d asked)", i, s.killAfterAnswered(t, n, done), n)
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

// publishSteps is about how many changes on disk (files created, written,
// renamed, removed) "envreg publish" of one small layer makes: the layer
// spooled, the blob stored, the release and the generation written.
const publishSteps = 17

// killAfterSteps starts cmd and kills it with SIGKILL after it has made n
// changes under dir (see watchTree), or lets it finish if it makes fewer.
func killAfterSteps(t *testing.T, cmd *exec.Cmd, dir string, n int) {
	t.Helper()
	steps := &lockedWriter{w: &bytes.Buffer{}}
	stop := watchTree(t, dir, steps)
	defer stop()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := steps.waitFor(ctx, func(b []byte) bool { return bytes.Count(b, []byte("\n")) >= n })
	select {
	case <-exited:
		t.Logf("%s finished before its step %d", cmd.Args[1], n)
		return
	default:
	}
	if err != nil {
		t.Fatalf("%s made fewer than %d steps in 2 minutes:\n%s", cmd.Args[1], n, steps)
	}
	_ = cmd.Process.Kill()
	<-exited
	t.Logf("%s killed after step %d: %s", cmd.Args[1], n, lastLine(steps.String()))
}

// lastLine returns the last line of s, or "(nothing)".
func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return "(nothing)"
	}
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// answered counts the requests a server has answered by its debug log,
// which has one "request" line per request, written once the handler has
// returned.
func answered(log []byte) int { return bytes.Count(log, []byte(" msg=request ")) }

// killAfterAnswered kills the server with SIGKILL once it has answered n
// requests, or once clientsDone is closed (its clients made fewer), and
// waits for it to exit. It returns the number of requests answered by
// then.
func (s *server) killAfterAnswered(t *testing.T, n int, clientsDone <-chan struct{}) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-clientsDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.cmd.Stderr.(*lockedWriter).waitFor(ctx, func(log []byte) bool { return answered(log) >= n })
	select {
	case <-clientsDone:
	default:
		if err != nil {
			t.Fatalf("the server answered fewer than %d requests in 2 minutes:\n%s", n, s.logs())
		}
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return answered([]byte(s.logs()))
}
