package packages

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// layerModTime is the modification time of every entry of a built layer:
// the Unix epoch, the value reproducible-builds tools use by default.
var layerModTime = time.Unix(0, 0).UTC()

// compressionLevel is the gzip level of every layer. DefaultCompression is
// a good ratio at a reasonable speed; changing it changes every layer digest.
const compressionLevel = gzip.DefaultCompression

// Entry modes: the bits kept from the source (permissions plus setuid,
// setgid, sticky), the mode of every symbolic link, and the mode of parent
// directories that a tar source does not list.
const (
	modeMask        = 0o7777
	symlinkMode     = 0o777
	dirModeImplicit = 0o755 // parents a tar source does not list
)

// UnsupportedFileError reports a file a layer cannot contain: a device,
// FIFO, socket or unknown tar entry type.
type UnsupportedFileError struct {
	Path string // slash-separated path inside the tree or tar
	Kind string // e.g. "character device", "named pipe (FIFO)", "socket"
}

func (e *UnsupportedFileError) Error() string {
	return fmt.Sprintf("%s: %s not supported in a layer (only directories, regular files and symbolic links)", e.Path, e.Kind)
}

// entry is one file of a layer in canonical form.
type entry struct {
	name     string // slash-separated, relative, clean, no trailing slash
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64  // modeMask bits
	size     int64  // regular files
	linkname string // symbolic links
	open     func() (io.ReadCloser, error)
}

// BuildLayer writes a gzip-compressed tar of the tree root to w, in the
// canonical form described in the package documentation, and returns the
// digest of the uncompressed tar (the layer's diffID).
//
// Symbolic links are preserved when root implements fs.ReadLinkFS (as
// os.DirFS, (*os.Root).FS and fstest.MapFS do); otherwise a symbolic link is
// an error. BuildLayerFromDir is the way to build from a directory.
func BuildLayer(ctx context.Context, root fs.FS, w io.Writer) (diffID digest.Digest, err error) {
	entries, err := scanFS(ctx, root)
	if err != nil {
		return "", fmt.Errorf("building layer: %w", err)
	}
	d, err := writeLayer(ctx, entries, w)
	if err != nil {
		return "", fmt.Errorf("building layer: %w", err)
	}
	return d, nil
}

// BuildLayerFromDir is BuildLayer for the directory dir. It reads the tree
// through an os.Root, so nothing outside dir is read even if the tree
// changes while it is read; symbolic links are recorded (never followed),
// hard links become independent regular files, and devices, FIFOs and
// sockets are refused with an *UnsupportedFileError naming the path.
func BuildLayerFromDir(ctx context.Context, dir string, w io.Writer) (diffID digest.Digest, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	defer root.Close()
	entries, err := scanFS(ctx, root.FS())
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	d, err := writeLayer(ctx, entries, w)
	if err != nil {
		return "", fmt.Errorf("building layer from %s: %w", dir, err)
	}
	return d, nil
}

// NormalizeTar reads a tar archive from r (gzip-compressed or plain,
// detected by its magic bytes) and writes the canonical layer of the same
// tree to w, returning its diffID. Entry contents are spooled to a
// temporary directory (os.TempDir), not memory.
//
// Entries with absolute paths or paths that escape the root through "..",
// duplicate entries (after cleaning: "./a" and "a/" are the same entry),
// entries below a non-directory, devices and FIFOs are refused. A hard link
// becomes a copy of its (earlier) target; missing parent directories are
// added with mode 0755; the root entry ("./") and PAX global headers are
// dropped.
func NormalizeTar(ctx context.Context, r io.Reader, w io.Writer) (diffID digest.Digest, err error) {
	d, err := normalizeTar(ctx, r, w, "")
	if err != nil {
		return "", fmt.Errorf("normalizing tar: %w", err)
	}
	return d, nil
}

// normalizeTar is NormalizeTar spooling to tempDir, without error context.
func normalizeTar(ctx context.Context, r io.Reader, w io.Writer, tempDir string) (digest.Digest, error) {
	spool, err := os.MkdirTemp(tempDir, "envreg-tar-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(spool)
	entries, err := readTar(ctx, r, spool)
	if err != nil {
		return "", err
	}
	return writeLayer(ctx, entries, w)
}

// scanFS lists the tree root (without the root itself).
func scanFS(ctx context.Context, root fs.FS) ([]entry, error) {
	var entries []entry
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			if !d.IsDir() {
				return errors.New("root is not a directory")
			}
			return nil
		}
		if err := checkName(p); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode()
		e := entry{name: p, mode: tarMode(m)}
		switch m.Type() {
		case 0:
			e.typ, e.size = tar.TypeReg, info.Size()
			e.open = func() (io.ReadCloser, error) { return root.Open(p) }
		case fs.ModeDir:
			e.typ = tar.TypeDir
		case fs.ModeSymlink:
			target, err := fs.ReadLink(root, p)
			if err != nil {
				return fmt.Errorf("reading symbolic link %s: %w", p, err)
			}
			e.typ, e.linkname, e.mode = tar.TypeSymlink, target, symlinkMode
		default:
			return &UnsupportedFileError{Path: p, Kind: fileKind(m)}
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// tarMode converts permission and special bits to their tar (Unix) values.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	default:
		return "irregular file (" + m.Type().String() + ")"
	}
}

// checkName refuses OCI whiteouts: in a package layer they would delete
// files of other packages when the layers are stacked.
func checkName(name string) error {
	if strings.HasPrefix(path.Base(name), ".wh.") {
		return fmt.Errorf("%s: whiteout files (.wh.*) are not allowed in a package layer", name)
	}
	return nil
}

// readTar reads a gzip-compressed or plain tar, spooling regular file
// contents into files under spool.
func readTar(ctx context.Context, r io.Reader, spool string) ([]entry, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	var entries []entry
	index := map[string]int{} // name -> position in entries
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// archive/tar may flag insecure names (GODEBUG=tarinsecurepath=0);
		// cleanName below refuses them with a better message.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "" { // the root directory
			if hdr.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("entry %q: the root must be a directory", hdr.Name)
			}
			continue
		}
		if _, dup := index[name]; dup {
			return nil, fmt.Errorf("duplicate entry %q", name)
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		e := entry{name: name, mode: hdr.Mode & modeMask}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse:
			file := filepath.Join(spool, strconv.Itoa(i))
			n, err := spoolFile(file, tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			e.typ, e.size = tar.TypeReg, n
			e.open = func() (io.ReadCloser, error) { return os.Open(file) }
		case tar.TypeLink:
			target, err := cleanName(hdr.Linkname)
			if err != nil {
				return nil, fmt.Errorf("hard link %s: %w", name, err)
			}
			t, ok := index[target]
			if !ok || entries[t].typ != tar.TypeReg {
				return nil, fmt.Errorf("hard link %s: target %q is not an earlier regular file", name, hdr.Linkname)
			}
			e = entries[t]
			e.name = name
		case tar.TypeDir:
			e.typ = tar.TypeDir
		case tar.TypeSymlink:
			if hdr.Linkname == "" {
				return nil, fmt.Errorf("symbolic link %s: empty target", name)
			}
			e.typ, e.linkname, e.mode = tar.TypeSymlink, hdr.Linkname, symlinkMode
		case tar.TypeChar:
			return nil, &UnsupportedFileError{Path: name, Kind: "character device"}
		case tar.TypeBlock:
			return nil, &UnsupportedFileError{Path: name, Kind: "block device"}
		case tar.TypeFifo:
			return nil, &UnsupportedFileError{Path: name, Kind: "named pipe (FIFO)"}
		default:
			return nil, &UnsupportedFileError{Path: name, Kind: fmt.Sprintf("tar entry type %q", hdr.Typeflag)}
		}
		index[name] = len(entries)
		entries = append(entries, e)
	}
	return entries, nil
}

func spoolFile(file string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// cleanName returns the canonical form of a tar entry name, "" for the
// root, or an error for names that are absolute or escape the root.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q: absolute paths are not allowed", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q: path escapes the root", name)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// compareNames orders paths component by component ('/' sorts before every
// other byte), which puts parents before children.
func compareNames(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// canonicalize sorts entries, refuses duplicates and entries below a
// non-directory, and adds missing parent directories.
func canonicalize(entries []entry) ([]entry, error) {
	types := make(map[string]byte, len(entries))
	for _, e := range entries {
		if _, dup := types[e.name]; dup {
			return nil, fmt.Errorf("duplicate entry %q", e.name)
		}
		types[e.name] = e.typ
	}
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
			typ, ok := types[dir]
			if !ok {
				types[dir] = tar.TypeDir
				entries = append(entries, entry{name: dir, typ: tar.TypeDir, mode: dirModeImplicit})
				continue
			}
			if typ != tar.TypeDir {
				return nil, fmt.Errorf("%s: parent %s is not a directory", e.name, dir)
			}
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return compareNames(a.name, b.name) })
	return entries, nil
}

// writeLayer writes the canonical gzip-compressed tar of entries to w and
// returns the digest of the uncompressed tar.
func writeLayer(ctx context.Context, entries []entry, w io.Writer) (digest.Digest, error) {
	entries, err := canonicalize(entries)
	if err != nil {
		return "", err
	}
	gz, err := gzip.NewWriterLevel(w, compressionLevel)
	if err != nil {
		return "", err
	}
	// The zero gzip.Header: no name, no comment, mtime 0, OS "unknown".
	dg := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(gz, dg.Hash()))
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.linkname,
			Mode:     e.mode,
			ModTime:  layerModTime,
			Format:   tar.FormatPAX, // USTAR unless an entry needs PAX
		}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("writing %s: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if err := copyContent(tw, e); err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("writing tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("writing gzip: %w", err)
	}
	return dg.Digest(), nil
}

// copyContent copies exactly e.size bytes of e's content and fails if the
// file changed size since it was listed.
func copyContent(w io.Writer, e entry) error {
	f, err := e.open()
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, e.size)
	if err == io.EOF {
		return fmt.Errorf("%s: file shrank from %d to %d bytes while building the layer", e.name, e.size, n)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.name, err)
	}
	if extra, _ := io.CopyN(io.Discard, f, 1); extra > 0 {
		return fmt.Errorf("%s: file grew beyond %d bytes while building the layer", e.name, e.size)
	}
	return nil
}
