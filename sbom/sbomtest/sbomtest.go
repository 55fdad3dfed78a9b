// Package sbomtest checks SBOM documents in tests, the way a consumer
// would: parsed back with spdx/tools-golang, validated by its spdxlib, and
// validated against the SPDX 2.3 JSON schema (spdx-schema-2.3.json, from
// spdx-spec at tag v2.3, embedded; see SCHEMA.md), with
// santhosh-tekuri/jsonschema, a maintained draft-07 validator.
package sbomtest

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/envreg/envreg/sbom"
)

//go:embed spdx-schema-2.3.json
var schemaJSON []byte

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// ValidateSchema validates the JSON document data against the SPDX 2.3
// schema.
func ValidateSchema(data []byte) error {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if schemaErr = c.AddResource("spdx-schema-2.3.json", doc); schemaErr == nil {
			schema, schemaErr = c.Compile("spdx-schema-2.3.json")
		}
	})
	if schemaErr != nil {
		return fmt.Errorf("compiling the SPDX 2.3 schema: %w", schemaErr)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := schema.Validate(doc); err != nil {
		return fmt.Errorf("the document does not validate against the SPDX 2.3 schema: %w", err)
	}
	return nil
}

// Check parses data as envreg's SBOMs are parsed (sbom.Parse), validates
// it with spdxlib and against the SPDX 2.3 schema, and returns the
// document; any failure ends the test.
func Check(t testing.TB, data []byte) *spdx.Document {
	t.Helper()
	doc, err := sbom.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var d spdx.Document = *doc
	if err := spdxlib.ValidateDocument(&d); err != nil {
		t.Fatalf("validating the SBOM: %v", err)
	}
	if err := ValidateSchema(data); err != nil {
		t.Fatalf("%v\n%.600s", err, data)
	}
	return doc
}
