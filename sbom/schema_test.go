package sbom_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/envreg/envreg/sbom/sbomtest"
)

// checkSchema validates data against the SPDX 2.3 JSON schema (package
// sbomtest: spdx-spec's schemas/spdx-schema.json at tag v2.3) and then
// checks, on the raw JSON, what
// that schema leaves to the spec's text for the parts envreg writes: the
// SPDXID and license-reference patterns, unique ids, relationships that
// name known elements, and the date-time format of created.
var (
	spdxID       = regexp.MustCompile(`^SPDXRef-[\da-zA-Z.-]+$`)
	licenseRefID = regexp.MustCompile(`^LicenseRef-[\da-zA-Z.-]+$`)
	checksumHex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func checkSchema(t *testing.T, data []byte) {
	t.Helper()
	if err := sbomtest.ValidateSchema(data); err != nil {
		t.Fatalf("%v\n%.600s", err, data)
	}
	var doc struct {
		SPDXVersion, DataLicense, SPDXID, Name, DocumentNamespace *string
		CreationInfo                                              *struct {
			Created  string   `json:"created"`
			Creators []string `json:"creators"`
		} `json:"creationInfo"`
		Packages []map[string]any `json:"packages"`
		Others   []struct {
			LicenseID     string `json:"licenseId"`
			ExtractedText string `json:"extractedText"`
		} `json:"hasExtractedLicensingInfos"`
		Relationships []struct {
			A    string `json:"spdxElementId"`
			B    string `json:"relatedSpdxElement"`
			Type string `json:"relationshipType"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	switch {
	case doc.SPDXVersion == nil || *doc.SPDXVersion != "SPDX-2.3", doc.DataLicense == nil || *doc.DataLicense != "CC0-1.0",
		doc.SPDXID == nil || *doc.SPDXID != "SPDXRef-DOCUMENT", doc.Name == nil || *doc.Name == "",
		doc.DocumentNamespace == nil || *doc.DocumentNamespace == "", doc.CreationInfo == nil || len(doc.CreationInfo.Creators) == 0:
		t.Fatalf("a required document property is missing or wrong:\n%.400s", data)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", doc.CreationInfo.Created); err != nil {
		t.Errorf("created %q: %v", doc.CreationInfo.Created, err)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range doc.Packages {
		id, _ := p["SPDXID"].(string)
		if !spdxID.MatchString(id) || p["name"] == nil || p["downloadLocation"] == nil || ids[id] {
			t.Errorf("package %v: SPDXID, name or downloadLocation missing, invalid or repeated", p)
		}
		ids[id] = true
		for _, c := range asList(p["checksums"]) {
			c := c.(map[string]any)
			if c["algorithm"] != "SHA256" || !checksumHex.MatchString(c["checksumValue"].(string)) {
				t.Errorf("package %s: checksum %v", id, c)
			}
		}
		for _, r := range asList(p["externalRefs"]) {
			r := r.(map[string]any)
			if r["referenceCategory"] != "PACKAGE-MANAGER" || r["referenceType"] != "purl" || r["referenceLocator"] == "" {
				t.Errorf("package %s: external reference %v", id, r)
			}
		}
		if purpose, ok := p["primaryPackagePurpose"]; ok && purpose != "CONTAINER" && purpose != "LIBRARY" {
			t.Errorf("package %s: primaryPackagePurpose %v", id, purpose)
		}
	}
	for _, o := range doc.Others {
		if !licenseRefID.MatchString(o.LicenseID) || o.ExtractedText == "" {
			t.Errorf("extracted license %+v", o)
		}
	}
	for _, r := range doc.Relationships {
		if !ids[r.A] || !ids[r.B] || (r.Type != "DESCRIBES" && r.Type != "CONTAINS") {
			t.Errorf("relationship %+v", r)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestSchemaRefuses: the schema check can fail. A minimal valid document
// passes, and each mutation of it that the SPDX 2.3 schema forbids is
// refused.
func TestSchemaRefuses(t *testing.T) {
	const valid = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"x",
"documentNamespace":"https://example.invalid/x","creationInfo":{"created":"2026-11-01T10:00:00Z","creators":["Tool: envreg"]},
"packages":[{"SPDXID":"SPDXRef-p","name":"p","downloadLocation":"NOASSERTION"}],
"relationships":[{"spdxElementId":"SPDXRef-DOCUMENT","relatedSpdxElement":"SPDXRef-p","relationshipType":"DESCRIBES"}]}`
	if err := sbomtest.ValidateSchema([]byte(valid)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"unknown relationship type":          `"relationshipType":"DESCRIBES"` + "\x00" + `"relationshipType":"OWNS"`,
		"package without a name":             `"name":"p",` + "\x00",
		"package without a downloadLocation": `,"downloadLocation":"NOASSERTION"` + "\x00",
		"creators not a list":                `"creators":["Tool: envreg"]` + "\x00" + `"creators":"envreg"`,
	} {
		old, repl, _ := bytes.Cut([]byte(bad), []byte{0})
		data := bytes.Replace([]byte(valid), old, repl, 1)
		if bytes.Equal(data, []byte(valid)) {
			t.Fatalf("%s: the mutation changed nothing", name)
		}
		if err := sbomtest.ValidateSchema(data); err == nil {
			t.Errorf("%s: the schema accepted %s", name, data)
		}
	}
}
