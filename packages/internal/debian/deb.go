package debian

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
)

// Deb is the control information of one .deb file.
type Deb struct {
	Control Paragraph // the control file
	MD5Sums []byte    // the md5sums file, nil if the package has none
}

// ReadDeb reads the control file and md5sums of the .deb file, with
// `dpkg-deb --ctrl-tarfile`. Maintainer scripts are not read, let alone run.
func ReadDeb(ctx context.Context, file string) (*Deb, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--ctrl-tarfile", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading control archive of %s: dpkg-deb: %w%s", file, err, stderrText(&stderr))
	}
	d := &Deb{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading control archive of %s: %w", file, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		switch path.Clean(hdr.Name) {
		case "control":
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading control file of %s: %w", file, err)
			}
			ps, err := ParseParagraphs(data)
			if err != nil {
				return nil, fmt.Errorf("control file of %s: %w", file, err)
			}
			if len(ps) != 1 {
				return nil, fmt.Errorf("control file of %s: %d paragraphs, want 1", file, len(ps))
			}
			d.Control = ps[0]
		case "md5sums":
			if d.MD5Sums, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("reading md5sums of %s: %w", file, err)
			}
		}
	}
	if d.Control == nil {
		return nil, fmt.Errorf("%s has no control file", file)
	}
	if d.Control.Get("Package") == "" || d.Control.Get("Version") == "" {
		return nil, fmt.Errorf("control file of %s lacks Package or Version", file)
	}
	return d, nil
}

// OpenData returns the filesystem tree of the .deb file as an uncompressed
// tar stream (`dpkg-deb --fsys-tarfile`): what dpkg would unpack, without
// running any maintainer script. Close reports a failure of dpkg-deb.
func OpenData(ctx context.Context, file string) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", file)
	d := &dataReader{cmd: cmd, file: file}
	cmd.Stderr = &d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	d.r = out
	return d, nil
}

type dataReader struct {
	cmd    *exec.Cmd
	file   string
	r      io.ReadCloser
	stderr bytes.Buffer
}

func (d *dataReader) Read(b []byte) (int, error) { return d.r.Read(b) }

// Close reads what is left (the tar padding after the end marker), so that
// dpkg-deb is not killed by SIGPIPE, and waits for it.
func (d *dataReader) Close() error {
	_, cerr := io.Copy(io.Discard, d.r)
	if err := d.cmd.Wait(); err != nil {
		return fmt.Errorf("reading filesystem archive of %s: dpkg-deb: %w%s", d.file, err, stderrText(&d.stderr))
	}
	return cerr
}

func stderrText(b *bytes.Buffer) string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return ""
	}
	return ": " + s
}

// ChecksumError reports a .deb whose content is not what the signed archive
// index says.
type ChecksumError struct {
	Package, Version, Arch string
	File                   string
	Want, Got              string // hex SHA256
	WantSize, GotSize      int64
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("debian package %s %s (%s): %s has SHA256 %s (%d bytes), but the signed archive index says %s (%d bytes)",
		e.Package, e.Version, e.Arch, e.File, e.Got, e.GotSize, e.Want, e.WantSize)
}

// Verify checks that the file of p has the size and SHA256 that the archive
// index gives for p. A missing file is reported as an error wrapping
// fs.ErrNotExist, a different one as a *ChecksumError.
func Verify(p Package) error {
	f, err := os.Open(p.File)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.File, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != strings.ToLower(p.SHA256) || n != p.Size {
		return &ChecksumError{
			Package: p.Name, Version: p.Version, Arch: p.Architecture, File: p.File,
			Want: p.SHA256, Got: got, WantSize: p.Size, GotSize: n,
		}
	}
	return nil
}

// IsChecksumError reports whether err is or wraps a *ChecksumError.
func IsChecksumError(err error) bool {
	var ce *ChecksumError
	return errors.As(err, &ce)
}
