package sbom

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// debPurl is the package URL of a Debian package:
// pkg:deb/debian/php8.2-cli@8.2.36-1~deb12u1?arch=amd64&distro=debian-12.
// The distro qualifier is left out when the layer (or, in an image, the
// base) has no os-release, or one of another distribution than Debian.
func debPurl(c catalog.Component, distro string) string {
	s := "pkg:deb/debian/" + escape(c.Name) + "@" + escape(c.Version)
	var q []string
	if c.Architecture != "" {
		q = append(q, "arch="+escape(c.Architecture))
	}
	if strings.HasPrefix(distro, "debian-") {
		q = append(q, "distro="+escape(distro))
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// envregPurl is the package URL of an envreg package version's layer: the
// generic type, with the layer's digest as its checksum
// (pkg:generic/envreg/php@8.2.36?checksum=sha256:…).
func envregPurl(r catalog.Release, l catalog.Layer) string {
	return fmt.Sprintf("pkg:generic/envreg/%s@%s?checksum=%s", escape(r.Name), escape(r.Version.String()), escape(l.Digest.String()))
}

// ociPurl is the package URL of a composed platform manifest
// (pkg:oci/env@sha256%3A…?arch=amd64).
func ociPurl(stack string, p catalog.Platform, d digest.Digest) string {
	s := fmt.Sprintf("pkg:oci/%s@%s?arch=%s", escape(stack), escape(d.String()), escape(p.Architecture))
	if p.Variant != "" {
		s += "&variant=" + escape(p.Variant)
	}
	return s
}

// escape percent-encodes what a purl component may not carry as is
// (everything but letters, digits and ".-_~"; ':' stays in a
// checksum qualifier's value, as purl allows).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(".-_~", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
