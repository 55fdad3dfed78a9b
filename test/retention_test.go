package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// storeSize is what envreg verify counts in a store: documents, blobs and
// their bytes.
type storeSize struct{ documents, blobs, bytes int }

var (
	verifyBlobs     = regexp.MustCompile(`(?m)^blobs: (\d+) checked \((\d+) bytes\)`)
	verifyDocuments = regexp.MustCompile(`(?m)^documents: (\d+) checked`)
)

// sizeOf runs envreg verify on the store that the storage flags name
// (which must find no damage) and returns what it counted.
func sizeOf(t *testing.T, storage []string) storeSize {
	t.Helper()
	out := envreg(t, append([]string{"verify"}, storage...)...)
	b, d := verifyBlobs.FindStringSubmatch(out), verifyDocuments.FindStringSubmatch(out)
	if b == nil || d == nil {
		t.Fatalf("envreg verify printed no counts:\n%s", out)
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return storeSize{documents: atoi(d[1]), blobs: atoi(b[1]), bytes: atoi(b[2])}
}

// distinctTags are tags of the stack env that each resolve to a different
// set of package versions: every fixture version alone, and every pair of
// php with nodejs and with graphicsmagick (23 tags).
func distinctTags() []string {
	php := []string{"8.1.27", "8.2.32", "8.2.36"}
	node := []string{"18.20.4", "20.11.1", "20.12.2"}
	gm := []string{"1.3.40", "1.3.42"}
	var tags []string
	for _, p := range php {
		tags = append(tags, "php-"+p)
		for _, n := range node {
			tags = append(tags, "php-"+p+"_node-"+n)
		}
		for _, g := range gm {
			tags = append(tags, "php-"+p+"_gm-"+g)
		}
	}
	for _, n := range node {
		tags = append(tags, "node-"+n)
	}
	for _, g := range gm {
		tags = append(tags, "gm-"+g)
	}
	return tags
}

// TestRetention is the acceptance of issue 15 item 6: anonymous pulls of
// distinct tags make the server store a composition each, and gc takes
// them back once no one pulled them for the retention, while compositions
// pinned through the provisioning API (and envreg resolve, which uses it)
// stay pullable whole.
//
// Time passes through gc's --now: the server is stopped for that gc,
// because a running server trusts a composition it cached for the touch
// interval (an hour) without reading its marks, which gc's own retention
// (at least a day) allows for, and a clock moved two days ahead does not.
// The first gc, with the real clock, runs while the server serves.
func TestRetention(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		data := publishAll(t)
		storage := []string{"--data", data}
		checkRetention(t, storage, func() *server { return startServer(t, data) })
	})
	t.Run("redis+s3", func(t *testing.T) {
		storage := startRemoteStores(t, "retention").storage
		publishAllTo(t, storage)
		unused := filepath.Join(t.TempDir(), "unused")
		checkRetention(t, storage, func() *server { return startServerWith(t, unused, storage...) })
	})
}

func checkRetention(t *testing.T, storage []string, start func() *server) {
	s := start()
	gc := func(args ...string) string { return envreg(t, append(append([]string{"gc"}, storage...), args...)...) }

	// Pinned by a control plane: two through the API, one through envreg
	// resolve --registry.
	var pinned []string
	for _, body := range []string{
		`{"requirements": {"php": "8.1.27", "nodejs": "18.20.4"}}`,
		`{"requirements": {"graphicsmagick": "1.3.42"}}`,
	} {
		pinned = append(pinned, "env@"+s.resolveAPI(t, body).Digest)
	}
	var res struct{ Digest string }
	if err := json.Unmarshal([]byte(envreg(t, "resolve", "--registry", s.host, "--json", "php=8.2.32")), &res); err != nil {
		t.Fatal(err)
	}
	pinned = append(pinned, "env@"+res.Digest)
	before := sizeOf(t, storage)

	tags := distinctTags()
	for _, tag := range tags {
		pullIndex(t, s, "env:"+tag)
	}
	grown := sizeOf(t, storage)
	t.Logf("before the pulls: %+v; after %d distinct tags: %+v", before, len(tags), grown)
	if grown.documents < before.documents+2*len(tags)-3*2 {
		t.Fatalf("%d distinct tags pulled: %d documents before, %d after; want about %d more", len(tags), before.documents, grown.documents, 2*len(tags))
	}

	// Right away, gc keeps every composition: the default retention is 90
	// days. It runs while the server serves.
	out := gc("--grace", "0")
	if got := sizeOf(t, storage); got != grown || !strings.Contains(out, "gc: unmarked 0 digests of compositions") {
		t.Fatalf("gc with the default retention changed the store from %+v to %+v:\n%s", grown, got, out)
	}
	if _, errOut, err := envregResult(t, append(append([]string{"gc"}, storage...), "--retention", "23h")...); err == nil || !strings.Contains(errOut, "at least 24h0m0s") {
		t.Fatalf("gc --retention 23h: %v\n%s", err, errOut)
	}

	// Two days later, with a retention of one day.
	s.stop(t)
	out = gc("--retention", "24h", "--grace", "0", "--now", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339))
	if got := sizeOf(t, storage); got != before {
		t.Fatalf("after gc the store holds %+v, want %+v as before the pulls:\n%s", got, before, out)
	}
	t.Logf("gc two days later: %s", out[strings.Index(out, "gc: "):])
	if !strings.Contains(out, "composed manifest") || !strings.Contains(out, fmt.Sprintf("gc: deleted %d composed manifests no stack serves any more", grown.documents-before.documents)) {
		t.Errorf("gc output:\n%s", out)
	}

	// The pinned ones pull whole, and a collected tag composes again.
	s = start()
	for _, ref := range pinned {
		pullIndex(t, s, ref)
	}
	pullIndex(t, s, "env:"+tags[len(tags)-1])
}
