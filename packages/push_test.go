package packages_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
)

func TestParsePackageLabels(t *testing.T) {
	pl, problems := packages.ParsePackageLabels(map[string]string{
		"io.envreg.package.name":            "php",
		"io.envreg.package.version":         "8.2.36",
		"io.envreg.package.env.path":        "/usr/local/php/bin: /usr/local/php/sbin",
		"io.envreg.package.env.PHP_INI_DIR": "/etc/php",
		"io.envreg.package.requires":        "base ^12; openssl >=3.0, <4",
		"io.envreg.package.conflicts":       "hhvm",
		"io.envreg.package.aliases":         "php8; php-cli",
		"io.envreg.package.label.source":    "https://example.org/php",
		"org.opencontainers.image.title":    "ignored",
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if pl.Name != "php" || pl.Version != "8.2.36" ||
		!slices.Equal(pl.Path, []string{"/usr/local/php/bin", "/usr/local/php/sbin"}) ||
		!maps.Equal(pl.Env, map[string]string{"PHP_INI_DIR": "/etc/php"}) ||
		!slices.Equal(pl.Requires, []string{"base ^12", "openssl >=3.0, <4"}) ||
		!slices.Equal(pl.Conflicts, []string{"hhvm"}) ||
		!slices.Equal(pl.Aliases, []string{"php8", "php-cli"}) ||
		!maps.Equal(pl.Labels, map[string]string{"source": "https://example.org/php"}) {
		t.Fatalf("parsed %+v", pl)
	}

	// An empty PATH entry would be the working directory.
	for _, v := range []string{"/a::/b", "/a:", ":/a", " : "} {
		_, problems = packages.ParsePackageLabels(map[string]string{packages.LabelPath: v})
		if len(problems) == 0 || !strings.Contains(problems[0], "is empty (an empty PATH entry means the working directory)") {
			t.Errorf("path label %q: problems %q", v, problems)
		}
	}
	if pl, problems := packages.ParsePackageLabels(map[string]string{packages.LabelPath: " "}); len(problems) > 0 || pl.Path != nil {
		t.Errorf("a blank path label: %+v %q, want no entries", pl, problems)
	}

	_, problems = packages.ParsePackageLabels(map[string]string{
		"io.envreg.package.require": "base", // a typo must not drop a requirement
		"io.envreg.package.env.":    "x",
		"io.envreg.package.label.":  "x",
	})
	if len(problems) != 3 || !strings.Contains(strings.Join(problems, "\n"), "io.envreg.package.require: unknown package label") {
		t.Fatalf("problems %q", problems)
	}
}

func TestReleaseLabelsRoundTrip(t *testing.T) {
	rel := catalog.Release{
		Name: "nodejs", Version: semver.MustParse("20.11.1"),
		Env:       catalog.Env{Path: []string{"/opt/node/bin", "/opt/node/lib/bin"}, Vars: map[string]string{"NODE_PATH": "/opt/node/lib"}},
		Requires:  []catalog.Constraint{{Name: "base", Range: "^12"}, {Name: "openssl", Range: ">=3.0, <4"}},
		Conflicts: []catalog.Constraint{{Name: "iojs", Range: "*"}},
		Labels:    map[string]string{"debian.packages": "nodejs=20.11.1"},
	}
	rel.Aliases = []string{"node"}
	labels := packages.ReleaseLabels(rel)
	pl, problems := packages.ParsePackageLabels(labels)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var req []string
	for _, c := range rel.Requires {
		req = append(req, c.String())
	}
	if pl.Name != rel.Name || pl.Version != "20.11.1" || !slices.Equal(pl.Path, rel.Env.Path) || !maps.Equal(pl.Env, rel.Env.Vars) ||
		!slices.Equal(pl.Requires, req) || !slices.Equal(pl.Conflicts, []string{"iojs *"}) ||
		!slices.Equal(pl.Aliases, []string{"node"}) || !maps.Equal(pl.Labels, rel.Labels) {
		t.Fatalf("round trip: %+v from %v", pl, labels)
	}
}

// FuzzParsePackageLabels: any labels parse without panicking, and the
// labels of a release parse back to it.
func FuzzParsePackageLabels(f *testing.F) {
	f.Add("io.envreg.package.requires", "base ^12; php >=8.1 <8.4", "io.envreg.package.env.path", "/a:/b")
	f.Add("io.envreg.package.env.X", "y", "io.envreg.package.aliases", "a;b;;c")
	f.Add("io.envreg.package.", "", "io.envreg.package.label.k", "v")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		pl, problems := packages.ParsePackageLabels(map[string]string{k1: v1, k2: v2})
		if len(problems) > 0 {
			return
		}
		for _, s := range slices.Concat(pl.Requires, pl.Conflicts, pl.Aliases, pl.Path) {
			if strings.TrimSpace(s) != s || s == "" {
				t.Fatalf("list entry %q not trimmed", s)
			}
		}
	})
}

// layerOf builds a gzip tar from entries (name, mode, typeflag, content or
// link target, PAX records).
type tarEnt struct {
	name    string
	mode    int64
	typ     byte
	content string
	pax     map[string]string
	uid     int
	gid     int
	uname   string
}

func pushedTar(t *testing.T, ents ...tarEnt) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: e.typ, PAXRecords: e.pax, Uid: e.uid, Gid: e.gid, Uname: e.uname, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.content))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.content
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.content))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestInspectLayer(t *testing.T) {
	var buf bytes.Buffer
	fsys := fstest.MapFS{"opt/t/bin/t": {Data: []byte("#!/bin/sh\n"), Mode: 0o755}, "opt/t/lib": {Data: []byte("lib"), Mode: 0o644}}
	diffID, err := packages.BuildLayer(t.Context(), fsys, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got, files, err := packages.Policy{}.InspectLayer(t.Context(), bytes.NewReader(buf.Bytes()), ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		t.Fatal(err)
	}
	if got != diffID {
		t.Fatalf("diffID %s, BuildLayer says %s", got, diffID)
	}
	if files["opt/t/bin/t"] != digest.FromString("#!/bin/sh\n").String()+" 0755" || len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	// The Docker gzip media type is the same bytes.
	if _, _, err := (packages.Policy{}).InspectLayer(t.Context(), bytes.NewReader(buf.Bytes()), "application/vnd.docker.image.rootfs.diff.tar.gzip"); err != nil {
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
		{"dot-dot", pushedTar(t, tarEnt{name: "../etc/passwd", mode: 0o644, typ: tar.TypeReg, content: "x"}), ocispec.MediaTypeImageLayerGzip, ".."},
		{"escaping symlink then file", pushedTar(t, tarEnt{name: "l", mode: 0o777, typ: tar.TypeSymlink, content: "/etc"}, tarEnt{name: "l/passwd", mode: 0o644, typ: tar.TypeReg, content: "x"}), ocispec.MediaTypeImageLayerGzip, "l/passwd"},
		{"device", pushedTar(t, tarEnt{name: "dev/sda", mode: 0o600, typ: tar.TypeBlock}), ocispec.MediaTypeImageLayerGzip, "dev/sda"},
		{"setuid", pushedTar(t, tarEnt{name: "bin/su", mode: 0o4755, typ: tar.TypeReg, content: "x"}), ocispec.MediaTypeImageLayerGzip, "setuid"},
		{"capability xattr", pushedTar(t, tarEnt{name: "bin/ping", mode: 0o755, typ: tar.TypeReg, content: "x", pax: map[string]string{"SCHILY.xattr.security.capability": "\x01"}}), ocispec.MediaTypeImageLayerGzip, "security.capability"},
		{"trusted xattr", pushedTar(t, tarEnt{name: "d", mode: 0o755, typ: tar.TypeDir, pax: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}), ocispec.MediaTypeImageLayerGzip, "trusted.overlay.opaque"},
		{"root entry owned by a user", pushedTar(t, tarEnt{name: "./", mode: 0o777, typ: tar.TypeDir, uid: 1000}), ocispec.MediaTypeImageLayerGzip, "root"},
		{"duplicate", pushedTar(t, tarEnt{name: "a", mode: 0o644, typ: tar.TypeReg, content: "1"}, tarEnt{name: "a", mode: 0o644, typ: tar.TypeReg, content: "2"}), ocispec.MediaTypeImageLayerGzip, "a"},
		{"whiteout", pushedTar(t, tarEnt{name: "etc/.wh.passwd", mode: 0o644, typ: tar.TypeReg}), ocispec.MediaTypeImageLayerGzip, "whiteout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := packages.Policy{}.InspectLayer(t.Context(), bytes.NewReader(c.data), c.mediaType)
			if !errors.Is(err, packages.ErrRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a refusal mentioning %q", err, c.want)
			}
		})
	}
	// A user.* attribute and a 0755 root:root root entry are fine.
	ok := pushedTar(t, tarEnt{name: "./", mode: 0o755, typ: tar.TypeDir}, tarEnt{name: "f", mode: 0o644, typ: tar.TypeReg, content: "x", pax: map[string]string{"SCHILY.xattr.user.note": "hi"}})
	if _, _, err := (packages.Policy{}).InspectLayer(t.Context(), bytes.NewReader(ok), ocispec.MediaTypeImageLayerGzip); err != nil {
		t.Fatal(err)
	}
}

// TestInspectLayerHardLinkHeaders: a hard link is its target's inode,
// and extractors that apply a link's own header (Python's tarfile,
// containerd, moby) chmod, chown and set attributes on the target through
// it. So a link header is checked like a file's (setuid, capabilities),
// and must repeat its target's mode, owner and extended attributes.
func TestInspectLayerHardLinkHeaders(t *testing.T) {
	env := tarEnt{name: "usr/bin/env", mode: 0o755, typ: tar.TypeReg, content: "#!/bin/sh\n", uid: 0, gid: 0, uname: "root"}
	linkTo := func(name string, mode int64) tarEnt {
		return tarEnt{name: name, mode: mode, typ: tar.TypeLink, content: "usr/bin/env", uname: "root"}
	}
	with := func(e tarEnt, f func(*tarEnt)) tarEnt { f(&e); return e }
	cases := []struct {
		name string
		pol  packages.Policy
		link tarEnt
		rule packages.Rule
		want string
	}{
		{"setuid header", packages.Policy{}, linkTo("usr/bin/env-suid", 0o4755), packages.RuleSetuid, "setuid hard link (mode 4755"},
		{"setgid header", packages.Policy{}, linkTo("usr/bin/env-sgid", 0o2755), packages.RuleSetuid, "setgid hard link"},
		{"setuid header, setuid allowed", packages.Policy{AllowSetuid: true}, linkTo("usr/bin/env-suid", 0o4755), packages.RuleHardLink, "mode 4755, its target usr/bin/env has 0755"},
		{"world-writable header", packages.Policy{}, linkTo("usr/bin/env-w", 0o777), packages.RuleHardLink, "mode 0777, its target usr/bin/env has 0755"},
		{"sticky header", packages.Policy{}, linkTo("usr/bin/env-t", 0o1755), packages.RuleHardLink, "mode 1755"},
		{"other uid", packages.Policy{}, with(linkTo("usr/bin/env-u", 0o755), func(e *tarEnt) { e.uid = 1000 }), packages.RuleHardLink, "owner 1000:0, its target usr/bin/env is owned by 0:0"},
		{"other gid", packages.Policy{}, with(linkTo("usr/bin/env-g", 0o755), func(e *tarEnt) { e.gid = 50 }), packages.RuleHardLink, "owner 0:50"},
		{"other owner name", packages.Policy{}, with(linkTo("usr/bin/env-n", 0o755), func(e *tarEnt) { e.uname = "daemon" }), packages.RuleHardLink, `"daemon"`},
		{"capability on the link", packages.Policy{}, with(linkTo("usr/bin/env-c", 0o755), func(e *tarEnt) {
			e.pax = map[string]string{"SCHILY.xattr.security.capability": "\x01"}
		}), packages.RuleSetuid, "security.capability"},
		{"user attribute on the link only", packages.Policy{}, with(linkTo("usr/bin/env-x", 0o755), func(e *tarEnt) {
			e.pax = map[string]string{"SCHILY.xattr.user.note": "hi"}
		}), packages.RuleXattr, "SCHILY.xattr.user.note"},
		{"ACL on the link", packages.Policy{}, with(linkTo("usr/bin/env-a", 0o755), func(e *tarEnt) {
			e.pax = map[string]string{"SCHILY.acl.access": "user::rwx"}
		}), packages.RuleXattr, "access control list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := pushedTar(t, env, c.link)
			_, _, err := c.pol.InspectLayer(t.Context(), bytes.NewReader(data), ocispec.MediaTypeImageLayerGzip)
			var re *packages.RefusedError
			if !errors.As(err, &re) || re.Rule != c.rule || re.Path != c.link.name || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.link.name) {
				t.Fatalf("err %v (%#v), want rule %s for %s mentioning %q", err, re, c.rule, c.link.name, c.want)
			}
		})
	}

	// A link whose header repeats its target's (as tar and moby write them)
	// is fine, and listed as its target; so is a setuid pair when allowed.
	attrs := map[string]string{"SCHILY.xattr.user.note": "hi"}
	target := with(env, func(e *tarEnt) { e.uid, e.gid, e.uname, e.pax = 1000, 1000, "app", attrs })
	honest := with(linkTo("usr/bin/env-link", 0o755), func(e *tarEnt) { e.uid, e.gid, e.uname, e.pax = 1000, 1000, "app", attrs })
	_, files, err := packages.Policy{}.InspectLayer(t.Context(), bytes.NewReader(pushedTar(t, target, honest)), ocispec.MediaTypeImageLayerGzip)
	if err != nil {
		t.Fatal(err)
	}
	if files["usr/bin/env-link"] == "" || files["usr/bin/env-link"] != files["usr/bin/env"] {
		t.Fatalf("files %v: the link is not listed as its target", files)
	}
	suid := with(env, func(e *tarEnt) { e.mode = 0o4755 })
	if _, _, err := (packages.Policy{AllowSetuid: true}).InspectLayer(t.Context(), bytes.NewReader(pushedTar(t, suid, linkTo("usr/bin/env2", 0o4755))), ocispec.MediaTypeImageLayerGzip); err != nil {
		t.Fatalf("a setuid file and its link with AllowSetuid: %v", err)
	}
}

// FuzzInspectLayer: arbitrary bytes as a pushed gzip layer are refused
// (wrapping ErrRefused) or accepted with the diffID of their uncompressed
// content, never a panic or a system error.
func FuzzInspectLayer(f *testing.F) {
	var buf bytes.Buffer
	packages.BuildLayer(f.Context(), fstest.MapFS{"a/b": {Data: []byte("x"), Mode: 0o755}}, &buf)
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte("not a layer"))
	f.Fuzz(func(t *testing.T, data []byte) {
		diffID, _, err := fuzzPolicy(data).InspectLayer(t.Context(), bytes.NewReader(data), ocispec.MediaTypeImageLayerGzip)
		if err != nil {
			if !errors.Is(err, packages.ErrRefused) {
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
