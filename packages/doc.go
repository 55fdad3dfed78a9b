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
// The layers themselves, their canonical form and what they may hold, are
// package layer's; packages pushed to the registry are package ingest's.
// Neither imports this package, so the registry does not link recipes or
// apt.
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
// GOMAXPROCS); each layer's file list (layer.Files) is recorded in
// catalog.Layer.Files for the resolver's overlap check.
//
// # Debian packages
//
// A recipe with source.debian (DebianSource) names Debian binary packages,
// pinned (php8.2-cli=8.2.36-1~deb12u1) or with a range of versions of the
// main package (source.debian.versions and keep, expanded into one pinned
// recipe per version by Publisher.ExpandRecipe from the archive's indexes of
// the moment). For each platform the publisher, through package
// internal/debian:
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
//  4. builds the layer in package layer's canonical form, so the same
//     .debs give the same digest, and publishes like any recipe.
//
// # Packages from several Debian releases
//
// A layer installed on a base (source.debian.base) need not come from the
// base's Debian release: the bundled base is trixie (Debian 13), php 8.2
// and nodejs 18 come from bookworm (Debian 12), and any php composes with
// any nodejs. Nix and conda show the way, and the layer builder follows it:
// each layer carries what its base lacks in a prefix of its own,
// /opt/envreg/<name>-<version>:
//
//   - apt resolves the closure against the base's dpkg records, as within
//     one release. Where the base's package satisfies a dependency (trixie's
//     libc6 2.41 for bookworm's "libc6 (>= 2.34)", libssl3t64 providing
//     libssl3 on 64-bit architectures), the layer uses the base's. For a
//     base of another release, the base records lose their Conflicts,
//     Breaks and Replaces: they guard files that one dpkg database would
//     share, and a relocated closure shares none.
//   - the packages built from the source packages of the recipe's requests
//     (php8.2-cli brings php8.2-common; nodejs brings libnode108) and those
//     matching source.debian.inPlace stay at their paths; every other
//     package of the closure is unpacked under the prefix with its paths
//     kept: /usr/lib/x86_64-linux-gnu/libicuuc.so.72 of libicu72 becomes
//     /opt/envreg/php-8.2.36+1.deb12u1/usr/lib/x86_64-linux-gnu/libicuuc.so.72.
//     Moving whole packages, not file by file, is what keeps layers from
//     colliding: bookworm's and trixie's libstdc++6 both ship gdb helpers
//     under /usr/share/gcc, libx11-data ships locale tables, and every
//     package a copyright file.
//   - every dynamically linked ELF file of the layer, in place or moved,
//     gets DT_RPATH = <prefix>/usr/lib/<tuple>:<prefix>/lib/<tuple>:<prefix>/usr/lib
//     (set with Debian's patchelf: the machine's, or fetched from the
//     archive into the cache when none is installed; patchelf.go).
//     DT_RPATH and not DT_RUNPATH: RUNPATH applies only to an object's own
//     direct dependencies (libxml2 loaded by php would not find bookworm's
//     libicuuc.so.72), and a user's LD_LIBRARY_PATH overrides it. RPATH
//     covers the whole tree an executable loads, extensions opened with
//     dlopen included. Every such file must be of the layer's machine, or
//     the publish fails naming it. Two repairs follow, both found by
//     running the arm layers under emulation: patchelf 0.14 (Debian 12's)
//     moves the ELF notes to make room and leaves PT_GNU_PROPERTY pointing
//     into the program header table, which an arm64 kernel refuses at
//     exec (node 20 did not start), so envreg points it at the moved
//     .note.gnu.property; and a library marked as needing an executable
//     stack (bookworm's libde265 on armhf, by an assembly file without
//     .note.GNU-stack) loses the mark, because the base's glibc 2.41
//     refuses to dlopen it (php 8.2's gd did not load).
//   - the moved packages' dpkg records are written to
//     /var/lib/dpkg/status.d/<package>_<name>-<version> with an
//     X-Envreg-Prefix field, so two layers may carry one package of two
//     releases and scanners still see every package with its exact
//     version. Their md5sums are Debian's: patched ELF files no longer
//     match them.
//
// What stays at compiled-in paths still points at the base: OpenSSL's
// modules directory (a moved libcrypto loads the base's legacy provider,
// if asked to), fontconfig's /etc/fonts, plugin directories of moved
// libraries (libheif's). Paths written by two layers are refused at
// composition (the overlap check); one runtime per image (one php, one
// nodejs) keeps generic names such as /usr/bin/php apart.
//
// The base comes from the newest stable release the catalog draws from,
// so its glibc (2.41 in trixie) is at least what the layers of bookworm and
// trixie were built against: `requires: ["base ^13"]`. A package built
// against a newer glibc than the base's (nodejs 24 from forky needs 2.43)
// brings its own: with source.debian.carryNewer, apt may resolve newer
// versions of packages the base provides (forky's libc6, libgcc-s1,
// libstdc++6), and they go into the layer's prefix like any other
// dependency. The C library's files stay as built (the loader relocates
// itself; patching it would break it), and every executable of the layer
// whose PT_INTERP names a loader the prefix holds gets that one
// (/lib64/ld-linux-x86-64.so.2 becomes
// /opt/envreg/nodejs-<version>/usr/lib64/ld-linux-x86-64.so.2, set with
// patchelf --set-interpreter): the kernel starts forky's loader, which
// loads forky's libc.so.6 through the DT_RPATH. A layer that carries a C
// library but not the loader its executables name fails to publish,
// naming the file. Such a layer still requires "base ^13": it uses the
// base's /bin/sh, CA store and time zones, and its own glibc reads the
// base's gconv modules and locales at their compiled-in paths (node uses
// ICU, not iconv). The other choice, a base from forky, would have put
// testing's moving glibc under every layer; carrying it costs only the
// layer that needs it (nodejs 24: 51.9 MB on linux/amd64, of which forky's
// libc6 2.43 is 2.5 MB compressed, 5.3 MB unpacked).
//
// A layer on a layer (composer on php, npm on nodejs) sees the packages of
// every layer below as installed, those moved into the lower layer's
// prefix included: apt does not add them again, but the upper layer's ELF
// files do not find them (their DT_RPATH names only their own prefix).
// composer and npm are PHP and JavaScript run by the runtime below and
// need none; the ELF files Debian's npm drags in for node-gyp (python3, in
// npm's prefix and not on PATH) do not run on forky's npm, whose glibc is
// in nodejs 24's prefix.
//
// One release of a layer on a layer may serve several releases of the
// layer below. The catalog holds one release per version without build
// metadata, so bookworm's npm 9.2.0~ds1-1 (for nodejs 18) and trixie's
// 9.2.0~ds1-3 (for nodejs 20) cannot both be npm 9.2.0: the bundled npm
// 9.2.0 is trixie's, built on nodejs 20, and requires "nodejs ^18 || ^20".
// What it loads from nodejs 20's layer that nodejs 18's lacks
// (node-minimatch and its two dependencies, which trixie's libnode115
// depends on and bookworm's libnode108 does not) it names in
// source.debian.carry: those packages join its closure as the base has
// them, so the layer writes the very files of nodejs 20's layer (the
// overlap check admits a path written twice with the same content) and
// brings them along on nodejs 18. It costs 0.2 MB per layer (31.9 MB
// without, 32.1 MB with, linux/amd64). Without node-minimatch, npm 9.2.0
// on nodejs 18 does not start (tried). The other node-* modules of the
// nodejs layers (acorn, undici, cjs-module-lexer, xtend) are each
// nodejs's own, and npm works with either's: the e2e test installs, lists
// and packs a package with nodejs 18 and 20.
//
// Measured on linux/amd64 (compressed layer bytes, 2026-12-03): base
// (trixie) 17.7 MB; php 8.2.36 (bookworm) 49.0 MB; php 8.4.28 (trixie)
// 61.3 MB; nodejs 18 (bookworm) 33.2 MB; nodejs 20 (trixie) 37.1 MB;
// nodejs 24 (forky, with glibc) 51.9 MB; npm 9.2.0 (trixie) 32.1 MB and
// 12.2.0 (forky) 38.2 MB; graphicsmagick 1.3.40 (bookworm) 30.0 MB, 1.3.45
// (trixie) 12.1 MB; composer 2.5.5 3.8 MB. The prefix costs no bytes by
// itself; the price is that layers no longer share libraries: libicu72 is
// in both php 8.2's and nodejs 18's layer, and each layer carries the
// image and compression libraries it needs rather than finding them in a
// fatter base. docs/publishing.md has the sizes per platform.
//
// A base's paths stay as the .debs have them (trixie's base-files ships
// /bin -> usr/bin and the other usr-merge links itself). A layer on a base
// is usr-merged as dpkg would on such a system: the files a package ships
// under /bin, /sbin and /lib* go under /usr (bookworm's php8.2-fpm ships
// /lib/systemd/system/php8.2-fpm.service), because a layer directory entry
// /lib would replace the base's symbolic link in an overlay filesystem.
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
// architecture and sources; with Progress set, apt's download lines go
// there as AptOutput events, like the progress of every layer's
// compression (see Event).
//
// # Bundled recipes and seeding
//
// The recipes in the directories of this package (a trixie base, pinned;
// ranges for the rest: the three newest php 8.2 patches, php 8.4, composer
// for each, nodejs 18, 20 and 24, npm for each nodejs, graphicsmagick
// from bookworm and trixie; each for linux/amd64, linux/arm64 and
// linux/arm/v7) are embedded: Bundled loads them, and
// LoadRecipeDir on the packages/ directory of the source tree finds the same
// ones (testdata and "_" directories are skipped).
//
// # The publishing job
//
// Syncer is the engine of `envreg sync` and of `envreg serve --seed` (in
// the background, linux/amd64 first): a round publishes the recipe
// versions and platforms the catalog lacks, bases first and every
// package's newest version first, and nothing that exists, so a second
// start publishes nothing. Its catalog writes are exclusive
// (catalog.PublishOptions.Exclusive): when jobs race, the catalog decides
// which one recorded a version, whole. A failed version is reported with a
// reason (SyncFailure) and the round goes on. Each round expands the ranged
// recipes anew, so a patch the archive adds is published by the next round.
package packages
