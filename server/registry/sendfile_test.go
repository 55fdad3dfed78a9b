package registry

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestBlobBody checks which requests get the *os.File itself (so net/http
// reaches sendfile) and which get it hidden behind a plain io.ReadSeeker
// (so net/http copies it).
func TestBlobBody(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const big, small = 50 << 20, 1 << 20
	for _, tc := range []struct {
		mode     SendfileMode
		remote   string
		size     int64
		rng      string
		sendfile bool
	}{
		{SendfileAuto, "127.0.0.1:40000", big, "", false},
		{SendfileAuto, "[::1]:40000", big, "", false},
		{SendfileAuto, "127.0.0.1:40000", small, "", true},
		{SendfileAuto, "127.0.0.1:40000", copyThreshold, "", true},
		{SendfileAuto, "127.0.0.1:40000", copyThreshold + 1, "", false},
		{SendfileAuto, "127.0.0.1:40000", big, "bytes=0-1048575", true},
		{SendfileAuto, "127.0.0.1:40000", big, "bytes=0-", false},
		{SendfileAuto, "127.0.0.1:40000", big, "bytes=-1000", true},
		{SendfileAuto, "127.0.0.1:40000", big, "bytes=0-9,20-29", false},
		{SendfileAuto, "10.1.2.3:40000", big, "", true},
		{SendfileAuto, "[2001:db8::1]:40000", big, "", true},
		{SendfileAlways, "127.0.0.1:40000", big, "", true},
		{SendfileAlways, "10.1.2.3:40000", big, "", true},
		{SendfileNever, "127.0.0.1:40000", small, "", false},
		{SendfileNever, "10.1.2.3:40000", big, "", false},
	} {
		reg := &Registry{sendfile: tc.mode}
		r := httptest.NewRequest("GET", "/v2/env/blobs/sha256:x", nil)
		r.RemoteAddr = tc.remote
		if tc.rng != "" {
			r.Header.Set("Range", tc.rng)
		}
		body := reg.blobBody(r, f, tc.size)
		if _, isFile := body.(*os.File); isFile != tc.sendfile {
			t.Errorf("%s, peer %s, %d bytes, Range %q: body is *os.File = %v, want %v",
				tc.mode, tc.remote, tc.size, tc.rng, isFile, tc.sendfile)
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			t.Errorf("%s, peer %s: body does not seek: %v", tc.mode, tc.remote, err)
		}
	}
	for _, s := range []string{"auto", "always", "never"} {
		m, err := ParseSendfileMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseSendfileMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseSendfileMode("on"); err == nil {
		t.Error(`ParseSendfileMode("on") succeeded`)
	}
}

func TestBodyLength(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   int64
	}{
		{"", 100},
		{"bytes=0-9", 10},
		{"bytes=10-19", 10},
		{"bytes=90-200", 10},
		{"bytes=90-", 10},
		{"bytes=-30", 30},
		{"bytes=-300", 100},
		{"bytes= 5-9", 5},
		{"bytes=100-", 100}, // unsatisfiable: net/http answers 416
		{"bytes=9-5", 100},
		{"bytes=0-9,20-29", 100},
		{"bytes=a-b", 100},
		{"items=0-9", 100},
		{"bytes=-", 100},
	} {
		if got := bodyLength(tc.header, 100); got != tc.want {
			t.Errorf("bodyLength(%q, 100) = %d, want %d", tc.header, got, tc.want)
		}
	}
}
