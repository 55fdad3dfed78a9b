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
//  4. builds the layer in package layer's canonical form, so the same
//     .debs give the same digest, and publishes like any recipe.
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
// architecture and sources; with Progress set, apt's download lines go
// there as AptOutput events, like the progress of every layer's
// compression (see Event).
//
// # Bundled recipes and seeding
//
// The recipes in the directories of this package (base, php at two
// versions, nodejs, graphicsmagick) are embedded: Bundled loads them, and
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
// reason (SyncFailure) and the round goes on.
package packages
