package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/catalogtest"
	"github.com/envreg/envreg/catalog/redisstore"
)

func open(t *testing.T, url string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	url := needRedis(t)
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		return open(t, url, redisstore.WithKeyPrefix(newPrefix(t, url)))
	})
}

// TestShared runs the two-handle tests on two Stores on one Redis and key
// prefix: two replicas, each with its own connections and cache.
func TestShared(t *testing.T) {
	url := needRedis(t)
	catalogtest.RunShared(t, func(t *testing.T) (catalog.Store, catalog.Store) {
		prefix := newPrefix(t, url)
		return open(t, url, redisstore.WithKeyPrefix(prefix)), open(t, url, redisstore.WithKeyPrefix(prefix))
	})
}

var snapshot = catalogtest.Snapshot

func publish(t *testing.T, s catalog.Publisher, r catalog.Release) {
	t.Helper()
	if err := s.Publish(t.Context(), r, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls s until cond holds for its snapshot, for at most
// catalogtest.Visibility.
func eventually(t *testing.T, s catalog.Reader, what string, cond func(*catalog.Snapshot) bool) *catalog.Snapshot {
	t.Helper()
	deadline := time.Now().Add(catalogtest.Visibility)
	for {
		snap := snapshot(t, s)
		if cond(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not visible after %v (generation %d)", what, catalogtest.Visibility, snap.Generation)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reconnect is how long a Store may take to reach a Redis that came back:
// once as many dials failed as the pool has connections, go-redis stops
// dialing and probes once a second (internal/pool tryDial), so the first
// successful dial comes up to a second after the restart, and then the
// usual Visibility applies.
const reconnect = time.Second + catalogtest.Visibility

// eventuallyOK is eventually for a Store whose Redis is coming back:
// errors count as "not yet", for up to reconnect.
func eventuallyOK(t *testing.T, s catalog.Reader, what string, cond func(*catalog.Snapshot) bool) {
	t.Helper()
	deadline := time.Now().Add(reconnect)
	for {
		snap, err := s.Snapshot(t.Context())
		if err == nil && cond(snap) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not visible after %v (last error: %v)", what, reconnect, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func atGeneration(g uint64) func(*catalog.Snapshot) bool {
	return func(s *catalog.Snapshot) bool { return s.Generation == g }
}

// TestLayout checks the keys the package doc promises.
func TestLayout(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	s := open(t, url, redisstore.WithKeyPrefix(prefix))
	doc := catalogtest.LayoutFixture(t, s)

	c := rawClient(t, url)
	ctx := t.Context()
	tag := "{" + prefix + "}"
	if got := c.Get(ctx, tag+"generation").Val(); got != "2" {
		t.Errorf("generation = %q, want 2", got)
	}
	if got := c.Get(ctx, tag+"epoch").Val(); len(got) != 16 {
		t.Errorf("epoch = %q, want 16 hex digits", got)
	}
	var r catalog.Release
	if err := json.Unmarshal([]byte(c.Get(ctx, tag+"rel:php:8.2.36").Val()), &r); err != nil || r.Version.String() != "8.2.36+deb12u1" {
		t.Errorf("release key: version %v, %v; want 8.2.36+deb12u1", r.Version, err)
	}
	idx := c.ZRangeWithScores(ctx, tag+"releases", 0, -1).Val()
	if want := []redis.Z{{Member: "php:8.2.36", Score: 1}}; !slices.Equal(idx, want) {
		t.Errorf("release index = %v, want %v", idx, want)
	}
	var st catalog.Stack
	if err := json.Unmarshal([]byte(c.HGet(ctx, tag+"stacks", "web").Val()), &st); err != nil || st.Name != "web" {
		t.Errorf("stacks hash field web: %+v, %v", st, err)
	}
	got := c.HGetAll(ctx, prefix+"doc:"+doc.Digest.String()).Val()
	if got["mediaType"] != doc.MediaType || got["data"] != string(doc.Data) || len(got) != 2 {
		t.Errorf("document hash = %q", got)
	}
	var keys []string
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	slices.Sort(keys)
	want := []string{prefix + "doc:" + doc.Digest.String(), tag + "epoch", tag + "generation", tag + "rel:php:8.2.36", tag + "releases", tag + "stacks"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys:\n got %q\nwant %q", keys, want)
	}
}

// TestNotification shows that pub/sub alone makes a change visible: the
// other Store's poller is as good as off.
func TestNotification(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	a := open(t, url, redisstore.WithKeyPrefix(prefix))
	b := open(t, url, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(time.Hour))
	snapshot(t, b)
	for i := range 3 {
		publish(t, a, catalogtest.Release("php", fmt.Sprintf("8.%d.0", i), "linux/amd64"))
		eventually(t, b, "a publish", atGeneration(uint64(i+1)))
	}
}

// TestLostNotification shows that the poller alone makes a change visible
// when every notification is lost, and that without it nothing would.
func TestLostNotification(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	a := open(t, url, redisstore.WithKeyPrefix(prefix))
	b := open(t, url, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(100*time.Millisecond))
	deaf := open(t, url, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(time.Hour))
	redisstore.DropNotifications(b, true)
	redisstore.DropNotifications(deaf, true)
	snapshot(t, b)
	snapshot(t, deaf)

	publish(t, a, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	eventually(t, b, "a publish without its notification", atGeneration(1))
	if g := snapshot(t, deaf).Generation; g != 0 {
		t.Errorf("a Store that neither polls nor hears notifications is at generation %d; the test's drop hook does not work", g)
	}
}

// TestResubscribe kills a Store's subscription connection and publishes at
// once: the notification is lost or arrives after go-redis resubscribed,
// and either way the Store sees the change without polling, because a
// resubscription triggers a check.
func TestResubscribe(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	name := strings.TrimSuffix(prefix, ":")
	var logs lockedBuffer
	a := open(t, url, redisstore.WithKeyPrefix(prefix))
	b := open(t, url+"?client_name="+name, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(time.Hour),
		redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	snapshot(t, b)

	c := rawClient(t, url)
	list, err := c.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for line := range strings.Lines(list) {
		if strings.Contains(line, " name="+name+" ") {
			id = strings.TrimPrefix(strings.Fields(line)[0], "id=")
		}
	}
	if id == "" {
		t.Fatalf("no pub/sub connection named %s in\n%s", name, list)
	}
	if err := c.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
		t.Fatal(err)
	}
	publish(t, a, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	eventually(t, b, "a publish during a reconnection", atGeneration(1))
	if !strings.Contains(logs.String(), "resubscribed") {
		t.Errorf("no resubscription logged:\n%s", logs.String())
	}
}

// TestConcurrentHandles publishes from many goroutines through two Stores
// into three releases, every publish adding one platform. Each publish is
// one change, so the generation must equal the number of publishes (none
// lost, none counted twice), and every snapshot a reader sees must hold
// exactly as many layers as its generation says (reloads are consistent
// with the generation they report).
func TestConcurrentHandles(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	stores := []*redisstore.Store{
		open(t, url, redisstore.WithKeyPrefix(prefix)),
		open(t, url, redisstore.WithKeyPrefix(prefix)),
	}
	releases := []struct{ name, version string }{{"php", "8.2.0"}, {"php", "8.3.0"}, {"nodejs", "20.0.0"}}
	const writers, each = 16, 6

	done := make(chan struct{})
	var readers sync.WaitGroup
	for _, s := range stores {
		readers.Go(func() {
			var last uint64
			for {
				select {
				case <-done:
					return
				default:
				}
				snap, err := s.Snapshot(t.Context())
				if err != nil {
					t.Errorf("Snapshot: %v", err)
					return
				}
				if snap.Generation < last {
					t.Errorf("generation went from %d back to %d", last, snap.Generation)
				}
				last = snap.Generation
				if n := layers(snap); uint64(n) != snap.Generation {
					t.Errorf("snapshot at generation %d holds %d layers", snap.Generation, n)
					return
				}
			}
		})
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			for k := range each {
				rel := releases[(w+k)%len(releases)]
				r := catalogtest.Release(rel.name, rel.version, fmt.Sprintf("linux/w%dk%d", w, k))
				if err := s.Publish(t.Context(), r, catalog.PublishOptions{}); err != nil {
					t.Errorf("Publish %s %s: %v", r.ID(), r.Layers[0].Platform, err)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()

	const total = writers * each
	c := rawClient(t, url)
	if got := c.Get(t.Context(), "{"+prefix+"}generation").Val(); got != strconv.Itoa(total) {
		t.Errorf("generation in Redis = %s after %d publishes", got, total)
	}
	for i, s := range stores {
		snap := eventually(t, s, "all publishes", atGeneration(total))
		if n := layers(snap); n != total {
			t.Errorf("store %d: %d layers after %d publishes", i, n, total)
		}
	}
	idx := c.ZRangeWithScores(t.Context(), "{"+prefix+"}releases", 0, -1).Val()
	if len(idx) != len(releases) || idx[len(idx)-1].Score != total {
		t.Errorf("release index = %v, want %d members, the last changed at generation %d", idx, len(releases), total)
	}
}

func layers(s *catalog.Snapshot) int {
	n := 0
	for _, r := range s.AllReleases() {
		n += len(r.Layers)
	}
	return n
}

// deleteKeys deletes every key of prefix, as a FLUSHDB or a restart
// without persistence would.
func deleteKeys(t *testing.T, c *redis.Client, prefix string) {
	t.Helper()
	for _, pattern := range []string{"{" + prefix + "}*", prefix + "*"} {
		iter := c.Scan(t.Context(), 0, pattern, 100).Iterator()
		for iter.Next(t.Context()) {
			if err := c.Del(t.Context(), iter.Val()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDataLoss deletes the catalog behind the Stores' backs and publishes
// as many changes as before, so the generation is back where it was: the
// epoch tells the Stores that their cache belongs to lost data.
func TestDataLoss(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	a := open(t, url, redisstore.WithKeyPrefix(prefix))
	b := open(t, url, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(0)) // checks on every call
	publish(t, a, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	publish(t, a, catalogtest.Release("php", "8.3.0", "linux/amd64"))
	if g := snapshot(t, b).Generation; g != 2 {
		t.Fatalf("generation = %d, want 2", g)
	}

	deleteKeys(t, rawClient(t, url), prefix)
	publish(t, a, catalogtest.Release("nodejs", "20.0.0", "linux/amd64"))
	publish(t, a, catalogtest.Release("nodejs", "22.0.0", "linux/amd64"))
	for name, s := range map[string]catalog.Store{"publisher": a, "other": b} {
		snap := snapshot(t, s)
		if names := snap.Names(); snap.Generation != 2 || !slices.Equal(names, []string{"nodejs"}) {
			t.Errorf("%s after the data loss: generation %d, packages %q; want 2, [nodejs]", name, snap.Generation, names)
		}
	}
}

// TestCorruptData writes bad release values behind the Store's back: a
// snapshot is refused with the key named, Open too, and the Store recovers
// once the value is fixed.
func TestCorruptData(t *testing.T) {
	url := needRedis(t)
	good := catalogtest.Release("php", "8.2.36", "linux/amd64")
	goodJSON, _ := json.Marshal(good)
	misplaced, _ := json.Marshal(catalogtest.Release("php", "9.0.0", "linux/amd64"))
	for _, tc := range []struct{ name, value, want string }{
		{"not JSON", `{"name":`, "rel:php:8.2.36"},
		{"invalid", `{"name":"php","version":"8.2.36","layers":[]}`, "no layers"},
		{"misplaced", string(misplaced), "belongs in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := newPrefix(t, url)
			tag := "{" + prefix + "}"
			s := open(t, url, redisstore.WithKeyPrefix(prefix), redisstore.WithPollInterval(0))
			publish(t, s, good)
			before := snapshot(t, s)
			c := rawClient(t, url)
			write := func(value string) { // as a writer would: value, generation, index
				t.Helper()
				gen := c.Incr(t.Context(), tag+"generation").Val()
				c.Set(t.Context(), tag+"rel:php:8.2.36", value, 0)
				c.ZAdd(t.Context(), tag+"releases", redis.Z{Score: float64(gen), Member: "php:8.2.36"})
			}

			write(tc.value)
			_, err := s.Snapshot(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Snapshot over a bad release: error = %v, want one mentioning %q", err, tc.want)
			}
			if _, err := redisstore.Open(t.Context(), url, redisstore.WithKeyPrefix(prefix)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open over a bad release: error = %v, want one mentioning %q", err, tc.want)
			}
			if before.Releases("php")[0].Layers[0].Platform.Architecture != "amd64" {
				t.Error("an earlier snapshot changed")
			}

			write(string(goodJSON))
			if snap := snapshot(t, s); snap.Generation != 3 || len(snap.Releases("php")) != 1 {
				t.Errorf("after the fix: generation %d, %d php releases; want 3, 1", snap.Generation, len(snap.Releases("php")))
			}
		})
	}
}

// TestRedisRestart stops the Redis under two Stores and starts it again
// from its saved data: meanwhile the Stores fail fast with errors (not
// "not found", not "exists"), and afterwards they recover by themselves.
func TestRedisRestart(t *testing.T) {
	if redisServer == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no redis-server in PATH (CI=true): this test stops and starts its own")
		}
		t.Skip("no redis-server in PATH: this test stops and starts its own")
	}
	dir := t.TempDir()
	srv, err := startServer(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	url := srv.url()
	opts := []redisstore.Option{redisstore.WithPollInterval(50 * time.Millisecond), redisstore.WithMaxStaleness(200 * time.Millisecond)}
	a, b := open(t, url, opts...), open(t, url, opts...)
	publish(t, a, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	doc := catalog.Document{MediaType: "application/vnd.oci.image.index.v1+json", Data: []byte(`{}`)}
	doc.Digest = digest.FromBytes(doc.Data)
	if err := a.PutDocument(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
	eventually(t, b, "a publish", atGeneration(1))
	snapshot(t, a) // a has the catalog cached: serving it is up to the staleness rule

	if err := rawClient(t, url).Save(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	stopped := time.Now()

	addr := "127.0.0.1:" + strconv.Itoa(srv.port)
	deadline := time.Now().Add(2 * time.Second)
	var downErr error
	for {
		if _, downErr = a.Snapshot(t.Context()); downErr != nil {
			if !strings.Contains(downErr.Error(), addr) {
				t.Errorf("Snapshot error %q does not name the Redis %s", downErr, addr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Snapshot still serves 2s after Redis stopped, beyond its maximum staleness")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Snapshot failed %v after the stop: %v", time.Since(stopped), downErr)
	start := time.Now()
	if err := a.Publish(t.Context(), catalogtest.Release("php", "8.3.0", "linux/amd64"), catalog.PublishOptions{}); err == nil || errors.Is(err, catalog.ErrExists) {
		t.Errorf("Publish while Redis is down: error = %v", err)
	}
	if _, err := a.Document(t.Context(), doc.Digest); err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Document while Redis is down: error = %v, want a connection error", err)
	}
	// Every kind of call reports the outage as such (the registry answers
	// it 503 with Retry-After, not 500).
	_, docErr := a.Document(t.Context(), doc.Digest)
	_, tagsErr := a.Tags(t.Context(), "library/php")
	_, markErr := a.Composed(t.Context(), "env", doc.Digest)
	for what, err := range map[string]error{"Snapshot": downErr, "Document": docErr, "Tags": tagsErr, "Composed": markErr,
		"Publish":     a.Publish(t.Context(), catalogtest.Release("php", "8.3.0", "linux/amd64"), catalog.PublishOptions{}),
		"PutManifest": a.PutManifest(t.Context(), "library/php", catalog.ManifestRecord{Digest: doc.Digest, MediaType: doc.MediaType, Size: 2})} {
		if !errors.Is(err, catalog.ErrUnavailable) {
			t.Errorf("%s while Redis is down: %v, want an error wrapping catalog.ErrUnavailable", what, err)
		}
	}

	t.Logf("Publish and Document failed in %v", time.Since(start))
	srv2, err := startServer(dir, srv.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.stop)
	eventuallyOK(t, a, "the catalog after the restart", atGeneration(1))
	if got, err := a.Document(t.Context(), doc.Digest); err != nil || string(got.Data) != string(doc.Data) {
		t.Errorf("Document after the restart = %+v, %v", got, err)
	}
	publish(t, a, catalogtest.Release("php", "8.3.0", "linux/amd64"))
	eventually(t, b, "a publish after the restart", atGeneration(2))
}

func TestClose(t *testing.T) {
	url := needRedis(t)
	s, err := redisstore.Open(t.Context(), url, redisstore.WithKeyPrefix(newPrefix(t, url)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Snapshot(t.Context()); !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("Snapshot after Close: %v, want an error wrapping catalog.ErrUnavailable", err)
	}
	if err := s.Publish(t.Context(), catalogtest.Release("php", "8.2.36", "linux/amd64"), catalog.PublishOptions{}); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if _, err := s.Document(t.Context(), digest.FromString("x")); err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Document after Close: error = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		opts      []redisstore.Option
		want      string
	}{
		{"no server", "redis://u:s3cret@127.0.0.1:" + strconv.Itoa(port) + "/0?dial_timeout=1s", nil, "127.0.0.1:" + strconv.Itoa(port)},
		{"bad scheme", "http://u:s3cret@127.0.0.1:6379", nil, "unknown scheme"},
		{"bad option", "redis://u:s3cret@127.0.0.1:6379/0?bogus=1", nil, "bogus"},
		{"bad prefix", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithKeyPrefix("a{b}")}, "prefix"},
		{"empty prefix", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithKeyPrefix("")}, "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(t.Context(), tc.url, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// Open's context bounds Open only: a Store keeps working after it ends.
func TestOpenContext(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := redisstore.Open(ctx, url, redisstore.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cancel()
	other := open(t, url, redisstore.WithKeyPrefix(prefix))
	publish(t, other, catalogtest.Release("php", "8.2.36", "linux/amd64"))
	eventually(t, s, "a publish", atGeneration(1))
}
