// Package debtest builds small .deb files for tests with `dpkg-deb
// --build`, so that unpacking can be tested without the network.
package debtest

import (
	"crypto/md5"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// File is one entry of a package's tree. Exactly one of Content (a regular
// file, also when empty), Link (a symbolic link), HardLink (a hard link to
// an earlier File's Path) and Dir describes it.
type File struct {
	Path     string // relative, e.g. "usr/bin/hello"
	Mode     fs.FileMode
	Content  string
	Link     string
	HardLink string
	Dir      bool
}

// Package describes a .deb.
type Package struct {
	Name, Version, Arch string
	Depends             string
	Source              string // the source package, if not Name
	Files               []File
	// Postinst is the postinst maintainer script, if not empty.
	Postinst string
}

// Require skips the test when dpkg-deb is missing, or fails it when the
// environment variable CI is "true".
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dpkg-deb is required in CI: %v", err)
		}
		t.Skipf("dpkg-deb not available: %v", err)
	}
}

// Build writes p as a .deb into dir and returns its path. The package has
// a control file, an md5sums file and p.Postinst.
func Build(t testing.TB, dir string, p Package) string {
	t.Helper()
	Require(t)
	root := filepath.Join(t.TempDir(), p.Name)
	control := filepath.Join(root, "DEBIAN")
	if err := os.MkdirAll(control, 0o755); err != nil {
		t.Fatal(err)
	}
	var md5sums strings.Builder
	for _, f := range p.Files {
		name := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case f.Dir:
			err = os.Mkdir(name, f.Mode|0o700)
			if err == nil {
				err = os.Chmod(name, f.Mode)
			}
		case f.Link != "":
			err = os.Symlink(f.Link, name)
		case f.HardLink != "":
			err = os.Link(filepath.Join(root, filepath.FromSlash(f.HardLink)), name)
		default:
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(name, []byte(f.Content), mode)
			if err == nil {
				err = os.Chmod(name, mode) // umask
			}
			fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum([]byte(f.Content)), f.Path)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	arch := p.Arch
	if arch == "" {
		arch = "amd64"
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <test@example.org>\n", p.Name, p.Version, arch)
	if p.Source != "" {
		ctl += "Source: " + p.Source + "\n"
	}
	if p.Depends != "" {
		ctl += "Depends: " + p.Depends + "\n"
	}
	ctl += "Description: test package " + p.Name + "\n Built by debtest.\n"
	write := func(name, data string, mode fs.FileMode) {
		if err := os.WriteFile(filepath.Join(control, name), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(control, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("control", ctl, 0o644)
	write("md5sums", md5sums.String(), 0o644)
	if p.Postinst != "" {
		write("postinst", p.Postinst, 0o755)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, b)
	}
	return out
}
