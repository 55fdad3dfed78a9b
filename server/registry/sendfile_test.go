package registry

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestBlobBody checks which peers get the *os.File itself (so net/http
// reaches sendfile) and which get it hidden behind a plain io.ReadSeeker
// (so net/http copies it).
func TestBlobBody(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		mode     SendfileMode
		remote   string
		sendfile bool
	}{
		{SendfileAuto, "127.0.0.1:40000", false},
		{SendfileAuto, "[::1]:40000", false},
		{SendfileAuto, "10.1.2.3:40000", true},
		{SendfileAuto, "[2001:db8::1]:40000", true},
		{SendfileAlways, "127.0.0.1:40000", true},
		{SendfileAlways, "10.1.2.3:40000", true},
		{SendfileNever, "127.0.0.1:40000", false},
		{SendfileNever, "10.1.2.3:40000", false},
	} {
		reg := &Registry{sendfile: tc.mode}
		r := httptest.NewRequest("GET", "/v2/env/blobs/sha256:x", nil)
		r.RemoteAddr = tc.remote
		body := reg.blobBody(r, f)
		if _, isFile := body.(*os.File); isFile != tc.sendfile {
			t.Errorf("%s, peer %s: body is *os.File = %v, want %v", tc.mode, tc.remote, isFile, tc.sendfile)
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
