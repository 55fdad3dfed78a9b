package test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/envreg/envreg/test/fixtures"
)

// TestTwoReplicasOneTruth runs two "envreg serve" processes on one Redis
// (catalog, manifests) and one S3 server (blobs): they serve the same
// digests, and a version published through the shared stores is visible
// on both within a second.
func TestTwoReplicasOneTruth(t *testing.T) {
	storage := startRemoteStores(t, "replicas").storage
	publishAllTo(t, storage)
	// Neither replica has a data directory of its own: state is shared.
	a := startServerWith(t, filepath.Join(t.TempDir(), "unused-a"), storage...)
	b := startServerWith(t, filepath.Join(t.TempDir(), "unused-b"), storage...)

	for _, tag := range []string{"php-8.2_node-20", "gm_php-8.1", "latest"} {
		da, db := digestOf(t, a, "env:"+tag), digestOf(t, b, "env:"+tag)
		if da != db {
			t.Errorf("%s: replica a serves %s, replica b %s", tag, da, db)
		}
	}
	// Composed on a, pulled by digest from b (stored in Redis + S3), with
	// every blob validated.
	pinned := digestOf(t, a, "env:php-8.2_node-18_gm")
	pullIndex(t, b, "env@"+pinned.String())

	// Publish a newer patch; both replicas must see it within a second.
	publishFixtureTo(t, storage, fixtures.Extra("php", "8.2.37"))
	published := time.Now()
	for name, s := range map[string]*server{"a": a, "b": b} {
		var got v1.Hash
		for {
			got = digestOf(t, s, "env:php-8.2_node-18_gm")
			if got != pinned {
				break
			}
			if time.Since(published) > time.Second {
				t.Fatalf("replica %s still serves %s 1s after php 8.2.37 was published", name, pinned)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if da, db := digestOf(t, a, "env:php-8.2_node-18_gm"), digestOf(t, b, "env:php-8.2_node-18_gm"); da != db {
		t.Errorf("after the publish: replica a %s, replica b %s", da, db)
	}
	pullIndex(t, b, "env:php-8.2_node-18_gm")
	pullIndex(t, a, "env@"+pinned.String())
}

// TestMigrate moves an embedded data directory into Redis + S3 with
// "envreg migrate": a server on the new stores serves the same digests and
// the environments pinned before the move.
func TestMigrate(t *testing.T) {
	data := publishAll(t)
	before := startServer(t, data)
	pinned := digestOf(t, before, "env:php-8.2_node-20") // stored as documents in data
	// An ordinary repository with a pushed image and a second tag.
	pushedImg, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, before, "team/app:v1"), pushedImg); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(ref(t, before, "team/app:v1").Context().Tag("stable"), pushedImg); err != nil {
		t.Fatal(err)
	}
	pushedDigest, _ := pushedImg.Digest()
	before.stop(t)

	storage := startRemoteStores(t, "migrated").storage
	out := envreg(t, append([]string{"migrate", "--data", data}, storage...)...)
	if !strings.Contains(out, "verified") || !strings.Contains(out, "repositories: 1 (1 manifests, 2 tags)") {
		t.Errorf("migrate output lacks the verification or the repository: %s", out)
	}
	// Running it again copies nothing new and still verifies.
	if again := envreg(t, append([]string{"migrate", "--data", data}, storage...)...); !strings.Contains(again, "blobs: 0 copied") {
		t.Errorf("second migrate copied blobs again: %s", again)
	}

	after := startServerWith(t, filepath.Join(t.TempDir(), "unused"), storage...)
	pullIndex(t, after, "env@"+pinned.String())
	if got := digestOf(t, after, "env:php-8.2_node-20"); got != pinned {
		t.Errorf("after migration php-8.2_node-20 = %s, want %s", got, pinned)
	}
	for _, tag := range []string{"v1", "stable"} {
		img, err := remote.Image(ref(t, after, "team/app:"+tag))
		if err != nil {
			t.Fatalf("team/app:%s after migration: %v", tag, err)
		}
		if d, _ := img.Digest(); d != pushedDigest {
			t.Fatalf("team/app:%s after migration: %s, want %s", tag, d, pushedDigest)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("team/app:%s after migration: %v", tag, err)
		}
	}
}
