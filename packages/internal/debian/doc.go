// Package debian gets Debian binary packages for envreg's publishing job:
// it resolves a dependency closure with apt, downloads and verifies the
// .deb files, and reads their control data and filesystem trees. It does
// not build layers (package packages does) and never installs anything.
//
// # A private apt
//
// apt does the work that must not be redone badly: reading the signed
// InRelease files (gpgv against the keyrings of the sources), checking the
// index hashes, picking versions and solving dependencies. But apt normally
// acts on the machine it runs on, and the publishing job must neither use
// nor change the build machine's package state. An Apt therefore runs
// apt-get and apt-cache with APT_CONFIG pointing at a generated file that
// sets, for one architecture:
//
//   - no configuration of the machine: Dir::Etc::Main, Dir::Etc::Parts and
//     the preferences point into the cache, so hooks of apt.conf.d (e.g.
//     "rm /var/cache/apt/archives/*.deb"), proxies, pins and
//     "Check-Valid-Until false" do not apply. APT_CONFIG is read before the
//     parts directory, which is why these cannot be -o options. Proxies
//     come from http_proxy in the environment.
//   - the machine's sources (/etc/apt/sources.list, sources.list.d) and
//     keyrings by default, or generated one-line sources: entries without
//     options get [signed-by=DefaultKeyring]; options that skip signature
//     checks (trusted=yes, allow-insecure, ...) are refused.
//   - APT::Architecture and APT::Architectures: arm64 lists and .debs come
//     from the same archive on an amd64 machine; nothing runs them.
//   - a status file of its own (Dir::State::status): empty for the stack's
//     base, and for a package on top of it exactly the base's records, so
//     that apt computes the closure minus what the base provides.
//   - Debug::NoLocking, because apt would otherwise lock the machine's dpkg
//     database; concurrent processes sharing a cache serialize on a flock of
//     CacheDir/lock instead.
//
// # Cache layout
//
//	CacheDir/
//	  lock                       flock(2) held while apt runs
//	  archives/                  .deb files of every architecture (Dir::Cache::archives)
//	    partial/
//	  amd64-machine/             one directory per architecture and sources
//	    apt.conf                 the APT_CONFIG file
//	    lists/                   package lists (Dir::State)
//	    pkgcache.bin             apt's binary caches of the lists
//	    srcpkgcache.bin
//	    status, preferences      empty defaults
//	    empty.d/                 stands for the machine's apt.conf.d
//	  arm64-3fa9c1e02b7d/        generated sources: a hash of the sources list
//	    sources.list
//
// # Resolving, fetching, verifying
//
// Resolve runs `apt-get install --simulate --no-install-recommends` with a
// status file listing the installed packages and reads the "Inst" lines: the
// closure. A request name=version also pins its source package to that
// version (apt preferences "Package: src:php8.2"), so that an older
// php8.2-cli brings the php8.2-common of the same version rather than
// failing on the "=" dependency. apt's refusals become typed errors that
// name the package: *NotFoundError (with the versions the archive has),
// *UnsatisfiableError (apt's explanation) and *InstalledConflictError (the
// closure would replace or remove a package of the base, whose files are in
// another layer).
//
// Every package's index entry (apt-cache show) gives its SHA256 and size.
// Fetch checks cached files against them first: apt itself trusts a cached
// .deb of the right size without hashing it, so a corrupted cache would
// otherwise be published. A mismatching file is removed and logged,
// missing files are downloaded with `apt-get download` (which verifies
// them), and every file is checked again; a file that still does not match
// is a *ChecksumError and is never unpacked.
//
// # Unpacking
//
// ReadDeb and OpenData use `dpkg-deb --ctrl-tarfile` and `--fsys-tarfile`:
// the control file and md5sums, and the filesystem tree as a tar stream,
// exactly what dpkg would unpack. Maintainer scripts are never run; the
// distroless way.
package debian
