// Package packages is envreg's publishing side: it turns package content (a
// directory, a tar file, or a YAML recipe that names one per platform, or
// names Debian packages) into reproducible layer blobs and catalog
// releases.
//
// It is not a package manager: it does not resolve envreg dependencies
// between releases (package resolver does; Debian dependencies inside a
// layer are apt's, see below), does not synthesize images (package
// manifestgen does), and does not choose storage backends (cmd/envreg does;
// this package sees only the layerstore.Writer and catalog.Publisher ports).
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
//
// Layers of one recipe's platforms are built concurrently (up to
// GOMAXPROCS); each layer's file list (LayerFiles) is recorded in
// catalog.Layer.Files for the resolver's overlap check.
//
// # Debian packages
//
// A recipe with source.debian (DebianSource) names Debian binary packages,
// usually pinned (php8.2-cli=8.2.36-1~deb12u1). For each platform the
// publisher, through package internal/debian:
//
//  1. resolves, with apt and a private configuration (nothing of the
//     machine's apt.conf.d, dpkg database or cache is read or written), the
//     closure of the packages minus everything the recipe's base recipe
//     (source.debian.base, recursively) provides: apt sees the base's
//     packages as installed. A package missing from the archive, a missing
//     version, or an unsatisfiable dependency fails here, naming it, before
//     anything is stored;
//  2. downloads the .debs into the cache (CacheDir) and checks every file
//     against the SHA256 of the signed archive index, re-downloading a
//     corrupted cached file and refusing one that still does not match;
//  3. unpacks each .deb's filesystem tree without running maintainer
//     scripts (dpkg-deb --fsys-tarfile into archive/tar), writes each
//     package's control record with "Status: install ok installed" to
//     /var/lib/dpkg/status.d/<package> and its md5sums to
//     /var/lib/dpkg/status.d/<package>.md5sums (the distroless convention
//     that syft, trivy and grype read), drops man and info pages and
//     /usr/share/doc except copyright files, builds
//     /etc/ssl/certs/ca-certificates.crt when the layer has CA certificates
//     (what update-ca-certificates would have done), and adds the recipe's
//     symlinks and files (what other maintainer scripts would have done:
//     alternatives such as /usr/bin/php -> php8.2, enabled PHP modules);
//  4. builds the layer in the canonical form above, so the same .debs give
//     the same digest, and publishes like any recipe.
//
// Paths stay as the .debs have them (/bin, /lib and /lib64 are directories,
// not usr-merge symlinks): a layer directory entry would replace a
// symlink of a lower layer in an overlay filesystem.
//
// The release version is the recipe's, or, when the recipe has none, derived
// from the main (first) package's pinned Debian version: 8.2.36-1~deb12u1
// gives 8.2.36+1.deb12u1 (epoch dropped, "+really" honoured, the rest in
// the build metadata, where '~' is not allowed; see debian.Version.Semver).
// Build metadata does not count in semver precedence, so tags select
// 8.2.36 as usual. The exact Debian facts are labels: LabelDebianPackage,
// LabelDebianVersion and LabelDebianPackages (the closure, name=version).
//
// Package lists are refreshed at most once per Publisher (one run) per
// architecture and sources; with Progress set, apt's download lines and a
// compression line go there, for a terminal.
//
// # Bundled recipes and seeding
//
// The recipes in the directories of this package (base, php at two
// versions, nodejs, graphicsmagick) are embedded: Bundled loads them, and
// LoadRecipeDir on the packages/ directory of the source tree finds the same
// ones (testdata and "_" directories are skipped). Publisher.Seed publishes
// the recipes that a catalog snapshot does not have yet, bases first, so a
// second start of `envreg serve --seed` publishes nothing.
package packages
