package packages

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/envreg/envreg/packages/internal/debian"
)

// baseEntry is what a package of the base writes at one path (the content
// itself is not read: a regular file is compared by size).
type baseEntry struct {
	typ      byte
	size     int64
	linkname string
	owner    string
}

// checkBase refuses a layer that writes a path the packages below it
// write differently: another file or link at the same path, or entries
// beneath a path that is a file or symbolic link below (the trixie base's
// /lib -> usr/lib). The resolver would refuse every image with both
// layers; this names the path, both packages and (through the caller) the
// platform at publishing time. Base packages whose .deb is not in the
// cache are not checked (the resolver still is).
func (t *tree) checkBase(ctx context.Context, base []debian.Package) error {
	if len(base) == 0 {
		return nil
	}
	below, err := readBase(ctx, base)
	if err != nil {
		return err
	}
	for _, e := range t.entries {
		dir := path.Dir(e.name)
		if e.typ == tar.TypeDir {
			dir = e.name
		}
		for ; dir != "."; dir = path.Dir(dir) {
			if b, ok := below[dir]; ok && b.typ != tar.TypeDir {
				return fmt.Errorf("/%s of package %s needs /%s to be a directory, but the base's package %s has a file or symbolic link there", e.name, t.owner[e.name], dir, b.owner)
			}
		}
		b, ok := below[e.name]
		if !ok || e.typ == tar.TypeDir && b.typ == tar.TypeDir {
			continue
		}
		same := b.typ == e.typ && (e.typ == tar.TypeSymlink && b.linkname == e.linkname || e.typ == tar.TypeReg && b.size == e.size)
		if !same {
			return fmt.Errorf("/%s is written by package %s and, differently, by the base's package %s", e.name, t.owner[e.name], b.owner)
		}
	}
	return nil
}

// readBase lists the paths the cached .debs of base write.
func readBase(ctx context.Context, base []debian.Package) (map[string]baseEntry, error) {
	below := map[string]baseEntry{}
	for _, pk := range base {
		if debian.Verify(pk) != nil {
			continue
		}
		r, err := debian.OpenData(ctx, pk.File)
		if err != nil {
			return nil, err
		}
		err = readBaseTar(r, pk.Name, below)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("reading base package %s: %w", pk.Name, err)
		}
	}
	return below, nil
}

func readBaseTar(r io.Reader, owner string, below map[string]baseEntry) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+hdr.Name), "/"), "/")
		if name == "" || droppedDoc(name) || hdr.Typeflag == tar.TypeLink {
			continue
		}
		below[name] = baseEntry{typ: hdr.Typeflag, size: hdr.Size, linkname: hdr.Linkname, owner: owner}
	}
}
