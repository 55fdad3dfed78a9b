package sbom

import (
	"strings"

	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// spdxLicenses maps Debian's license short names (DEP-5) to SPDX license
// identifiers where the meaning is the same.
var spdxLicenses = map[string]string{
	"apache-2.0": "Apache-2.0", "artistic": "Artistic-1.0-Perl", "artistic-2.0": "Artistic-2.0",
	"bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause",
	"cc0-1.0": "CC0-1.0", "expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib",
	"gpl-1": "GPL-1.0-only", "gpl-1+": "GPL-1.0-or-later", "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later",
	"gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later",
	"lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later", "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
	"lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later", "agpl-3": "AGPL-3.0-only", "agpl-3+": "AGPL-3.0-or-later",
	"mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "openssl": "OpenSSL", "php-3.01": "PHP-3.01", "php-3.0": "PHP-3.0",
	"python-2.0": "Python-2.0", "psf-2": "PSF-2.0", "curl": "curl", "unicode-dfs-2016": "Unicode-DFS-2016",
	"ofl-1.1": "OFL-1.1", "ijg": "IJG", "libpng": "Libpng", "bsl-1.0": "BSL-1.0", "x11": "X11", "ftl": "FTL",
}

// licenseExpression returns the SPDX declared-license expression of a
// Debian package's license names (their conjunction: the copyright file
// covers different files with different licenses), declaring a
// LicenseRef for each name SPDX does not know, or NOASSERTION for none.
func licenseExpression(doc *spdx.Document, names []string) string {
	if len(names) == 0 {
		return noAssertion
	}
	var ids []string
	for _, n := range names {
		if id, ok := spdxLicenses[strings.ToLower(n)]; ok {
			ids = append(ids, id)
			continue
		}
		ref := "LicenseRef-debian-" + idSafe(n)
		ids = append(ids, ref)
		declare(doc, ref, n)
	}
	ids = sortedUnique(ids)
	if len(ids) == 1 {
		return ids[0]
	}
	return "(" + strings.Join(ids, " AND ") + ")"
}

// declare adds a LicenseRef to doc once.
func declare(doc *spdx.Document, ref, name string) {
	for _, o := range doc.OtherLicenses {
		if o.LicenseIdentifier == ref {
			return
		}
	}
	doc.OtherLicenses = append(doc.OtherLicenses, &spdx.OtherLicense{
		LicenseIdentifier: ref, LicenseName: name,
		ExtractedText: "The package's Debian copyright file (/usr/share/doc/<package>/copyright) names the license " + name + "; its text is in that file.",
	})
}
