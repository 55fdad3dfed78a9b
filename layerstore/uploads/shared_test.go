package uploads_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog/redisstore"
	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/layerstore/s3"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/layerstore/uploads/uploadstest"
)

// The shared sessions run against a real redis-server and a real S3
// server (versitygw), started once per test on loopback ports. Each
// replica is a Shared over its own Redis and S3 handles, as two envreg
// processes would be; what they share is the servers and the key prefix.

// backend is one Redis + S3 pair of servers.
type backend struct {
	redisURL string
	s3       *testservers.S3
	n        int
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	return &backend{redisURL: testservers.Redis(t), s3: testservers.StartS3(t)}
}

// space is one installation on the backend: a key prefix and a bucket
// prefix, fresh for each subtest.
type space struct {
	b      *backend
	prefix string
}

func (b *backend) space() space {
	b.n++
	return space{b: b, prefix: fmt.Sprintf("t%d", b.n)}
}

// replica is one process's view of a space.
type replica struct {
	*uploads.Shared
	redis *redisstore.Store
	blobs *s3.Store
}

func (sp space) replica(t *testing.T, rt http.RoundTripper, opts ...uploads.Option) *replica {
	t.Helper()
	rs, err := redisstore.Open(t.Context(), sp.b.redisURL, redisstore.WithKeyPrefix(sp.prefix+":"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	s3opts := []s3.Option{s3.WithCredentials(sp.b.s3.AccessKey, sp.b.s3.Secret, "")}
	if rt != nil {
		s3opts = append(s3opts, s3.WithTransport(rt))
	}
	blobs, err := s3.Open(t.Context(), sp.b.s3.URL(sp.prefix), s3opts...)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]uploads.Option{uploads.WithMaxAge(time.Hour)}, opts...)
	return &replica{Shared: uploads.NewShared(rs.UploadRecords(), blobs.UploadChunks(), blobs, opts...), redis: rs, blobs: blobs}
}

// keys lists the objects under the space's bucket prefix + sub.
func (sp space) keys(t *testing.T, sub string) []string {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(sp.b.s3.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(sp.b.s3.AccessKey, sp.b.s3.Secret, ""), Region: sp.b.s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj := range c.ListObjectsIter(t.Context(), sp.b.s3.Bucket, minio.ListObjectsOptions{Prefix: sp.prefix + "/" + sub, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

func TestShared(t *testing.T) {
	b := newBackend(t)
	t.Run("Contract", func(t *testing.T) {
		uploadstest.Run(t, func(t *testing.T, maxSize int64) uploadstest.Fixture {
			r := b.space().replica(t, nil, uploads.WithMaxSize(maxSize))
			return uploadstest.Fixture{Sessions: r, Sweeper: r, Blobs: r.blobs, MaxAge: time.Hour}
		})
	})
	t.Run("Replicas", func(t *testing.T) { testReplicas(t, b.space()) })
	t.Run("ConcurrentReplicas", func(t *testing.T) { testConcurrentReplicas(t, b.space()) })
	t.Run("CrashedWriter", func(t *testing.T) { testCrashedWriter(t, b.space()) })
	t.Run("LeaseRenewed", func(t *testing.T) { testLeaseRenewed(t, b.space()) })
	t.Run("ComposeServerSide", func(t *testing.T) { testComposeServerSide(t, b.space()) })
	t.Run("SmallChunksStream", func(t *testing.T) { testSmallChunksStream(t, b.space()) })
	t.Run("SweepOrphans", func(t *testing.T) { testSweepOrphans(t, b.space()) })
	t.Run("RecordExpires", func(t *testing.T) { testRecordExpires(t, b.space()) })
}

func chunk(start int64, b []byte) uploads.Chunk {
	return uploads.Chunk{Start: start, Size: int64(len(b)), Body: bytes.NewReader(b)}
}

func randomBlob(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b, digest.FromBytes(b)
}

// testReplicas: every step of one upload on another replica.
func testReplicas(t *testing.T, sp space) {
	ctx := t.Context()
	a, b := sp.replica(t, nil), sp.replica(t, nil)
	blob, d := randomBlob(t, 3000)
	s, err := a.Start(ctx, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "team/app", s.ID, chunk(0, blob[:1000])); err != nil {
		t.Fatalf("chunk 1 on b: %v", err)
	}
	if _, err := a.Append(ctx, "team/app", s.ID, chunk(1000, blob[1000:2000])); err != nil {
		t.Fatalf("chunk 2 on a: %v", err)
	}
	var re *uploads.RangeError
	if _, err := b.Append(ctx, "team/app", s.ID, chunk(1000, blob[1000:2000])); !errors.As(err, &re) || re.Size != 2000 {
		t.Fatalf("chunk 2 again on b: %v, want a RangeError at 2000", err)
	}
	if got, err := b.Get(ctx, "team/app", s.ID); err != nil || got.Size != 2000 {
		t.Fatalf("status on b: %+v, %v", got, err)
	}
	if n, err := a.Finish(ctx, "team/app", s.ID, chunk(2000, blob[2000:]), d); err != nil || n != 3000 {
		t.Fatalf("Finish on a: %d, %v", n, err)
	}
	rc, _, err := b.blobs.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, blob) {
		t.Fatal("the blob differs from what was uploaded")
	}
	if keys := sp.keys(t, "_sessions/"); len(keys) != 0 {
		t.Errorf("chunks left after Finish: %q", keys)
	}
}

// testConcurrentReplicas: two replicas write one session at once; one
// wins, the other gets ErrInUse before reading its body.
func testConcurrentReplicas(t *testing.T, sp space) {
	ctx := t.Context()
	a, b := sp.replica(t, nil), sp.replica(t, nil)
	s, err := a.Start(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Append(ctx, "r", s.ID, uploads.Chunk{Start: 0, Size: -1, Body: &signalReader{r: pr, started: started}})
		errc <- err
	}()
	<-started
	read := false
	if _, err := b.Append(ctx, "r", s.ID, uploads.Chunk{Start: 0, Size: 1, Body: readFlag{&read}}); !errors.Is(err, uploads.ErrInUse) || read {
		t.Fatalf("concurrent Append on b: %v (body read: %v), want ErrInUse without reading", err, read)
	}
	if err := b.Cancel(ctx, "r", s.ID); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("concurrent Cancel on b: %v, want ErrInUse", err)
	}
	pw.Write([]byte("abc"))
	pw.Close()
	if err := <-errc; err != nil {
		t.Fatalf("the first writer: %v", err)
	}
	if got, err := b.Get(ctx, "r", s.ID); err != nil || got.Size != 3 {
		t.Fatalf("status after the first writer: %+v, %v", got, err)
	}
}

type readFlag struct{ read *bool }

func (f readFlag) Read([]byte) (int, error) { *f.read = true; return 0, io.EOF }

type signalReader struct {
	r       io.Reader
	started chan struct{}
	once    sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.started) })
	return s.r.Read(p)
}

// testCrashedWriter: a replica that holds a session and stops renewing
// (crashed, or hung) loses it when its lease expires; another replica
// continues, and what the first one writes afterwards is not committed.
func testCrashedWriter(t *testing.T, sp space) {
	ctx := t.Context()
	a := sp.replica(t, nil)
	later := func() time.Time { return time.Now().Add(uploads.DefaultLease + time.Second) }
	b := sp.replica(t, nil, uploads.WithClock(later))
	s, err := a.Start(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Append(ctx, "r", s.ID, uploads.Chunk{Start: 0, Size: -1, Body: &signalReader{r: pr, started: started}})
		errc <- err
	}()
	<-started
	// b's clock is past a's lease.
	if _, err := b.Append(ctx, "r", s.ID, chunk(0, []byte("bbb"))); err != nil {
		t.Fatalf("Append on b after a's lease expired: %v", err)
	}
	pw.Write([]byte("aaaa"))
	pw.Close()
	if err := <-errc; !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("a's late commit: %v, want ErrInUse", err)
	}
	d := digest.FromString("bbbccc")
	if _, err := b.Finish(ctx, "r", s.ID, chunk(3, []byte("ccc")), d); err != nil {
		t.Fatalf("Finish on b: %v", err)
	}
	rc, size, err := b.blobs.Open(ctx, d)
	if err != nil || size != 6 {
		t.Fatalf("blob: %d, %v", size, err)
	}
	rc.Close()
	if keys := sp.keys(t, "_sessions/"); len(keys) != 0 {
		t.Errorf("chunks left: %q (a's uncommitted chunk must be deleted)", keys)
	}
}

// testLeaseRenewed: a chunk that takes longer than the lease keeps it
// (renewed every third of the lease time) and commits.
func testLeaseRenewed(t *testing.T, sp space) {
	ctx := t.Context()
	const lease = 300 * time.Millisecond
	a := sp.replica(t, nil, uploads.WithLease(lease))
	s, err := a.Start(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	key := sp.prefix + ":upload:" + s.ID
	c := redisClient(t, sp)
	pr, pw := io.Pipe()
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Append(ctx, "r", s.ID, uploads.Chunk{Start: 0, Size: -1, Body: &signalReader{r: pr, started: started}})
		errc <- err
	}()
	<-started
	until := func() time.Time {
		var rec struct{ Until time.Time }
		b, err := c.Get(ctx, key).Bytes()
		if err != nil || json.Unmarshal(b, &rec) != nil {
			t.Fatalf("reading the record: %v", err)
		}
		return rec.Until
	}
	// Wait for two renewals: the lease then ends after the first one would.
	first := until()
	deadline := time.Now().Add(20 * time.Second)
	for renewals, last := 0, first; renewals < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the lease was not renewed while the chunk streamed")
		}
		if u := until(); u.After(last) {
			renewals, last = renewals+1, u
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := sp.replica(t, nil)
	if _, err := b.Append(ctx, "r", s.ID, chunk(0, []byte("b"))); !errors.Is(err, uploads.ErrInUse) {
		t.Fatalf("Append on b while a renews its lease: %v, want ErrInUse", err)
	}
	pw.Write([]byte("abc"))
	pw.Close()
	if err := <-errc; err != nil {
		t.Fatalf("the renewed writer's commit: %v", err)
	}
	if got, err := b.Get(ctx, "r", s.ID); err != nil || got.Size != 3 {
		t.Fatalf("status: %+v, %v", got, err)
	}
}

// recorder counts the S3 requests of one replica.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD path copy-source"
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path+" "+req.Header.Get("X-Amz-Copy-Source"))
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs
	r.reqs = nil
	return reqs
}

// count returns how many requests have method and contain sub.
func count(reqs []string, method, sub string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, sub) {
			n++
		}
	}
	return n
}

// testComposeServerSide: the common push (one PATCH with the whole blob)
// and chunks of the advertised minimum are committed by server-side
// copies: no chunk is read back through the replica.
func testComposeServerSide(t *testing.T, sp space) {
	ctx := t.Context()
	rec := &recorder{}
	r := sp.replica(t, rec)
	if got := r.Limits().MinChunk; got != s3.MinPartSize {
		t.Fatalf("MinChunk = %d, want S3's minimum part size %d", got, s3.MinPartSize)
	}
	for _, sizes := range [][]int{{300 << 10}, {s3.MinPartSize, s3.MinPartSize, 1234}} {
		var blob []byte
		for _, n := range sizes {
			b, _ := randomBlob(t, n)
			blob = append(blob, b...)
		}
		d := digest.FromBytes(blob)
		s, err := r.Start(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for _, n := range sizes {
			if _, err := r.Append(ctx, "r", s.ID, chunk(int64(off), blob[off:off+n])); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		rec.take()
		if _, err := r.Finish(ctx, "r", s.ID, uploads.Chunk{Start: -1}, d); err != nil {
			t.Fatal(err)
		}
		reqs := rec.take()
		if n := count(reqs, http.MethodGet, "/_sessions/"); n != 0 {
			t.Errorf("%v: Finish read %d chunks back: %q", sizes, n, reqs)
		}
		if n := count(reqs, http.MethodPut, "/_sessions/"); n != len(sizes) {
			t.Errorf("%v: Finish made %d server-side copies of chunks, want %d: %q", sizes, n, len(sizes), reqs)
		}
		rc, size, err := r.blobs.Open(ctx, d)
		if err != nil || size != int64(len(blob)) {
			t.Fatalf("blob: %d, %v", size, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, blob) {
			t.Fatalf("%v: composed blob differs", sizes)
		}
	}
}

// testSmallChunksStream: chunks below the minimum are streamed through
// the blob store's verifying Put.
func testSmallChunksStream(t *testing.T, sp space) {
	ctx := t.Context()
	rec := &recorder{}
	r := sp.replica(t, rec)
	blob, d := randomBlob(t, 3000)
	s, _ := r.Start(ctx, "r")
	for i := range 3 {
		if _, err := r.Append(ctx, "r", s.ID, chunk(int64(i*1000), blob[i*1000:(i+1)*1000])); err != nil {
			t.Fatal(err)
		}
	}
	rec.take()
	if _, err := r.Finish(ctx, "r", s.ID, uploads.Chunk{Start: -1}, d); err != nil {
		t.Fatal(err)
	}
	if n := count(rec.take(), http.MethodGet, "/_sessions/"); n != 3 {
		t.Errorf("Finish read %d chunks, want 3 (streamed)", n)
	}
}

// testSweepOrphans: the chunks of a session whose record is gone (it
// expired in Redis) are removed by Sweep on any replica; a live session's
// are kept.
func testSweepOrphans(t *testing.T, sp space) {
	ctx := t.Context()
	a, b := sp.replica(t, nil), sp.replica(t, nil)
	live, _ := a.Start(ctx, "r")
	gone, _ := a.Start(ctx, "r")
	for _, s := range []uploads.Session{live, gone} {
		if _, err := a.Append(ctx, "r", s.ID, chunk(0, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	c := redisClient(t, sp)
	if err := c.Del(ctx, sp.prefix+":upload:"+gone.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Sweep(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("Sweep removed %d (%v), want 1", n, err)
	}
	keys := sp.keys(t, "_sessions/")
	if len(keys) != 1 || !strings.Contains(keys[0], live.ID) {
		t.Fatalf("chunks after the sweep: %q, want the live session's only", keys)
	}
	// No chunk is ever a blob: the blob store's walk sees none.
	if err := b.blobs.Walk(ctx, func(d digest.Digest, _ int64) error {
		return fmt.Errorf("walk found %s", d)
	}); err != nil {
		t.Fatal(err)
	}
}

func redisClient(t *testing.T, sp space) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(sp.b.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// testRecordExpires: the record lives for the maximum idle age after its
// last write, so Redis removes abandoned sessions by itself.
func testRecordExpires(t *testing.T, sp space) {
	ctx := t.Context()
	r := sp.replica(t, nil, uploads.WithMaxAge(10*time.Minute))
	s, _ := r.Start(ctx, "r")
	c := redisClient(t, sp)
	ttl, err := c.PTTL(ctx, sp.prefix+":upload:"+s.ID).Result()
	if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("record TTL %v (%v), want about 10m", ttl, err)
	}
}
