// Package testservers starts the real servers envreg's tests run against —
// redis-server and versitygw (an S3 gateway with a POSIX backend) — on free
// loopback ports, and stops them by PID when the test ends. Locally a
// missing binary skips the test with the install command; with CI=true it
// fails, because .ci/run installs both.
package testservers

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
)

// Find looks for a binary on PATH, then in GOBIN and GOPATH/bin. If it is
// missing, the test is skipped (locally) or fails (CI=true) naming install.
func Find(tb testing.TB, name, install string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	lines := strings.Split(string(out), "\n")
	var dirs []string
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		dirs = append(dirs, strings.TrimSpace(lines[0]))
	}
	if len(lines) > 1 {
		for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (install: %s)", name, install)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + "; CI=true requires it")
	}
	tb.Skip(msg)
	return ""
}

// Redis starts a private redis-server for the test and returns its
// redis:// URL. (End-to-end tests use envreg's default key prefix, so they
// never share a server: ENVREG_TEST_REDIS_ADDR is for the Redis backend's
// own tests, which isolate themselves by prefix.)
func Redis(tb testing.TB) string {
	tb.Helper()
	url, _ := RedisServer(tb)
	return url
}

// RedisServer is Redis, with a func that stops the server (by PID; safe to
// call more than once) for tests of an outage.
func RedisServer(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	bin := Find(tb, "redis-server", "apt-get install redis-server")
	dir := tb.TempDir()
	addr, stop := start(tb, "redis-server", func(addr string) *exec.Cmd {
		_, port, _ := net.SplitHostPort(addr)
		return exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", "")
	}, func(ctx context.Context, addr string) error {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	return "redis://" + addr + "/0", stop
}

// S3 is a running versitygw with one bucket.
type S3 struct {
	Endpoint          string // http://127.0.0.1:PORT
	Bucket            string
	Region            string
	AccessKey, Secret string
	stop              func()
}

// Stop stops the server (by PID; safe to call more than once), for tests of
// an outage.
func (s *S3) Stop() { s.stop() }

// URL returns an s3:// URL for envreg's --blobs flag under prefix.
func (s *S3) URL(prefix string) string {
	return "s3://" + s.Bucket + "/" + prefix + "?endpoint=" + s.Endpoint + "&region=" + s.Region
}

// Env returns the AWS credential variables for processes that use s.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.Secret}
}

// StartS3 starts versitygw with a POSIX backend in a temp dir and creates
// a bucket.
func StartS3(tb testing.TB) *S3 {
	tb.Helper()
	bin := Find(tb, "versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	s := &S3{Bucket: "envreg", Region: "us-east-1", AccessKey: "envreg-test-access", Secret: "envreg-test-secret-key"}
	root := filepath.Join(tb.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	addr, stop := start(tb, "versitygw", func(addr string) *exec.Cmd {
		return exec.Command(bin, "--access", s.AccessKey, "--secret", s.Secret, "--region", s.Region,
			"--port", addr, "--quiet", "posix", root)
	}, func(ctx context.Context, addr string) error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	s.Endpoint, s.stop = "http://"+addr, stop
	client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.Secret, ""), Region: s.Region})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		tb.Fatalf("creating bucket %s: %v", s.Bucket, err)
	}
	return s
}

// start runs newCmd on a free loopback port until ready answers, retrying
// a few ports (one can be taken between picking and binding), and stops
// the process by PID when the test ends. stop stops it earlier.
func start(tb testing.TB, name string, newCmd func(addr string) *exec.Cmd, ready func(ctx context.Context, addr string) error) (addr string, stop func()) {
	tb.Helper()
	var lastErr error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()

		cmd := newCmd(addr)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			tb.Fatalf("starting %s: %v", name, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		var once sync.Once
		stop = func() { once.Do(func() { _ = cmd.Process.Kill(); <-done }) }

		lastErr = waitReady(done, addr, ready)
		if lastErr == nil {
			tb.Cleanup(stop)
			return addr, stop
		}
		stop()
		lastErr = fmt.Errorf("%s on %s: %v\n%s", name, addr, lastErr, out.String())
	}
	tb.Fatal(lastErr)
	return "", nil
}

func waitReady(done <-chan struct{}, addr string, ready func(ctx context.Context, addr string) error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("exited before it was ready")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx, addr)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
