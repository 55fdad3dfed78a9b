package layer

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"strings"
)

// Files lists what a gzip-compressed layer writes, for
// catalog.Layer.Files: every regular file as "sha256:<hex> <mode>" (mode
// in four octal digits, e.g. "sha256:ab… 0755") and every symbolic link as
// "-> <target>", keyed by path without a leading "/" or "./". Directories
// are not listed: two layers may both create /usr/bin.
//
// It reads a layer this package wrote, or checked with Policy.Inspect
// (which returns the same list as it checks); it checks nothing itself.
func Files(r io.Reader) (map[string]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(hdr.Name, "./")), "/")
		switch hdr.Typeflag {
		case tar.TypeReg:
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return nil, err
			}
			files[name] = fmt.Sprintf("sha256:%x %04o", h.Sum(nil), hdr.Mode&modeMask)
		case tar.TypeSymlink:
			files[name] = "-> " + hdr.Linkname
		}
	}
}
