package sbom

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/envreg/envreg/catalog"
)

// MediaType is the media type of an SPDX JSON document, and the artifact
// type of the OCI artifacts that carry one.
const MediaType = "application/spdx+json"

// noAssertion is SPDX's "not stated".
const noAssertion = "NOASSERTION"

// creator names the tool in every document.
var creator = common.Creator{CreatorType: "Tool", Creator: "envreg"}

// ImageInput is what Image describes: one platform manifest of a stack's
// composition.
type ImageInput struct {
	Stack    string
	Platform catalog.Platform
	// Manifest is the platform manifest's digest.
	Manifest digest.Digest
	// Releases are the package versions in layer order (the resolution's).
	Releases []catalog.Release
}

// Image renders the SBOM of a composed platform manifest (see the package
// documentation). Equal input gives equal bytes.
func Image(in ImageInput) ([]byte, error) {
	if len(in.Releases) == 0 {
		return nil, fmt.Errorf("sbom of %s: no package versions", in.Manifest)
	}
	distro := ""
	for _, r := range in.Releases {
		if l, ok := r.Layer(in.Platform); ok && distro == "" {
			distro = l.Distro
		}
	}
	img := &spdx.Package{
		PackageName: in.Stack + " " + in.Platform.String(), PackageSPDXIdentifier: "Image",
		PackageVersion: in.Manifest.String(), PackageDownloadLocation: noAssertion,
		PackageChecksums:          checksums(in.Manifest),
		PackageExternalReferences: []*spdx.PackageExternalReference{purlRef(ociPurl(in.Stack, in.Platform, in.Manifest))},
		PrimaryPackagePurpose:     "CONTAINER",
		PackageComment:            resolutionRecord(in),
	}
	doc := newDocument(fmt.Sprintf("%s@%s %s", in.Stack, in.Manifest, in.Platform),
		fmt.Sprintf("%s/%s/%s", in.Stack, in.Platform, in.Manifest), in.Releases, img)
	for i, r := range in.Releases {
		l, ok := r.Layer(in.Platform)
		if !ok {
			return nil, fmt.Errorf("sbom of %s: %s has no layer for %s", in.Manifest, r.ID(), in.Platform)
		}
		// A layer's packages are of its own release when it says
		// (bookworm's php on a trixie base), else of the base's.
		addRelease(doc, common.ElementID(fmt.Sprintf("Layer-%d", i)), "Image", r, l, cmp.Or(l.Distro, distro))
	}
	return marshal(doc)
}

// Layer renders the SBOM of release r's layer l: the package version and
// the Debian packages the layer carries. Equal input gives equal bytes.
func Layer(r catalog.Release, l catalog.Layer) ([]byte, error) {
	doc := newDocument(fmt.Sprintf("%s %s", r.ID(), l.Platform), fmt.Sprintf("packages/%s/%s/%s/%s", r.Name, r.Version, l.Platform, l.Digest),
		[]catalog.Release{r}, nil)
	addRelease(doc, "Layer", "", r, l, l.Distro)
	return marshal(doc)
}

// newDocument returns a document dated by the releases' newest publish
// time, describing top (or nothing yet when top is nil).
func newDocument(name, namespace string, rels []catalog.Release, top *spdx.Package) *spdx.Document {
	var created time.Time
	for _, r := range rels {
		if r.Published.After(created) {
			created = r.Published
		}
	}
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName: name, DocumentNamespace: "https://envreg.invalid/spdx/" + namespace,
		CreationInfo: &spdx.CreationInfo{Creators: []common.Creator{creator},
			Created: created.UTC().Truncate(time.Second).Format(time.RFC3339)},
	}
	if top != nil {
		doc.Packages = append(doc.Packages, top)
		doc.Relationships = append(doc.Relationships, relate("DOCUMENT", "DESCRIBES", top.PackageSPDXIdentifier))
	}
	return doc
}

// addRelease adds release r's layer l as package id, contained in parent
// (described by the document when parent is ""), and its components.
func addRelease(doc *spdx.Document, id common.ElementID, parent common.ElementID, r catalog.Release, l catalog.Layer, distro string) {
	p := &spdx.Package{
		PackageName: r.Name, PackageSPDXIdentifier: id, PackageVersion: r.Version.String(),
		PackageFileName: l.Digest.String(), PackageDownloadLocation: noAssertion,
		PackageChecksums:          checksums(l.Digest),
		PackageExternalReferences: []*spdx.PackageExternalReference{purlRef(envregPurl(r, l))},
		PackageComment:            fmt.Sprintf("layer %s (diffID %s, %d bytes, %s) for %s", l.Digest, l.DiffID, l.Size, l.MediaType, l.Platform),
		PrimaryPackagePurpose:     "LIBRARY",
	}
	doc.Packages = append(doc.Packages, p)
	if parent == "" {
		doc.Relationships = append(doc.Relationships, relate("DOCUMENT", "DESCRIBES", id))
	} else {
		doc.Relationships = append(doc.Relationships, relate(parent, "CONTAINS", id))
	}
	for j, c := range l.Components {
		cid := common.ElementID(fmt.Sprintf("%s-%s-%d-%s", id, c.Type, j, idSafe(c.Name)))
		decl := licenseExpression(doc, c.Licenses)
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName: c.Name, PackageSPDXIdentifier: cid, PackageVersion: c.Version,
			PackageDownloadLocation: noAssertion, PackageLicenseConcluded: noAssertion, PackageLicenseDeclared: decl,
			PackageExternalReferences: []*spdx.PackageExternalReference{purlRef(debPurl(c, distro))},
			PackageSupplier:           &common.Supplier{Supplier: "Debian", SupplierType: "Organization"},
			PrimaryPackagePurpose:     "LIBRARY",
		})
		doc.Relationships = append(doc.Relationships, relate(id, "CONTAINS", cid))
	}
}

// resolutionRecord is the image package's comment: what was resolved, in
// layer order, with the requirements each version declared.
func resolutionRecord(in ImageInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "composed by envreg for stack %s, %s; resolution (layer order):", in.Stack, in.Platform)
	for i, r := range in.Releases {
		l, _ := r.Layer(in.Platform)
		fmt.Fprintf(&b, "\n%d. %s %s, layer %s", i, r.Name, r.Version, l.Digest)
		if len(r.Requires) > 0 {
			var reqs []string
			for _, c := range r.Requires {
				reqs = append(reqs, c.String())
			}
			fmt.Fprintf(&b, ", requires %s", strings.Join(reqs, ", "))
		}
	}
	return b.String()
}

func relate(a common.ElementID, kind string, b common.ElementID) *spdx.Relationship {
	return &spdx.Relationship{RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: kind}
}

func checksums(d digest.Digest) []common.Checksum {
	if d.Algorithm() != digest.SHA256 {
		return nil
	}
	return []common.Checksum{{Algorithm: common.SHA256, Value: d.Encoded()}}
}

func purlRef(purl string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: purl}
}

// marshal writes doc with the library's JSON writer.
func marshal(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf); err != nil {
		return nil, fmt.Errorf("writing SPDX document %s: %w", doc.DocumentName, err)
	}
	return buf.Bytes(), nil
}

// idSafe keeps the characters an SPDX identifier allows (letters, digits,
// '.' and '-'), replacing others with '-'.
func idSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// sortedUnique returns s sorted without duplicates.
func sortedUnique(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }
