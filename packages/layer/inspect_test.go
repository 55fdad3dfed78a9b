package layer_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/packages/layer/layertest"
)

func TestInspect(t *testing.T) {
	var buf bytes.Buffer
	fsys := fstest.MapFS{"opt/t/bin/t": {Data: []byte("#!/bin/sh\n"), Mode: 0o755}, "opt/t/lib": {Data: []byte("lib"), Mode: 0o644}}
	diffID, err := layer.Build(t.Context(), fsys, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got, files, err := layer.Policy{}.Inspect(t.Context(), bytes.NewReader(buf.Bytes()), ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		t.Fatal(err)
	}
	if got != diffID {
		t.Fatalf("diffID %s, Build says %s", got, diffID)
	}
	if files["opt/t/bin/t"] != digest.FromString("#!/bin/sh\n").String()+" 0755" || len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	// The Docker gzip media type is the same bytes.
	if _, _, err := (layer.Policy{}).Inspect(t.Context(), bytes.NewReader(buf.Bytes()), "application/vnd.docker.image.rootfs.diff.tar.gzip"); err != nil {
		t.Fatal(err)
	}

	plain := func() []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "a", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("a"))
		tw.Close()
		return b.Bytes()
	}()
	cases := []struct {
		name      string
		data      []byte
		mediaType string
		want      string
	}{
		{"zstd media type", buf.Bytes(), "application/vnd.oci.image.layer.v1.tar+zstd", "zstd"},
		{"uncompressed media type", plain, "application/vnd.oci.image.layer.v1.tar", "uncompressed"},
		{"plain tar as gzip", plain, ocispec.MediaTypeImageLayerGzip, "not gzip"},
		{"dot-dot", layertest.PushedTar(t, layertest.PushedEntry{Name: "../etc/passwd", Mode: 0o644, Type: tar.TypeReg, Content: "x"}), ocispec.MediaTypeImageLayerGzip, ".."},
		{"escaping symlink then file", layertest.PushedTar(t, layertest.PushedEntry{Name: "l", Mode: 0o777, Type: tar.TypeSymlink, Content: "/etc"}, layertest.PushedEntry{Name: "l/passwd", Mode: 0o644, Type: tar.TypeReg, Content: "x"}), ocispec.MediaTypeImageLayerGzip, "l/passwd"},
		{"device", layertest.PushedTar(t, layertest.PushedEntry{Name: "dev/sda", Mode: 0o600, Type: tar.TypeBlock}), ocispec.MediaTypeImageLayerGzip, "dev/sda"},
		{"setuid", layertest.PushedTar(t, layertest.PushedEntry{Name: "bin/su", Mode: 0o4755, Type: tar.TypeReg, Content: "x"}), ocispec.MediaTypeImageLayerGzip, "setuid"},
		{"capability xattr", layertest.PushedTar(t, layertest.PushedEntry{Name: "bin/ping", Mode: 0o755, Type: tar.TypeReg, Content: "x", PAX: map[string]string{"SCHILY.xattr.security.capability": "\x01"}}), ocispec.MediaTypeImageLayerGzip, "security.capability"},
		{"trusted xattr", layertest.PushedTar(t, layertest.PushedEntry{Name: "d", Mode: 0o755, Type: tar.TypeDir, PAX: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}), ocispec.MediaTypeImageLayerGzip, "trusted.overlay.opaque"},
		{"root entry owned by a user", layertest.PushedTar(t, layertest.PushedEntry{Name: "./", Mode: 0o777, Type: tar.TypeDir, UID: 1000}), ocispec.MediaTypeImageLayerGzip, "root"},
		{"duplicate", layertest.PushedTar(t, layertest.PushedEntry{Name: "a", Mode: 0o644, Type: tar.TypeReg, Content: "1"}, layertest.PushedEntry{Name: "a", Mode: 0o644, Type: tar.TypeReg, Content: "2"}), ocispec.MediaTypeImageLayerGzip, "a"},
		{"whiteout", layertest.PushedTar(t, layertest.PushedEntry{Name: "etc/.wh.passwd", Mode: 0o644, Type: tar.TypeReg}), ocispec.MediaTypeImageLayerGzip, "whiteout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := layer.Policy{}.Inspect(t.Context(), bytes.NewReader(c.data), c.mediaType)
			if !errors.Is(err, layer.ErrRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a refusal mentioning %q", err, c.want)
			}
		})
	}
	// A user.* attribute and a 0755 root:root root entry are fine.
	ok := layertest.PushedTar(t, layertest.PushedEntry{Name: "./", Mode: 0o755, Type: tar.TypeDir}, layertest.PushedEntry{Name: "f", Mode: 0o644, Type: tar.TypeReg, Content: "x", PAX: map[string]string{"SCHILY.xattr.user.note": "hi"}})
	if _, _, err := (layer.Policy{}).Inspect(t.Context(), bytes.NewReader(ok), ocispec.MediaTypeImageLayerGzip); err != nil {
		t.Fatal(err)
	}
}

// TestInspectHardLinkHeaders: a hard link is its target's inode,
// and extractors that apply a link's own header (Python's tarfile,
// containerd, moby) chmod, chown and set attributes on the target through
// it. So a link header is checked like a file's (setuid, capabilities),
// and must repeat its target's mode, owner and extended attributes.
func TestInspectHardLinkHeaders(t *testing.T) {
	env := layertest.PushedEntry{Name: "usr/bin/env", Mode: 0o755, Type: tar.TypeReg, Content: "#!/bin/sh\n", UID: 0, GID: 0, Uname: "root"}
	linkTo := func(name string, mode int64) layertest.PushedEntry {
		return layertest.PushedEntry{Name: name, Mode: mode, Type: tar.TypeLink, Content: "usr/bin/env", Uname: "root"}
	}
	with := func(e layertest.PushedEntry, f func(*layertest.PushedEntry)) layertest.PushedEntry { f(&e); return e }
	cases := []struct {
		name string
		pol  layer.Policy
		link layertest.PushedEntry
		rule layer.Rule
		want string
	}{
		{"setuid header", layer.Policy{}, linkTo("usr/bin/env-suid", 0o4755), layer.RuleSetuid, "setuid hard link (mode 4755"},
		{"setgid header", layer.Policy{}, linkTo("usr/bin/env-sgid", 0o2755), layer.RuleSetuid, "setgid hard link"},
		{"setuid header, setuid allowed", layer.Policy{AllowSetuid: true}, linkTo("usr/bin/env-suid", 0o4755), layer.RuleHardLink, "mode 4755, its target usr/bin/env has 0755"},
		{"world-writable header", layer.Policy{}, linkTo("usr/bin/env-w", 0o777), layer.RuleHardLink, "mode 0777, its target usr/bin/env has 0755"},
		{"sticky header", layer.Policy{}, linkTo("usr/bin/env-t", 0o1755), layer.RuleHardLink, "mode 1755"},
		{"other uid", layer.Policy{}, with(linkTo("usr/bin/env-u", 0o755), func(e *layertest.PushedEntry) { e.UID = 1000 }), layer.RuleHardLink, "owner 1000:0, its target usr/bin/env is owned by 0:0"},
		{"other gid", layer.Policy{}, with(linkTo("usr/bin/env-g", 0o755), func(e *layertest.PushedEntry) { e.GID = 50 }), layer.RuleHardLink, "owner 0:50"},
		{"other owner name", layer.Policy{}, with(linkTo("usr/bin/env-n", 0o755), func(e *layertest.PushedEntry) { e.Uname = "daemon" }), layer.RuleHardLink, `"daemon"`},
		{"capability on the link", layer.Policy{}, with(linkTo("usr/bin/env-c", 0o755), func(e *layertest.PushedEntry) {
			e.PAX = map[string]string{"SCHILY.xattr.security.capability": "\x01"}
		}), layer.RuleSetuid, "security.capability"},
		{"user attribute on the link only", layer.Policy{}, with(linkTo("usr/bin/env-x", 0o755), func(e *layertest.PushedEntry) {
			e.PAX = map[string]string{"SCHILY.xattr.user.note": "hi"}
		}), layer.RuleXattr, "SCHILY.xattr.user.note"},
		{"ACL on the link", layer.Policy{}, with(linkTo("usr/bin/env-a", 0o755), func(e *layertest.PushedEntry) {
			e.PAX = map[string]string{"SCHILY.acl.access": "user::rwx"}
		}), layer.RuleXattr, "access control list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := layertest.PushedTar(t, env, c.link)
			_, _, err := c.pol.Inspect(t.Context(), bytes.NewReader(data), ocispec.MediaTypeImageLayerGzip)
			var re *layer.RefusedError
			if !errors.As(err, &re) || re.Rule != c.rule || re.Path != c.link.Name || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.link.Name) {
				t.Fatalf("err %v (%#v), want rule %s for %s mentioning %q", err, re, c.rule, c.link.Name, c.want)
			}
		})
	}

	// A link whose header repeats its target's (as tar and moby write them)
	// is fine, and listed as its target; so is a setuid pair when allowed.
	attrs := map[string]string{"SCHILY.xattr.user.note": "hi"}
	target := with(env, func(e *layertest.PushedEntry) { e.UID, e.GID, e.Uname, e.PAX = 1000, 1000, "app", attrs })
	honest := with(linkTo("usr/bin/env-link", 0o755), func(e *layertest.PushedEntry) { e.UID, e.GID, e.Uname, e.PAX = 1000, 1000, "app", attrs })
	_, files, err := layer.Policy{}.Inspect(t.Context(), bytes.NewReader(layertest.PushedTar(t, target, honest)), ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		t.Fatal(err)
	}
	if files["usr/bin/env-link"] == "" || files["usr/bin/env-link"] != files["usr/bin/env"] {
		t.Fatalf("files %v: the link is not listed as its target", files)
	}
	suid := with(env, func(e *layertest.PushedEntry) { e.Mode = 0o4755 })
	if _, _, err := (layer.Policy{AllowSetuid: true}).Inspect(t.Context(), bytes.NewReader(layertest.PushedTar(t, suid, linkTo("usr/bin/env2", 0o4755))), ocispec.MediaTypeImageLayerGzip); err != nil {
		t.Fatalf("a setuid file and its link with AllowSetuid: %v", err)
	}
}

// FuzzInspect: arbitrary bytes as a pushed gzip layer are refused
// (wrapping ErrRefused) or accepted with the diffID of their uncompressed
// content, never a panic or a system error.
func FuzzInspect(f *testing.F) {
	var buf bytes.Buffer
	layer.Build(f.Context(), fstest.MapFS{"a/b": {Data: []byte("x"), Mode: 0o755}}, &buf)
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte("not a layer"))
	f.Fuzz(func(t *testing.T, data []byte) {
		diffID, _, err := fuzzPolicy(data).Inspect(t.Context(), bytes.NewReader(data), ocispec.MediaTypeImageLayerGzip)
		if err != nil {
			if !errors.Is(err, layer.ErrRefused) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("accepted non-gzip: %v", err)
		}
		zr.Multistream(true)
		var raw bytes.Buffer
		if _, err := raw.ReadFrom(zr); err != nil {
			t.Fatalf("accepted a broken gzip stream: %v", err)
		}
		if digest.FromBytes(raw.Bytes()) != diffID {
			t.Fatalf("diffID %s is not the digest of the uncompressed content", diffID)
		}
	})
}

// TestFilesMatchesInspect: the file list of a built layer is the one
// Inspect returns for it, so published and pushed packages record the
// same list for the same content.
func TestFilesMatchesInspect(t *testing.T) {
	var buf bytes.Buffer
	if _, err := allowSetuid.Build(t.Context(), layertest.MapFS(layertest.Tree), &buf); err != nil {
		t.Fatal(err)
	}
	files, err := layer.Files(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, inspected, err := allowSetuid.Inspect(t.Context(), bytes.NewReader(buf.Bytes()), ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(files, inspected) {
		t.Fatalf("Files %v, Inspect %v", files, inspected)
	}
	want := map[string]string{
		"usr/local/bin/hi":     "-> hello",
		"usr/local/bin/su-ish": digest.FromString("setuid\n").String() + " 4755",
		"usr/local-note":       digest.FromString("note\n").String() + " 0600",
	}
	for k, v := range want {
		if files[k] != v {
			t.Errorf("Files[%q] = %q, want %q", k, files[k], v)
		}
	}
	if _, ok := files["usr/local/bin"]; ok || len(files) != 5 {
		t.Errorf("Files lists %d entries (%v), want the 5 files and links", len(files), files)
	}
}
