package packages

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/envreg/envreg/packages/internal/debian"
)

// relocation moves the dependencies of a layer that is installed on a base
// into a prefix of the layer's own, so that the layer does not care which
// Debian release the base and the other layers of an image come from (see
// "Packages from several Debian releases" in the package documentation).
//
// The packages built from the source packages of the recipe's own requests
// (php8.2-cli brings php8.2-common, nodejs brings libnode108) and those
// matching source.debian.inPlace stay at their paths; every other package of
// the closure is unpacked under the prefix with its paths kept
// (/usr/lib/x86_64-linux-gnu/libicuuc.so.72 becomes
// /opt/envreg/php-8.2.36+1.deb12u1/usr/lib/x86_64-linux-gnu/libicuuc.so.72),
// so its files cannot collide with another layer's. Every dynamically linked
// ELF file of the layer gets a DT_RPATH naming the prefix's library
// directories. DT_RPATH, not DT_RUNPATH: RUNPATH applies only to the
// object's own direct dependencies, so libxml2 loaded by php would not find
// bookworm's libicuuc.so.72, and a user's LD_LIBRARY_PATH overrides it.
type relocation struct {
	prefix   string          // "opt/envreg/php-8.2.36+1.deb12u1", no leading '/'
	arch     string          // Debian architecture
	rpath    string          // the DT_RPATH every ELF file gets
	sources  map[string]bool // source packages unpacked in place
	inPlace  []string        // path.Match patterns of binary packages unpacked in place
	patchelf string          // the program that sets DT_RPATH ("": patchelf on PATH)
}

// relocationRoot is where prefixes go: /opt/envreg/<name>-<version>.
const relocationRoot = "opt/envreg"

// newRelocation: patchelf is the program that sets DT_RPATH ("": the
// patchelf on PATH).
func newRelocation(prefix, arch string, sources, inPlace []string, patchelf string) (*relocation, error) {
	tuple, err := debian.Multiarch(arch)
	if err != nil {
		return nil, err
	}
	r := &relocation{prefix: prefix, arch: arch, sources: map[string]bool{}, inPlace: inPlace, patchelf: patchelf}
	for _, s := range sources {
		r.sources[s] = true
	}
	r.rpath = fmt.Sprintf("/%[1]s/usr/lib/%[2]s:/%[1]s/lib/%[2]s:/%[1]s/usr/lib", prefix, tuple)
	return r, nil
}

// asBuilt reports whether the ELF files of the package with the control
// data c keep their DT_RPATH and PT_INTERP: those of a C library that the
// layer carries in its prefix (see setRPaths).
func (r *relocation) asBuilt(c debian.Paragraph) bool {
	return r.moves(c) && debian.SourceOf(c) == "glibc"
}

// moves reports whether the package with the control data c goes into the
// prefix.
func (r *relocation) moves(c debian.Paragraph) bool {
	if r == nil || r.sources[debian.SourceOf(c)] {
		return false
	}
	return !slices.ContainsFunc(r.inPlace, func(pat string) bool {
		ok, _ := path.Match(pat, c.Get("Package"))
		return ok
	})
}

// move puts one package's entries under the prefix. An absolute symbolic
// link to a path of the same package is pointed into the prefix too; one
// to anything else (the base's /etc/ssl/certs) is left alone.
func (r *relocation) move(entries []entry) []entry {
	own := map[string]bool{}
	for _, e := range entries {
		own[e.name] = true
	}
	out := make([]entry, len(entries))
	for i, e := range entries {
		if e.typ == tar.TypeSymlink && path.IsAbs(e.linkname) {
			if target := strings.TrimPrefix(path.Clean(e.linkname), "/"); own[target] {
				e.linkname = "/" + r.prefix + "/" + target
			}
		}
		e.name = r.prefix + "/" + e.name
		out[i] = e
	}
	return out
}

// usrMerged are the top-level directories that a usr-merged system (the
// trixie base: base-files ships /bin -> usr/bin) has as symbolic links
// into /usr.
var usrMerged = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// usrMerge moves the entries under /bin, /sbin and /lib* of a package to
// /usr, as dpkg does on a usr-merged system: a layer writing /lib as a
// directory would replace the base's /lib -> usr/lib symbolic link (the
// overlap check refuses it). Bookworm's php8.2-fpm ships
// /lib/systemd/system/php8.2-fpm.service.
func usrMerge(entries []entry) []entry {
	out := entries[:0]
	for _, e := range entries {
		top, rest, _ := strings.Cut(e.name, "/")
		if slices.Contains(usrMerged, top) {
			if rest == "" && e.typ == tar.TypeDir { // /usr/lib is the base's
				continue
			}
			e.name = "usr/" + e.name
		}
		out = append(out, e)
	}
	return out
}

// setRPaths gives every dynamically linked ELF file of t the DT_RPATH of
// r, patching copies in dir. An ELF file for another machine than the
// layer's fails, naming it.
//
// A layer that carries its own C library (a package built against a newer
// glibc than the base's, source.debian.carryNewer) also carries its own
// dynamic loader in the prefix: every executable whose PT_INTERP names a
// loader that the prefix holds (/lib64/ld-linux-x86-64.so.2 →
// <prefix>/usr/lib64/ld-linux-x86-64.so.2, usr-merged) gets that one, so
// the loader and the libc it loads through the DT_RPATH are of one glibc.
// The C library's own files are left as built: the loader relocates
// itself, and its libraries find each other by soname.
func (t *tree) setRPaths(ctx context.Context, r *relocation, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	loader := t.ownLoader(r)
	for i, e := range t.entries {
		if e.typ != tar.TypeReg || e.size < 64 || t.asBuilt[t.owner[e.name]] {
			continue
		}
		file := filepath.Join(dir, strconv.Itoa(i))
		isELF, err := copyIfELF(e, file)
		if err != nil {
			return err
		}
		if !isELF {
			continue
		}
		patched, err := patchELF(ctx, r, file, loader)
		if err != nil {
			return fmt.Errorf("/%s (package %s): %w", e.name, t.owner[e.name], err)
		}
		if !patched {
			continue
		}
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		t.entries[i].size = fi.Size()
		t.entries[i].open = func() (io.ReadCloser, error) { return os.Open(file) }
	}
	return nil
}

// ownLoader returns a function that maps a PT_INTERP to the loader of the
// same name in r's prefix, or "" if the layer carries no C library. A layer
// that carries one but not that loader fails: its executables would start
// with the base's loader and load the newer libc.
func (t *tree) ownLoader(r *relocation) func(interp string) (string, error) {
	carries := slices.Contains(slices.Collect(maps.Values(t.asBuilt)), true)
	return func(interp string) (string, error) {
		if !carries {
			return "", nil
		}
		if path.IsAbs(interp) {
			for _, p := range []string{r.prefix + "/usr" + path.Clean(interp), r.prefix + path.Clean(interp)} {
				if i, ok := t.index[p]; ok && t.asBuilt[t.owner[p]] && (t.entries[i].typ == tar.TypeReg || t.entries[i].typ == tar.TypeSymlink) {
					return "/" + p, nil
				}
			}
		}
		return "", fmt.Errorf("PT_INTERP %s: the layer carries its own C library but no loader of that name in /%s", interp, r.prefix)
	}
}

// copyIfELF copies e to file if it starts with the ELF magic.
func copyIfELF(e entry, file string) (bool, error) {
	src, err := e.open()
	if err != nil {
		return false, err
	}
	defer src.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(src, magic); err != nil {
		return false, fmt.Errorf("reading %s: %w", e.name, err)
	}
	if string(magic) != "\x7fELF" {
		return false, nil
	}
	dst, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(dst, io.MultiReader(strings.NewReader(string(magic)), src))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return true, err
}

// patchELF sets the DT_RPATH of a dynamically linked ELF file, and its
// PT_INTERP to loader(PT_INTERP) where that is not "", clears the
// executable-stack mark of a library (debian.ClearExecStack), repairs what
// patchelf leaves behind (debian.FixGNUProperty), and reports whether it
// changed the file; a static one is left alone, one of another machine fails.
func patchELF(ctx context.Context, r *relocation, file string, loader func(string) (string, error)) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	info, _, err := debian.ReadELF(f)
	f.Close()
	if err != nil {
		return false, fmt.Errorf("reading ELF file: %w", err)
	}
	if !info.Dynamic {
		return false, os.Remove(file)
	}
	if err := debian.CheckMachine(r.arch, info.Machine); err != nil {
		return false, err
	}
	if err := debian.SetRPath(ctx, r.patchelf, file, r.rpath); err != nil {
		return false, err
	}
	if info.Interp != "" {
		own, err := loader(info.Interp)
		if err == nil && own != "" {
			err = debian.SetInterpreter(ctx, r.patchelf, file, own)
		}
		if err != nil {
			return false, err
		}
	} else if _, err := debian.ClearExecStack(file); err != nil {
		// A library (no PT_INTERP) that asks for an executable stack:
		// the base's glibc would refuse to dlopen it.
		return false, err
	}
	_, err = debian.FixGNUProperty(file)
	return err == nil, err
}
