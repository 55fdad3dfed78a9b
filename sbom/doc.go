// Package sbom says what envreg's images contain, as SPDX 2.3 JSON
// documents (software bills of materials), from facts the catalog records.
//
// At publish time, Scan reads a package layer once and returns the Debian
// packages its dpkg records list (/var/lib/dpkg/status.d/<package>, the
// distroless convention syft, trivy and grype read, and a classic
// /var/lib/dpkg/status), each with its name, version, architecture and the
// licenses its machine-readable copyright file
// (/usr/share/doc/<package>/copyright, DEP-5) states, plus the distribution
// the layer's os-release names (or, for a Debian recipe's layer without
// one, the release of its sources: catalog.Layer.Distro). In an image
// SBOM, the packages of a layer that names no distribution take the
// base's. The publisher stores them in the catalog
// layer (catalog.Layer.Components, Distro), so that composing an SBOM later
// reads nothing but the catalog snapshot.
//
// Layer renders the SBOM of one package version's layer for one platform:
// the package itself (with its layer digest) and every Debian package it
// carries, with a purl (pkg:deb/debian/php8.2-cli@8.2.36-1~deb12u1?arch=amd64&distro=debian-12).
// Image renders the SBOM of a composed platform manifest: the image, the
// package versions it was composed of in layer order (each with its layer
// digest: the package → layer mapping) and what each carries, and the
// resolution record (each version and the requirements it declared).
// Artifact wraps an SBOM into an OCI artifact manifest whose subject is the
// platform manifest, which the registry lists through the referrers API.
//
// Determinism. Equal input gives byte-identical output, on every replica
// and after every restart, so that the artifact of a manifest has one
// digest: the document is built from library structs (spdx/tools-golang),
// every list is sorted or in layer order, the SPDX namespace is derived
// from the subject's digest, and the creation time (which SPDX requires) is
// not the clock's: it is the newest publish time of the package versions
// the document describes, in UTC, the same time composed image configs
// carry as Created.
//
// Licenses. Debian's short names are mapped to SPDX license identifiers
// where the mapping is exact (GPL-2+ → GPL-2.0-or-later, Expat → MIT, …);
// any other name becomes a LicenseRef-debian-<name> declared in the
// document with a note that the Debian copyright file names it. A package
// without a machine-readable copyright file gets NOASSERTION. Files are
// not analysed (filesAnalyzed false): the catalog's file lists are for the
// overlap check and are not repeated here.
//
// This package reads bytes it is given; it does no I/O of its own, and
// knows nothing of HTTP or of the stores.
package sbom
