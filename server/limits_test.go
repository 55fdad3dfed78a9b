package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// recordingWriter records what each ReadFrom call is handed.
type recordingWriter struct {
	bytes.Buffer
	srcs []io.Reader
}

func (w *recordingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.srcs = append(w.srcs, r)
	return w.Buffer.ReadFrom(r)
}

// TestReadFromChunked: a body goes out in chunks of stallChunk, the
// deadline moves before each, the caller's LimitedReader is used up as by
// io.Copy, and every chunk reaches the writer as an *io.LimitedReader over
// the *os.File itself, which is what sendfile(2) needs.
func TestReadFromChunked(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*stallChunk+1000)/16)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := int64(len(data) - 10) // as http.ServeContent limits a body
	lr := &io.LimitedReader{R: f, N: want}
	var dst recordingWriter
	extends := 0
	n, err := readFromChunked(&dst, lr, func() { extends++ })
	if err != nil || n != want || lr.N != 0 || !bytes.Equal(dst.Bytes(), data[:want]) {
		t.Fatalf("copied %d (%v), left %d, want %d and 0", n, err, lr.N, want)
	}
	if len(dst.srcs) != 4 || extends != 4 {
		t.Errorf("%d chunks, %d extensions; want 4 and 4", len(dst.srcs), extends)
	}
	for i, src := range dst.srcs {
		l, ok := src.(*io.LimitedReader)
		if !ok || l.R != f {
			t.Errorf("chunk %d: %T, not a LimitedReader over the file", i, src)
		}
	}

	// A reader without a limit is copied to its end.
	var all recordingWriter
	if n, err := readFromChunked(&all, bytes.NewReader(data), func() {}); err != nil || n != int64(len(data)) {
		t.Errorf("unlimited: %d, %v", n, err)
	}
}

// TestLimitListener: the listener holds at most max connections; a
// closed connection gives its slot back.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			l.connState(c, http.StateNew)
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	if got := l.open.Load(); got != 2 {
		t.Errorf("open %d, want 2", got)
	}
	select {
	case c := <-accepted:
		t.Fatalf("a third connection was accepted (%v) while two were open", c.RemoteAddr())
	default:
	}
	first.Close()
	l.connState(first, http.StateClosed)
	third := <-accepted // accepted once a slot is free
	if got := l.open.Load(); got != 2 || third == nil {
		t.Errorf("open %d after one closed and one more came, want 2", got)
	}
	second.Close()
	third.Close()
}
