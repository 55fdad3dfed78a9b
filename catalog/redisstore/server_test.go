package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis the tests use: ENVREG_TEST_REDIS_ADDR (host:port, DB 0 of it),
// or else a redis-server that TestMain starts on a free loopback port and
// stops at the end. Every test works under its own key prefix, so a shared
// server is fine.
var (
	redisURL    string // redis://host:port/0, or "" when there is none
	noRedis     string // why there is none
	redisServer string // path of the redis-server binary, or ""
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	redisServer, _ = exec.LookPath("redis-server")
	if addr := os.Getenv("ENVREG_TEST_REDIS_ADDR"); addr != "" {
		redisURL = "redis://" + addr + "/0"
		return m.Run()
	}
	if redisServer == "" {
		noRedis = "ENVREG_TEST_REDIS_ADDR is not set and there is no redis-server in PATH"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "redisstore-test-")
	if err != nil {
		noRedis = err.Error()
		return m.Run()
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(dir, 0)
	if err != nil {
		noRedis = err.Error()
		return m.Run()
	}
	defer srv.stop()
	redisURL = srv.url()
	return m.Run()
}

// needRedis returns the URL of the test Redis, or skips the test with the
// reason there is none; with CI=true, where Redis is part of the job, it
// fails instead.
func needRedis(t *testing.T) string {
	t.Helper()
	if redisURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis to test against (CI=true): %s", noRedis)
		}
		t.Skipf("no Redis to test against: %s", noRedis)
	}
	return redisURL
}

// server is a redis-server process of the tests, without persistence
// except an explicit SAVE into its directory.
type server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process exited
}

func (s *server) url() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// startServer starts redis-server in dir on port (0: a free one) and waits
// until it answers PING.
func startServer(dir string, port int) (*server, error) {
	if redisServer == "" {
		return nil, errors.New("no redis-server in PATH")
	}
	var lastErr error
	for range 5 { // a free port can be taken before redis-server binds it
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s := &server{dir: dir, port: p, out: &lockedBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(redisServer,
			"--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", "")
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		s.cmd.SysProcAttr = serverProcAttr()
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting redis-server: %w", err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(10 * time.Second); lastErr == nil {
			return s, nil
		}
		s.stop()
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func (s *server) waitReady(timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, s.out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d does not answer: %v\n%s", s.port, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server (by its PID) and waits for it to exit.
func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rawClient is a plain go-redis client on url for looking behind a
// Store's back, closed by t.Cleanup.
func rawClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// newPrefix returns a key prefix no other test uses and deletes its keys
// when t ends (the server may be shared).
func newPrefix(t *testing.T, url string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "envregtest-" + hex.EncodeToString(b[:]) + ":"
	c := rawClient(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{"{" + prefix + "}*", prefix + "*"} {
			iter := c.Scan(ctx, 0, pattern, 100).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
	})
	return prefix
}
