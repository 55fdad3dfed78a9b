// Package packages is envreg's publishing side: it turns package content (a
// directory, a tar file, or a YAML recipe that names one per platform) into
// reproducible layer blobs and catalog releases.
//
// It is not a package manager: it does not resolve dependencies (package
// resolver does), does not synthesize images (package manifestgen does), and
// does not choose storage backends (cmd/envreg does; this package sees only
// the layerstore.Writer and catalog.Publisher ports).
//
// # Reproducible layers
//
// The same tree must give the same layer digest on every machine and every
// run, otherwise republishing an unchanged package would fail with
// catalog.ErrExists and every image that contains it would change digest.
// BuildLayer, BuildLayerFromDir and NormalizeTar therefore write one
// canonical form, whatever the source:
//
//   - Entries are sorted in tree order: paths are compared component by
//     component, so a parent always precedes its children and "usr/local/bin"
//     precedes "usr/local-note". The root directory itself is not an entry
//     (its mode, often 0700 for a temporary directory, must not replace the
//     mode of / in the image).
//   - Every entry has mtime 0 (the Unix epoch), uid and gid 0, and empty user
//     and group names; no atime, ctime, xattrs or ACLs are recorded.
//   - Modes keep the permission bits and setuid, setgid and sticky
//     (mode & 07777); symbolic links always have mode 0777. Policy about
//     setuid files is a separate concern.
//   - Only directories, regular files and symbolic links are allowed.
//     Devices, FIFOs and sockets are refused with an *UnsupportedFileError
//     naming the path. Hard links become independent regular files, so a tar
//     and a directory holding the same tree give the same layer. OCI whiteout
//     files (".wh.*") are refused: a package layer must never delete files
//     that other packages (or base) put in the image.
//   - Headers are USTAR, and PAX only for an entry that USTAR cannot express
//     (long or non-ASCII names, large sizes): tar.FormatPAX in archive/tar
//     means exactly that.
//   - Compression is compress/gzip at gzip.DefaultCompression with an empty
//     header (no name, no comment, mtime 0). The diffID (digest of the
//     uncompressed tar) depends only on the tree; the blob digest also
//     depends on the Go compressor, which has been stable for years. The
//     golden digests in build_test.go fail if a toolchain upgrade changes it,
//     which would make republishing unchanged packages fail with ErrExists.
//
// For example the tree
//
//	usr/local/bin/php      (0755, 12 bytes)
//	usr/local-note         (0644)
//	etc/                   (0755)
//
// becomes the entries etc/, usr/ (0755, synthesized when a tar source omits
// it), usr/local/, usr/local/bin/, usr/local/bin/php, usr/local-note.
//
// # Publishing order
//
// Publisher.Publish validates the whole input first (nothing is built or
// stored for an invalid one), builds the layer into a temporary file while
// hashing it, stores the blob through layerstore.Writer (which verifies
// digest and size and makes it durable), and only then records the release
// with catalog.Publisher. A failure at any step before the last leaves no
// catalog entry; at most a verified, unreferenced blob remains. A recipe is
// recorded in one catalog.Publish call carrying the layers of all its
// platforms, so readers see all of its platforms or none.
package packages
