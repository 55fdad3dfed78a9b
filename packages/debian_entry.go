package packages

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/packages/layer"
)

// The Debian layer builder (debian.go) merges the trees of several .debs
// into one layer. It was written against the entries of the layer code
// when that was part of this package; entry, readTar, writeLayer and
// symlinkMode keep it as it was, over package layer's Entry, ReadTar and
// Write, while the new Debian recipes of issue 17 are written in
// debian.go. Once they are in, debian.go can use layer.Entry directly and
// this file goes.

// entry is a layer.Entry with the field names debian.go uses.
type entry struct {
	name     string
	typ      byte
	mode     int64
	size     int64
	linkname string
	open     func() (io.ReadCloser, error)
}

// symlinkMode is the mode of every symbolic link of a layer.
const symlinkMode = 0o777

// readTar reads a gzip-compressed or plain tar for a Debian layer,
// spooling regular file contents into files under spool. Debian content
// keeps setuid and setgid files (see layer.Policy); every other rule and
// the default limits apply.
func readTar(ctx context.Context, r io.Reader, spool string) ([]entry, error) {
	les, err := layer.Policy{AllowSetuid: true}.ReadTar(ctx, r, spool)
	if err != nil {
		return nil, err
	}
	es := make([]entry, len(les))
	for i, e := range les {
		es[i] = entry{name: e.Name, typ: e.Type, mode: e.Mode, size: e.Size, linkname: e.Linkname, open: e.Open}
	}
	return es, nil
}

// writeLayer writes the canonical layer of entries (layer.Write).
func writeLayer(ctx context.Context, entries []entry, w io.Writer) (digest.Digest, error) {
	les := make([]layer.Entry, len(entries))
	for i, e := range entries {
		les[i] = layer.Entry{Name: e.name, Type: e.typ, Mode: e.mode, Size: e.size, Linkname: e.linkname, Open: e.open}
	}
	return layer.Write(ctx, les, w)
}
