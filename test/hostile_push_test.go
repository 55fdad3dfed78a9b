package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Hostile package layers pushed as the red team of issue 15 pushed them:
// go-containerregistry's remote.Write of a one-layer image to
// packages/<name>:<version> on the real server.

// layerImage is a linux/amd64 image whose single gzip layer holds the tar
// entries write produces.
func layerImage(t *testing.T, write func(tw *tar.Writer) error) v1.Image {
	t.Helper()
	return gzLayerImage(t, tarGz(t, write))
}

// gzLayerImage is a linux/amd64 image whose single layer is data, a gzip
// tar.
func gzLayerImage(t *testing.T, data []byte) v1.Image {
	t.Helper()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tarGz is the gzip tar of the entries write produces.
func tarGz(t *testing.T, write func(tw *tar.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := write(tw); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// envWithLink writes usr/bin/env (0755, root) and a hard link to it whose
// own header is link.
func envWithLink(link tar.Header) func(tw *tar.Writer) error {
	return func(tw *tar.Writer) error {
		content := "#!/bin/sh\nexec /usr/bin/env.real \"$@\"\n"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/env", Mode: 0o755, Size: int64(len(content))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, content); err != nil {
			return err
		}
		link.Typeflag, link.Linkname = tar.TypeLink, "usr/bin/env"
		return tw.WriteHeader(&link)
	}
}

// refusedPush checks that err is 400 MANIFEST_INVALID mentioning every
// string of want, and that the server registered and tagged nothing.
func refusedPush(t *testing.T, s *server, repo, version string, err error, want ...string) {
	t.Helper()
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusBadRequest || len(te.Errors) == 0 || te.Errors[0].Code != transport.ManifestInvalidErrorCode {
		t.Fatalf("push %s:%s: %v, want 400 MANIFEST_INVALID", repo, version, err)
	}
	for _, w := range want {
		if !strings.Contains(te.Errors[0].Message, w) {
			t.Errorf("refusal %q does not mention %q", te.Errors[0].Message, w)
		}
	}
	if _, err := remote.Head(ref(t, s, repo+":"+version)); err == nil {
		t.Errorf("the refused manifest is tagged %s:%s", repo, version)
	}
	pkg := strings.TrimPrefix(repo, "packages/")
	if _, err := os.Stat(filepath.Join(s.data, "catalog", "releases", pkg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused push left a release of %s in the catalog: %v", pkg, err)
	}
	resp, body := s.get(t, "/v2/env/manifests/"+pkg+"-"+version, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("env:%s-%s after the refused push: %d %s", pkg, version, resp.StatusCode, body)
	}
}

// TestPushHardLinkHeader: a hard link is one inode with its target, and
// extractors that apply a link's own header (Python's tarfile, containerd
// and moby chmod and chown the link's path) change the target. A link
// header that would give the target another mode (setuid above all),
// owner or extended attributes is refused like the same header on a
// regular file; a link whose header matches its target is accepted.
func TestPushHardLinkHeader(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "data"))
	cases := []struct {
		name string
		link tar.Header
		want []string
	}{
		{"setuid link header", tar.Header{Name: "usr/bin/env-suid", Mode: 0o4755}, []string{"usr/bin/env-suid", "setuid"}},
		{"setgid link header", tar.Header{Name: "usr/bin/env-sgid", Mode: 0o2755}, []string{"usr/bin/env-sgid", "setgid"}},
		{"capability on the link", tar.Header{Name: "usr/bin/env-cap", Mode: 0o755, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}}, []string{"usr/bin/env-cap", "security.capability"}},
		{"other mode", tar.Header{Name: "usr/bin/env-777", Mode: 0o777}, []string{"usr/bin/env-777", "0777", "0755"}},
		{"other owner", tar.Header{Name: "usr/bin/env-user", Mode: 0o755, Uid: 1000, Gid: 1000}, []string{"usr/bin/env-user", "1000:1000", "0:0"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := fmt.Sprintf("packages/link%d", i)
			err := remote.Write(ref(t, s, repo+":1.0.0"), layerImage(t, envWithLink(c.link)))
			refusedPush(t, s, repo, "1.0.0", err, c.want...)
		})
	}
	t.Run("link header as its target", func(t *testing.T) {
		img := layerImage(t, envWithLink(tar.Header{Name: "usr/bin/env-link", Mode: 0o755}))
		if err := remote.Write(ref(t, s, "packages/honest:1.0.0"), img); err != nil {
			t.Fatalf("pushing a package with an honest hard link: %v", err)
		}
	})
}

// TestPublishHardLinkHeader: `envreg publish --from-tar` refuses the
// setuid link header too, though its canonical layer would make the link
// a copy with its target's mode: the input asks for a setuid file.
func TestPublishHardLinkHeader(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, mode := range []int64{0o4755, 0o2755} {
		in := filepath.Join(t.TempDir(), "env.tar.gz")
		if err := os.WriteFile(in, tarGz(t, envWithLink(tar.Header{Name: "usr/bin/env-suid", Mode: mode})), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := envregResult(t, "publish", "--data", data, "--name", "x", "--version", "1.0.0", "--from-tar", in)
		if err == nil || !strings.Contains(stderr, "usr/bin/env-suid") || !strings.Contains(stderr, fmt.Sprintf("mode %04o", mode)) {
			t.Fatalf("publish --from-tar with a %04o hard link header: %v\n%s", mode, err, stderr)
		}
		if _, err := os.Stat(filepath.Join(data, "catalog", "releases", "x")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the refused publish left a release: %v", err)
		}
	}
	// The same link with its target's header is published (as a copy).
	in := filepath.Join(t.TempDir(), "env.tar.gz")
	if err := os.WriteFile(in, tarGz(t, envWithLink(tar.Header{Name: "usr/bin/env-link", Mode: 0o755})), 0o644); err != nil {
		t.Fatal(err)
	}
	envreg(t, "publish", "--data", data, "--name", "x", "--version", "1.0.0", "--from-tar", in)
}

// TestPushManyEntries: a pushed layer of many empty files is refused when
// its entries pass the push limit (65,536 by default, far below the
// 1,048,576 of publish), with a message naming the entry and the limit;
// serve --max-package-entries moves the limit. The red team's layer of a
// million such entries used to be read to the publish limit first (53 s
// and 700 MB here); how far it is read now is what this test pins, not
// how long it takes.
func TestPushManyEntries(t *testing.T) {
	const limit = 1 << 16
	files := func(n int) func(tw *tar.Writer) error {
		return func(tw *tar.Writer) error {
			for i := range n {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f/%d", i), Mode: 0o644}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	img := gzLayerImage(t, emptyFilesTarGz(t, limit)) // and the directory f they imply: one too many
	s := startServer(t, filepath.Join(t.TempDir(), "data"))
	err := remote.Write(ref(t, s, "packages/many:1.0.0"), img)
	refusedPush(t, s, "packages/many", "1.0.0", err, fmt.Sprintf("f/%d: more than %d entries; the limit is %d", limit-1, limit, limit))

	// The flag sets the limit: 2 files and their directory pass 3, not 2.
	s = startServer(t, filepath.Join(t.TempDir(), "data"), "--max-package-entries", "2")
	err = remote.Write(ref(t, s, "packages/few:1.0.0"), layerImage(t, files(2)))
	refusedPush(t, s, "packages/few", "1.0.0", err, "f/1: more than 2 entries; the limit is 2")
	s = startServer(t, filepath.Join(t.TempDir(), "data"), "--max-package-entries", "3")
	if err := remote.Write(ref(t, s, "packages/few:1.0.0"), layerImage(t, files(2))); err != nil {
		t.Fatalf("3 entries with --max-package-entries 3: %v", err)
	}
}

// TestPushEnvLabels: a pushed package's env and path labels become the
// Env of every config composed with it, so control characters and empty,
// relative or unclean PATH entries are refused at push time, as `envreg
// publish --env/--path` refuses them.
func TestPushEnvLabels(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "data"))
	base := layerImage(t, func(tw *tar.Writer) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "opt/x/bin/x", Mode: 0o755})
	})
	cases := []struct {
		name, key, value, want string
	}{
		{"newline in env", "io.envreg.package.env.X_HOME", "/opt/x\nLD_PRELOAD=/tmp/evil.so", "env: value of X_HOME contains the control character U+000A"},
		{"escape in env", "io.envreg.package.env.X_HOME", "\x1b]0;owned\x07", "U+001B"},
		{"newline in path", "io.envreg.package.env.path", "/opt/x\n/bin", "contains the control character U+000A"},
		{"empty path entry", "io.envreg.package.env.path", "/opt/x/bin::/usr/bin", "entry 1 is empty"},
		{"unclean path entry", "io.envreg.package.env.path", "/opt/x/../bin", "not a clean path"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cf, err := base.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			cf.Config.Labels = map[string]string{c.key: c.value}
			img, err := mutate.ConfigFile(base, cf)
			if err != nil {
				t.Fatal(err)
			}
			repo := fmt.Sprintf("packages/env%d", i)
			err = remote.Write(ref(t, s, repo+":1.0.0"), img)
			refusedPush(t, s, repo, "1.0.0", err, c.want)
		})
	}
}

// TestPublishEnvFlags: `envreg publish` refuses the same values in --env
// and --path, and stores nothing.
func TestPublishEnvFlags(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	in := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(in, tarGz(t, func(tw *tar.Writer) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "opt/x/bin/x", Mode: 0o755})
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		flag, value, want string
	}{
		{"--env", "X_HOME=/opt/x\nLD_PRELOAD=/tmp/evil.so", "env: value of X_HOME contains the control character U+000A"},
		{"--path", "/opt/x/bin\n", "contains the control character U+000A"},
		{"--path", "", "path[0]: empty"},
		{"--path", "/opt/x/bin/", `"/opt/x/bin/" is not a clean path (write "/opt/x/bin")`},
	}
	for _, c := range cases {
		_, stderr, err := envregResult(t, "publish", "--data", data, "--name", "x", "--version", "1.0.0", "--from-tar", in, c.flag, c.value)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("publish %s %q: %v, want a refusal mentioning %q\n%s", c.flag, c.value, err, c.want, stderr)
		}
		if _, err := os.Stat(filepath.Join(data, "catalog", "releases", "x")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the refused publish left a release: %v", err)
		}
	}
}

// emptyFilesTarGz is the gzip tar of n empty files f/0 … f/<n-1>, with
// the headers tar.Writer writes, made from one template block (tar.Writer
// takes seconds for 65,536 entries under the race detector).
func emptyFilesTarGz(t *testing.T, n int) []byte {
	t.Helper()
	var tmpl bytes.Buffer
	tw := tar.NewWriter(&tmpl)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f/0", Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil { // the header block, then the end marker
		t.Fatal(err)
	}
	block, end := tmpl.Bytes()[:512], tmpl.Bytes()[512:]
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 512)
	for i := range n {
		copy(b, block)
		clear(b[:100])
		copy(b, fmt.Sprintf("f/%d", i)) // name
		copy(b[148:156], "        ")    // checksum: computed with spaces
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
		zw.Write(b)
	}
	zw.Write(end)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
