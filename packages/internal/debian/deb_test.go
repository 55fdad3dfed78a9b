package debian_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/envreg/envreg/packages/internal/debian"
	"github.com/envreg/envreg/packages/internal/debian/debtest"
)

func hello(t *testing.T) string {
	return debtest.Build(t, t.TempDir(), debtest.Package{
		Name: "hello", Version: "1:1.0-1", Depends: "libc6",
		Files: []debtest.File{
			{Path: "usr/bin/hello", Mode: 0o755, Content: "#!/bin/sh\necho hello\n"},
			{Path: "usr/bin/hi", Link: "hello"},
		},
		Postinst: "#!/bin/sh\ntouch /etc/hello-postinst-ran\n",
	})
}

func TestReadDeb(t *testing.T) {
	d, err := debian.ReadDeb(t.Context(), hello(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Control.Get("Package") != "hello" || d.Control.Get("Version") != "1:1.0-1" || d.Control.Get("Depends") != "libc6" {
		t.Errorf("control = %s", d.Control.Bytes())
	}
	if !strings.Contains(string(d.MD5Sums), "  usr/bin/hello\n") {
		t.Errorf("md5sums = %q", d.MD5Sums)
	}
	if _, err := debian.ReadDeb(t.Context(), "/nonexistent.deb"); err == nil || !strings.Contains(err.Error(), "/nonexistent.deb") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestOpenData(t *testing.T) {
	r, err := debian.OpenData(t.Context(), hello(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	// Closing before reading the padding after the tar end marker must not
	// report dpkg-deb's SIGPIPE.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names, " ")
	if want := "./ ./usr/ ./usr/bin/ ./usr/bin/hello ./usr/bin/hi"; got != want {
		t.Errorf("entries = %s, want %s (no maintainer scripts, no control files)", got, want)
	}

	bad := t.TempDir() + "/bad.deb"
	if err := os.WriteFile(bad, []byte("!<arch>\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = debian.OpenData(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r)
	if err := r.Close(); err == nil || !strings.Contains(err.Error(), "bad.deb") {
		t.Errorf("Close of a broken .deb = %v, want an error naming it", err)
	}
}

func TestVerify(t *testing.T) {
	file := hello(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	p := debian.Package{Name: "hello", Version: "1:1.0-1", Architecture: "amd64", File: file,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	if err := debian.Verify(p); err != nil {
		t.Fatalf("Verify of the right file: %v", err)
	}

	data[len(data)/2] ^= 0xff // same size, different content
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = debian.Verify(p)
	var ce *debian.ChecksumError
	if !errors.As(err, &ce) || ce.Package != "hello" || ce.Want != p.SHA256 || ce.Got == p.SHA256 {
		t.Fatalf("Verify of a corrupted file = %v, want a *ChecksumError", err)
	}
	for _, want := range []string{"debian package hello 1:1.0-1 (amd64)", file, "signed archive index says " + p.SHA256} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !debian.IsChecksumError(err) {
		t.Error("IsChecksumError = false")
	}

	p.File += ".missing"
	if err := debian.Verify(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify of a missing file = %v, want fs.ErrNotExist", err)
	}
}
