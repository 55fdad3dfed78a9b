package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/layerstoretest"
	"github.com/envreg/envreg/layerstore/s3"
)

// The tests run against a real S3 server: versitygw with its POSIX backend
// in a temp directory, started by TestMain on a free loopback port and
// killed at the end. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Without it the tests skip, except when CI=true, where they fail.
const (
	installHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	testAccess  = "envreg-test-access"
	testSecret  = "envreg-test-secret-key"
	testBucket  = "envreg-test"
	testRegion  = "us-east-1"
)

var (
	endpoint    string // http://127.0.0.1:PORT of the running versitygw
	backendRoot string // its POSIX root directory (one subdirectory per bucket)
	skipReason  string // set when versitygw is unavailable outside CI
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	bin, err := findVersitygw()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "layerstore/s3: %v; CI=true requires it (%s)\n", err, installHint)
			return 1
		}
		skipReason = fmt.Sprintf("%v; install it with: %s", err, installHint)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "envreg-s3-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stop, err := startVersitygw(bin, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "layerstore/s3: starting versitygw: %v\n", err)
		return 1
	}
	defer stop()

	// Open reads the standard AWS variables; these tests exercise that path.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": testAccess, "AWS_SECRET_ACCESS_KEY": testSecret} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"} {
		os.Unsetenv(k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := newRawClient().MakeBucket(ctx, testBucket, minio.MakeBucketOptions{Region: testRegion}); err != nil {
		fmt.Fprintf(os.Stderr, "layerstore/s3: creating bucket %s: %v\n", testBucket, err)
		return 1
	}
	return m.Run()
}

// findVersitygw looks on PATH, then in GOBIN and GOPATH/bin.
func findVersitygw() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("versitygw not on PATH, and go env failed: %v", err)
	}
	// One line each, GOBIN first (often empty).
	lines := strings.Split(string(out), "\n")
	var dirs []string
	if gobin := strings.TrimSpace(lines[0]); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if len(lines) > 1 {
		for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found on PATH or in %s", strings.Join(dirs, ", "))
}

// startVersitygw starts versitygw on a free loopback port with its POSIX
// backend under dir, waits until it accepts connections, and returns a
// function that kills it (by its PID) and waits for it.
func startVersitygw(bin, dir string) (stop func(), err error) {
	backendRoot = filepath.Join(dir, "root")
	if err := os.Mkdir(backendRoot, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "versitygw.log")
	// The port is free when we pick it, but another process may take it
	// before versitygw binds: try a few.
	for attempt := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := l.Addr().String()
		l.Close()

		logf, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "--access", testAccess, "--secret", testSecret, "--region", testRegion,
			"--port", addr, "--quiet", "posix", backendRoot)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); logf.Close() }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		if err := waitListening(addr, exited, 20*time.Second); err != nil {
			stop()
			logs, _ := os.ReadFile(logPath)
			if attempt < 2 {
				continue
			}
			return nil, fmt.Errorf("%v\n%s", err, logs)
		}
		endpoint = "http://" + addr
		return stop, nil
	}
	panic("unreachable")
}

func waitListening(addr string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited early: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not listen on %s within %s", addr, timeout)
}

func requireServer(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// newRawClient is a plain S3 client on the test server, to look behind the
// store's back.
func newRawClient() *minio.Client {
	u, _ := url.Parse(endpoint)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(testAccess, testSecret, ""),
		Region: testRegion,
	})
	if err != nil {
		panic(err)
	}
	return c
}

var storeCount atomic.Int64

// storeURL returns the URL of a new, empty store: its own prefix in the
// test bucket.
func storeURL(extra string) (rawURL, prefix string) {
	prefix = fmt.Sprintf("stores/t%04d", storeCount.Add(1))
	rawURL = fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s%s", testBucket, prefix, url.QueryEscape(endpoint), testRegion, extra)
	return rawURL, prefix + "/"
}

// newStore opens a new, empty store; extra is appended to the URL query.
func newStore(t *testing.T, extra string, opts ...s3.Option) (*s3.Store, string) {
	t.Helper()
	requireServer(t)
	rawURL, prefix := storeURL(extra)
	s, err := s3.Open(t.Context(), rawURL, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	return s, prefix
}

func TestContract(t *testing.T) {
	requireServer(t)
	layerstoretest.Run(t, func(t *testing.T) layerstore.Store {
		s, _ := newStore(t, "")
		return s
	})
}

// listKeys lists every object key under prefix, and every incomplete
// multipart upload (as "upload:KEY").
func listKeys(t *testing.T, prefix string) []string {
	t.Helper()
	c := newRawClient()
	var keys []string
	for obj := range c.ListObjectsIter(t.Context(), testBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("listing %s: %v", prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	for up := range c.ListIncompleteUploads(t.Context(), testBucket, prefix, true) {
		if up.Err != nil {
			t.Fatalf("listing multipart uploads under %s: %v", prefix, up.Err)
		}
		keys = append(keys, "upload:"+up.Key)
	}
	return keys
}

// TestFailedPutLeavesNothing checks that a failed Put leaves no object at
// all: neither under blobs/ nor a temp object under _uploads/, nor an
// incomplete multipart upload; for single PUTs and multipart uploads.
func TestFailedPutLeavesNothing(t *testing.T) {
	requireServer(t)
	const part = s3.MinPartSize
	small, dSmall := layerstoretest.Blob(1, 1<<20)
	big, dBig := layerstoretest.Blob(2, 2*part+12345) // three parts
	otherBig, _ := layerstoretest.Blob(3, len(big))
	tests := []struct {
		name string
		put  func(s *s3.Store) error
		want func(t *testing.T, err error)
	}{
		{"reader fails midway", func(s *s3.Store) error {
			return s.Put(t.Context(), dSmall, int64(len(small)), layerstoretest.FailingReader(small, len(small)/2))
		}, wantReaderError},
		{"reader fails midway, multipart", func(s *s3.Store) error {
			return s.Put(t.Context(), dBig, int64(len(big)), layerstoretest.FailingReader(big, part+100))
		}, wantReaderError},
		{"reader fails midway, unknown size", func(s *s3.Store) error {
			return s.Put(t.Context(), dBig, -1, layerstoretest.FailingReader(big, part+100))
		}, wantReaderError},
		{"digest mismatch", func(s *s3.Store) error {
			other, _ := layerstoretest.Blob(4, len(small))
			return s.Put(t.Context(), dSmall, int64(len(other)), bytes.NewReader(other))
		}, wantMismatch},
		{"digest mismatch, multipart", func(s *s3.Store) error {
			return s.Put(t.Context(), dBig, int64(len(otherBig)), bytes.NewReader(otherBig))
		}, wantMismatch},
		{"digest mismatch, unknown size", func(s *s3.Store) error {
			return s.Put(t.Context(), dBig, -1, io.MultiReader(bytes.NewReader(otherBig)))
		}, wantMismatch},
		{"too short", func(s *s3.Store) error {
			return s.Put(t.Context(), dSmall, int64(len(small))+1, bytes.NewReader(small))
		}, wantMismatch},
		{"too long, multipart", func(s *s3.Store) error {
			return s.Put(t.Context(), dBig, int64(len(big))-1, bytes.NewReader(big))
		}, wantMismatch},
		// With a size that is a multiple of the part size the client reads
		// exactly that many bytes and never sees the end of the input: the
		// check after the upload must catch what follows.
		{"too long, size a multiple of the part size", func(s *s3.Store) error {
			return s.Put(t.Context(), digest.FromBytes(big[:2*part]), 2*part, bytes.NewReader(big))
		}, wantMismatch},
		{"digest mismatch, size a multiple of the part size", func(s *s3.Store) error {
			return s.Put(t.Context(), digest.FromBytes(big[:2*part]), 2*part, bytes.NewReader(otherBig))
		}, wantMismatch},
		{"context cancelled midway", func(s *s3.Store) error {
			ctx, cancel := context.WithCancel(t.Context())
			r := &cancelAfter{r: bytes.NewReader(big), n: part + 100, cancel: cancel}
			return s.Put(ctx, dBig, int64(len(big)), r)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put error = %v, want context.Canceled", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, prefix := newStore(t, "", s3.WithPartSize(part))
			err := tc.put(s)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			tc.want(t, err)
			if keys := listKeys(t, prefix); len(keys) != 0 {
				t.Errorf("after a failed Put the store holds %q", keys)
			}
		})
	}
}

func wantReaderError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, layerstoretest.ErrReader) {
		t.Errorf("Put error = %v, want it to wrap the reader's error", err)
	}
}

func wantMismatch(t *testing.T, err error) {
	t.Helper()
	var mismatch *layerstore.DigestMismatchError
	if !errors.As(err, &mismatch) {
		t.Errorf("Put error = %v, want *layerstore.DigestMismatchError", err)
	}
}

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if len(p) > c.n && c.n > 0 {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

// recorder is an http.RoundTripper that records requests and counts the
// response body bytes the client consumed.
type recorder struct {
	mu       sync.Mutex
	reqs     []recorded
	bodyRead atomic.Int64
}

type recorded struct {
	method, path, rawQuery string
	header                 http.Header
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone()})
	rec.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &rec.bodyRead}
	return resp, nil
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	rec.reqs = nil
	rec.mu.Unlock()
	rec.bodyRead.Store(0)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestRangedReadAfterSeek checks that a Seek followed by a Read fetches
// from the new offset with a Range request instead of downloading the blob.
func TestRangedReadAfterSeek(t *testing.T) {
	rec := &recorder{}
	s, _ := newStore(t, "", s3.WithTransport(rec))
	data, d := layerstoretest.Blob(20, 4<<20)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rec.reset()

	rc, size, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if size != int64(len(data)) {
		t.Fatalf("size = %d, want %d", size, len(data))
	}
	for _, off := range []int64{3<<20 + 7, 10, 4<<20 - 1000} {
		if _, err := rc.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1000)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("reading at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:off+1000]) {
			t.Errorf("content at %d differs", off)
		}
	}

	var ranges []string
	for _, r := range rec.requests() {
		if r.method != http.MethodGet {
			continue
		}
		rg := r.header.Get("Range")
		if rg == "" {
			t.Errorf("GET %s without Range: the whole blob was requested", r.path)
		}
		ranges = append(ranges, rg)
	}
	want := []string{fmt.Sprintf("bytes=%d-", 3<<20+7), "bytes=10-", fmt.Sprintf("bytes=%d-", 4<<20-1000)}
	if !slices.Equal(ranges, want) {
		t.Errorf("GET ranges = %q, want %q", ranges, want)
	}
	// Three reads of 1000 bytes; the client reads the rest of an
	// open-ended range only as far as asked.
	if n := rec.bodyRead.Load(); n > 64<<10 {
		t.Errorf("client consumed %d response body bytes for 3 reads of 1000 bytes", n)
	}
}

// TestMultipart stores a blob larger than the part size, so that it is
// uploaded in parts, with its size known and unknown.
func TestMultipart(t *testing.T) {
	const part = s3.MinPartSize
	data, d := layerstoretest.Blob(30, 4*part+4321) // 5 parts: 20 MiB + a tail
	for _, tc := range []struct {
		name string
		size int64
	}{{"known size", int64(len(data))}, {"unknown size", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			s, prefix := newStore(t, "", s3.WithPartSize(part), s3.WithTransport(rec))
			// A reader with neither Len, Seek nor ReadAt, as an HTTP body.
			if err := s.Put(t.Context(), d, tc.size, io.MultiReader(bytes.NewReader(data))); err != nil {
				t.Fatalf("Put: %v", err)
			}
			parts := 0
			for _, r := range rec.requests() {
				q, _ := url.ParseQuery(r.rawQuery)
				if r.method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId") {
					parts++
				}
			}
			if parts != 5 {
				t.Errorf("uploaded %d parts, want 5", parts)
			}
			checkBlob(t, s, d, data)
			if keys := listKeys(t, prefix+"_uploads/"); len(keys) != 0 {
				t.Errorf("temp objects left after Put: %q", keys)
			}
		})
	}
}

// TestComposeCommit takes the commit path for blobs above the single-copy
// limit (5 GiB in production, lowered here).
func TestComposeCommit(t *testing.T) {
	const part = s3.MinPartSize
	rec := &recorder{}
	s, prefix := newStore(t, "", s3.WithPartSize(part), s3.WithTransport(rec))
	// 12 MiB above an 8 MiB copy limit: two part copies of 6 MiB (each
	// must be at least S3's 5 MiB minimum part size).
	s3.SetMaxCopySize(s, 8<<20)
	data, d := layerstoretest.Blob(31, 12<<20+99)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	var copies []string
	for _, r := range rec.requests() {
		if rg := r.header.Get("X-Amz-Copy-Source-Range"); rg != "" {
			copies = append(copies, rg)
		}
	}
	if len(copies) < 2 {
		t.Errorf("ranged part copies = %q, want the blob committed by several UploadPartCopy requests", copies)
	}
	checkBlob(t, s, d, data)
	if keys := listKeys(t, prefix+"_uploads/"); len(keys) != 0 {
		t.Errorf("temp objects left after Put: %q", keys)
	}
}

func checkBlob(t *testing.T, s *s3.Store, d digest.Digest, want []byte) {
	t.Helper()
	rc, size, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Errorf("Open: %d bytes (size %d, digest %s), want %d bytes", len(got), size, digest.FromBytes(got), len(want))
	}
}

func TestRedirectURL(t *testing.T) {
	s, _ := newStore(t, "&presign=15m")
	data, d := layerstoretest.Blob(40, 100_000)
	if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	u, err := s.RedirectURL(t.Context(), d)
	if err != nil {
		t.Fatalf("RedirectURL: %v", err)
	}
	if !strings.HasPrefix(u, endpoint+"/") || !strings.Contains(u, "X-Amz-Expires=900") {
		t.Errorf("RedirectURL = %q, want a URL on %s valid for 900s", u, endpoint)
	}

	// What a client does with the redirect: no credentials, just the URL.
	get := func(rangeHeader string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := get(""); code != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("GET presigned URL: %d, %d bytes (digest %s); want 200 and the blob", code, len(body), digest.FromBytes(body))
	}
	if code, body := get("bytes=1000-1999"); code != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000]) {
		t.Errorf("ranged GET presigned URL: %d, %d bytes; want 206 and bytes 1000-1999", code, len(body))
	}

	_, missing := layerstoretest.Blob(41, 10)
	if _, err := s.RedirectURL(t.Context(), missing); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("RedirectURL(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.RedirectURL(t.Context(), "sha256:../../etc/passwd"); err == nil || errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("RedirectURL(invalid) error = %v, want an invalid-digest error", err)
	}

	// Off by default: the registry serves the bytes itself.
	plain, _ := newStore(t, "")
	if u, err := plain.RedirectURL(t.Context(), d); u != "" || err != nil {
		t.Errorf("RedirectURL without presign = %q, %v; want \"\", nil", u, err)
	}
}

func TestWalkDelete(t *testing.T) {
	s, prefix := newStore(t, "")
	type blob struct {
		d    digest.Digest
		size int64
	}
	var want []blob
	for i := range 3 {
		data, d := layerstoretest.Blob(uint64(50+i), 1000+i)
		if err := s.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want = append(want, blob{d, int64(len(data))})
	}
	data512 := []byte("addressed with sha512")
	d512 := digest.SHA512.FromBytes(data512)
	if err := s.Put(t.Context(), d512, int64(len(data512)), bytes.NewReader(data512)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b blob) int { return strings.Compare(string(a.d), string(b.d)) })
	want = append(want, blob{d512, int64(len(data512))})

	// Objects that are not blobs are skipped.
	c := newRawClient()
	for _, k := range []string{"blobs/sha256/not-a-digest", "blobs/md5/d41d8cd98f00b204e9800998ecf8427e", "blobs/stray", "_uploads/put-x"} {
		if _, err := c.PutObject(t.Context(), testBucket, prefix+k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	walk := func() []blob {
		t.Helper()
		var got []blob
		if err := s.Walk(t.Context(), func(d digest.Digest, size int64) error {
			got = append(got, blob{d, size})
			return nil
		}); err != nil {
			t.Fatalf("Walk: %v", err)
		}
		return got
	}
	if got := walk(); !slices.Equal(got, want) {
		t.Errorf("Walk = %v, want %v", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(t.Context(), func(digest.Digest, int64) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Walk with failing fn = %v after %d calls, want the fn's error after 1", err, calls)
	}

	if err := s.Delete(t.Context(), want[1].d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(t.Context(), want[1].d); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), want[1].d); !errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), "sha256:.."); err == nil || errors.Is(err, layerstore.ErrNotFound) {
		t.Errorf("Delete(invalid) = %v, want an invalid-digest error", err)
	}
	if got := walk(); !slices.Equal(got, slices.Delete(slices.Clone(want), 1, 2)) {
		t.Errorf("Walk after Delete = %v", got)
	}
}

// TestStaleUploadsRemoved checks that Open removes temp objects older than
// an hour and keeps younger ones (a Put running in another replica). The
// age is set on the backend file, which versitygw's POSIX backend reports
// as the object's LastModified.
func TestStaleUploadsRemoved(t *testing.T) {
	requireServer(t)
	rawURL, prefix := storeURL("")
	c := newRawClient()
	for _, k := range []string{"put-old", "put-young"} {
		if _, err := c.PutObject(t.Context(), testBucket, prefix+"_uploads/"+k, strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(backendRoot, testBucket, filepath.FromSlash(prefix), "_uploads", "put-old"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Open(t.Context(), rawURL); err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "_uploads/put-young"}
	if got := listKeys(t, prefix); !slices.Equal(got, want) {
		t.Errorf("after Open the store holds %q, want %q", got, want)
	}
}

func TestOpenBucketMissing(t *testing.T) {
	requireServer(t)
	_, err := s3.Open(t.Context(), "s3://no-such-bucket?region=us-east-1&endpoint="+url.QueryEscape(endpoint))
	if err == nil || !strings.Contains(err.Error(), `"no-such-bucket" does not exist`) {
		t.Errorf("Open of a missing bucket: error = %v, want it to name the bucket", err)
	}
}

func TestOpenCredentials(t *testing.T) {
	requireServer(t)
	rawURL, _ := storeURL("")
	if _, err := s3.Open(t.Context(), rawURL, s3.WithCredentials(testAccess, "wrong-secret", "")); err == nil {
		t.Error("Open with a wrong secret succeeded")
	}
	if _, err := s3.Open(t.Context(), rawURL, s3.WithCredentials(testAccess, testSecret, "")); err != nil {
		t.Errorf("Open WithCredentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if _, err := s3.Open(t.Context(), rawURL); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials: error = %v, want it to name AWS_ACCESS_KEY_ID", err)
	}
}

// TestOpenInvalid covers URLs and options refused before any request.
func TestOpenInvalid(t *testing.T) {
	const ep = "&endpoint=http://127.0.0.1:1"
	tests := []struct {
		name, url string
		opts      []s3.Option
		wantIn    string
	}{
		{"scheme", "https://bucket?region=r" + ep, nil, "scheme must be s3"},
		{"credentials in URL", "s3://AKIA:hunter2@bucket?region=r" + ep, nil, "credentials do not belong"},
		{"bucket name", "s3://Bad_Bucket?region=r" + ep, nil, "Bad_Bucket"},
		{"no bucket", "s3:///prefix?region=r" + ep, nil, "bucket"},
		{"dot-dot prefix", "s3://bucket/a/../b?region=r" + ep, nil, "prefix"},
		{"empty prefix segment", "s3://bucket/a//b?region=r" + ep, nil, "prefix"},
		{"odd prefix", "s3://bucket/a%20b?region=r" + ep, nil, "prefix"},
		{"unknown parameter", "s3://bucket?endpint=http://h", nil, `unknown parameter "endpint"`},
		{"repeated parameter", "s3://bucket?region=a&region=b" + ep, nil, `"region" given 2 times`},
		{"endpoint scheme", "s3://bucket?endpoint=ftp://h", nil, "http:// or https://"},
		{"endpoint path", "s3://bucket?endpoint=http://h/x", nil, "scheme://host[:port] only"},
		{"endpoint host", "s3://bucket?endpoint=http://", nil, "no host"},
		{"presign syntax", "s3://bucket?presign=forever" + ep, nil, "presign"},
		{"presign zero", "s3://bucket?presign=0s" + ep, nil, "presign"},
		{"presign too long", "s3://bucket?presign=200h" + ep, nil, "presign"},
		{"pathstyle", "s3://bucket?pathstyle=maybe" + ep, nil, "pathstyle"},
		{"part size too small", "s3://bucket?region=r" + ep, []s3.Option{s3.WithPartSize(1 << 20)}, "part size"},
		{"part size too large", "s3://bucket?region=r" + ep, []s3.Option{s3.WithPartSize(6 << 30)}, "part size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3.Open(t.Context(), tc.url, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Open(%q) error = %v, want it to mention %q", tc.url, err, tc.wantIn)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}
