package redisstore_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/catalog/redisstore"
)

// testDocument is a document with distinct content per seed, addressed
// with alg.
func testDocument(seed string, alg digest.Algorithm) catalog.Document {
	data := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","annotations":{"seed":%q}}`, seed))
	return catalog.Document{MediaType: "application/vnd.oci.image.index.v1+json", Digest: alg.FromBytes(data), Data: data}
}

func putDocuments(t *testing.T, s *redisstore.Store, docs ...catalog.Document) {
	t.Helper()
	for _, d := range docs {
		if err := s.PutDocument(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// walkAll walks s and returns what fn saw, in order.
func walkAll(t *testing.T, s *redisstore.Store) []catalog.Document {
	t.Helper()
	var got []catalog.Document
	if err := s.WalkDocuments(t.Context(), func(d catalog.Document) error {
		got = append(got, d)
		return nil
	}); err != nil {
		t.Fatalf("WalkDocuments: %v", err)
	}
	return got
}

// walkOrder is fsstore's order: algorithm (sha256 before sha512), then
// digest.
func walkOrder(a, b catalog.Document) int {
	rank := func(d digest.Digest) int {
		if d.Algorithm() == digest.SHA256 {
			return 0
		}
		return 1
	}
	return cmp.Or(cmp.Compare(rank(a.Digest), rank(b.Digest)), cmp.Compare(a.Digest, b.Digest))
}

// checkWalk checks that got holds exactly want (each once, same media type
// and bytes) in walk order.
func checkWalk(t *testing.T, got, want []catalog.Document) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, walkOrder)
	seen := map[digest.Digest]int{}
	for _, d := range got {
		seen[d.Digest]++
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("document %s walked %d times", d, n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("walked %d documents, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Digest != w.Digest || g.MediaType != w.MediaType || string(g.Data) != string(w.Data) {
			t.Fatalf("document %d walked: %s %s %q\nwant %s %s %q", i, g.Digest, g.MediaType, g.Data, w.Digest, w.MediaType, w.Data)
		}
	}
}

// TestWalkDocuments: every document is walked once, with its bytes, in
// fsstore's order, across several batches; keys under the document
// prefix that are not documents are skipped; other prefixes' documents
// are not walked; an error from fn stops the walk.
func TestWalkDocuments(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	s := open(t, url, redisstore.WithKeyPrefix(prefix))
	other := open(t, url, redisstore.WithKeyPrefix(newPrefix(t, url)))

	if got := walkAll(t, s); len(got) != 0 {
		t.Fatalf("an empty store walked %d documents", len(got))
	}

	var want []catalog.Document
	for i := range 230 { // more than one SCAN page and several read batches
		alg := digest.SHA256
		if i%10 == 0 {
			alg = digest.SHA512
		}
		want = append(want, testDocument(strconv.Itoa(i), alg))
	}
	putDocuments(t, s, want...)
	// The other store holds one of the same documents and its own.
	putDocuments(t, other, want[1], testDocument("other", digest.SHA256), testDocument("other", digest.SHA512))

	c := rawClient(t, url)
	for _, k := range []string{"doc:not-a-digest", "doc:md5:d41d8cd98f00b204e9800998ecf8427e", "doc:sha256:ABC", "doc:"} {
		if err := c.Set(t.Context(), prefix+k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	checkWalk(t, walkAll(t, s), want)

	stop := errors.New("stop")
	calls := 0
	if err := s.WalkDocuments(t.Context(), func(catalog.Document) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("WalkDocuments with failing fn = %v after %d calls, want the fn's error after 1", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.WalkDocuments(ctx, func(catalog.Document) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("WalkDocuments with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestWalkDocumentsCorrupt: a document whose bytes no longer match the
// digest in its key, or that lacks a field, stops the walk with an error
// naming it and its key; the documents of other prefixes do not matter.
func TestWalkDocumentsCorrupt(t *testing.T) {
	url := needRedis(t)
	prefix := newPrefix(t, url)
	s := open(t, url, redisstore.WithKeyPrefix(prefix))
	docs := []catalog.Document{testDocument("a", digest.SHA256), testDocument("b", digest.SHA256), testDocument("c", digest.SHA512)}
	putDocuments(t, s, docs...)
	c := rawClient(t, url)

	// Corrupt a document of another prefix first: s does not read it.
	otherPrefix := newPrefix(t, url)
	other := open(t, url, redisstore.WithKeyPrefix(otherPrefix))
	putDocuments(t, other, docs[0])
	if err := c.HSet(t.Context(), otherPrefix+"doc:"+docs[0].Digest.String(), "data", "tampered").Err(); err != nil {
		t.Fatal(err)
	}
	checkWalk(t, walkAll(t, s), docs)

	victim := docs[1]
	key := prefix + "doc:" + victim.Digest.String()
	if err := c.HSet(t.Context(), key, "data", strings.Replace(string(victim.Data), `"b"`, `"B"`, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	err := s.WalkDocuments(t.Context(), func(catalog.Document) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "document "+victim.Digest.String()+" is corrupt") || !strings.Contains(err.Error(), key) {
		t.Errorf("WalkDocuments over a corrupt document = %v, want an error naming %s and its key", err, victim.Digest)
	}

	if err := c.HSet(t.Context(), key, "data", string(victim.Data)).Err(); err != nil {
		t.Fatal(err)
	}
	checkWalk(t, walkAll(t, s), docs)
	if err := c.HDel(t.Context(), key, "mediaType").Err(); err != nil {
		t.Fatal(err)
	}
	err = s.WalkDocuments(t.Context(), func(catalog.Document) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "lacks its media type") || !strings.Contains(err.Error(), key) {
		t.Errorf("WalkDocuments over a document without media type = %v, want an error naming its key", err)
	}

	// A document key that is not a hash.
	if err := c.Del(t.Context(), key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(t.Context(), key, string(victim.Data), 0).Err(); err != nil {
		t.Fatal(err)
	}
	err = s.WalkDocuments(t.Context(), func(catalog.Document) error { return nil })
	if err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("WalkDocuments over a document key that is a string = %v, want an error naming its key", err)
	}
}

// TestWalkDocumentsGlobPrefix: a key prefix holding SCAN's glob
// characters matches only itself. Unquoted, the pattern of
// "P*?[x]\:" would miss its own keys (the backslash escapes ':') and take
// those of "P-zzx:".
func TestWalkDocumentsGlobPrefix(t *testing.T) {
	url := needRedis(t)
	base := strings.TrimSuffix(newPrefix(t, url), ":")
	c := rawClient(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "*"+base+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	globby := open(t, url, redisstore.WithKeyPrefix(base+`*?[x]\:`))
	lookalike := open(t, url, redisstore.WithKeyPrefix(base+"-zzx:"))
	mine := []catalog.Document{testDocument("mine", digest.SHA256)}
	putDocuments(t, globby, mine...)
	putDocuments(t, lookalike, testDocument("theirs", digest.SHA256))
	checkWalk(t, walkAll(t, globby), mine)
}

func TestWalkDocumentsClosed(t *testing.T) {
	url := needRedis(t)
	s, err := redisstore.Open(t.Context(), url, redisstore.WithKeyPrefix(newPrefix(t, url)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.WalkDocuments(t.Context(), func(catalog.Document) error { return nil }); err == nil {
		t.Error("WalkDocuments on a closed store succeeded")
	}
}

// TestWalkDocumentsCluster walks the documents of a three-master Redis
// Cluster: they spread over the masters (their keys have no hash tag), and
// every master is scanned.
func TestWalkDocumentsCluster(t *testing.T) {
	if redisServer == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no redis-server in PATH (CI=true)")
		}
		t.Skip("no redis-server in PATH to start a cluster with")
	}
	addrs := startCluster(t, 3)
	url := "redis+cluster://" + strings.Join(addrs, ",")
	s := open(t, url)
	var want []catalog.Document
	for i := range 60 {
		want = append(want, testDocument("cluster-"+strconv.Itoa(i), digest.SHA256))
	}
	putDocuments(t, s, want...)

	// The documents are on every master.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		n, err := c.DBSize(t.Context()).Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("master %s holds no key; the documents did not spread", addr)
		}
	}
	checkWalk(t, walkAll(t, s), want)
}

// startCluster starts n redis-server processes in cluster mode, splits
// the slots between them and waits until the cluster is up. They are
// killed when t ends.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var clients []*redis.Client
	for i := range n {
		dir := t.TempDir()
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		busPort, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		out := &lockedBuffer{}
		cmd := exec.Command(redisServer,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", "", "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = serverProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		waitFor(t, fmt.Sprintf("redis-server %d on %s", i, addr), func(ctx context.Context) error {
			select {
			case <-done:
				return fmt.Errorf("exited: %s", out.String())
			default:
			}
			return c.Ping(ctx).Err()
		})
		const slots = 16384
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := c.Do(t.Context(), "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", addr, err)
		}
		if i > 0 {
			if err := clients[0].Do(t.Context(), "CLUSTER", "MEET", "127.0.0.1", port, busPort).Err(); err != nil {
				t.Fatalf("CLUSTER MEET %s: %v", addr, err)
			}
		}
		addrs = append(addrs, addr)
		clients = append(clients, c)
	}
	for i, c := range clients {
		waitFor(t, "cluster node "+addrs[i], func(ctx context.Context) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				return errors.New(info)
			}
			return nil
		})
	}
	return addrs
}

// waitFor retries check until it succeeds, for at most 20 seconds.
func waitFor(t *testing.T, what string, check func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after 20s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
