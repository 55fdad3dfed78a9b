package server_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/server"
	"github.com/envreg/envreg/test/fixtures"
)

// TestConcurrentPullsDuringPublishes runs 200 concurrent pulls of composed
// tags while new package versions are being published. Every pull must
// succeed, and every image must validate completely: each manifest names
// only blobs that exist and a config whose diff_ids match its layers.
func TestConcurrentPullsDuringPublishes(t *testing.T) {
	st := fixtures.NewStores(t)
	cat, blobs, pub, log := st.Catalog, st.Blobs, st.Publisher, slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(server.New(server.DefaultConfig(), server.Deps{Catalog: cat, Blobs: blobs, Log: log}).Handler())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	tags := []string{"php-8.2_node-20", "php_gm", "php-8.1_node-18", "node_gm-1.3", "latest", "php-8.2.32_nodejs-20.11", "gm_php-8_node-20"}
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() { // publisher: new patches of php and nodejs while pulls run
		n := 0
		defer func() { published <- n }()
		for i := 37; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range []fixtures.Package{fixtures.Extra("php", fmt.Sprintf("8.2.%d", i)), fixtures.Extra("nodejs", fmt.Sprintf("20.12.%d", i))} {
				if _, err := fixtures.Publish(t.Context(), pub, st.Work, p); err != nil {
					t.Errorf("publishing %s %s: %v", p.Name, p.Version, err)
					return
				}
				n++
			}
		}
	}()

	const pulls = 200
	var wg sync.WaitGroup
	errs := make(chan error, pulls)
	for i := range pulls {
		wg.Go(func() {
			tag := tags[rand.IntN(len(tags))]
			ref, err := name.ParseReference(u.Host+"/env:"+tag, name.Insecure)
			if err != nil {
				errs <- err
				return
			}
			idx, err := remote.Index(ref)
			if err != nil {
				errs <- fmt.Errorf("pull %d (%s): %w", i, tag, err)
				return
			}
			if err := validate.Index(idx); err != nil {
				errs <- fmt.Errorf("pull %d (%s) does not validate: %w", i, tag, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	n := <-published
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n == 0 {
		t.Error("no version was published while the pulls ran")
	}
	t.Logf("%d pulls, %d versions published meanwhile", pulls, n)
}
