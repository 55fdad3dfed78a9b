// Package layer builds reproducible package layers and checks layers
// against envreg's layer policy: the pure tar side of the registry, like
// containerd's archive package. It turns a directory, an fs.FS, a tar
// archive or a list of entries into one canonical gzip-compressed tar
// (Build, BuildFromDir, NormalizeTar, Write), and checks a layer kept as
// it is, byte for byte (Policy.Inspect, for pushed packages).
//
// It is not the publishing job (package packages stores the blob and
// records the release) nor push ingestion (package ingest): it reads from
// an io.Reader or a directory and writes to an io.Writer, and imports no
// other envreg package, so the pull path and the push path can check
// layers without linking recipes or apt.
//
// What a layer may hold is Policy's documentation: the rules every layer
// follows, the limits, and the refusals (*RefusedError naming the entry
// and the Rule it broke, *UnsupportedFileError for devices, FIFOs and
// sockets; both wrap ErrRefused, so callers map them to a client error).
//
// # Reproducible layers
//
// The same tree must give the same layer digest on every machine and every
// run, otherwise republishing an unchanged package would fail with
// catalog.ErrExists and every image that contains it would change digest.
// Build, BuildFromDir, NormalizeTar and Write therefore write one
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
//     (mode & 07777); symbolic links always have mode 0777. Whether a
//     setuid or setgid file may be in a layer at all is the Policy's
//     decision (refused by default for tar and directory input; see
//     Policy, which also lists what every layer refuses and the limits).
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
package layer
