package registry_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/envreg/envreg/server/registry"
)

// FuzzParseManifest feeds arbitrary documents and Content-Types to the
// manifest PUT parser: it must never panic, must refuse with
// MANIFEST_INVALID (a client error), and what it accepts must be valid
// JSON with schemaVersion 2, a known media type and valid descriptors.
// CI runs it for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzParseManifest$' -fuzztime 15s ./server/registry
func FuzzParseManifest(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`))
	f.Add("", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:00","size":1}]}`))
	f.Add("application/vnd.docker.distribution.manifest.list.v2+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add("text/plain", []byte(`{"schemaVersion":2,"subject":{"digest":"sha256:zz"}}`))
	f.Add("", []byte(`{"schemaVersion":1}{}`))
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		m, mt, err := registry.ParseManifest(contentType, data)
		if err != nil {
			var e *registry.Error
			if !errors.As(err, &e) || e.ErrorCode != registry.CodeManifestInvalid {
				t.Fatalf("refusal is not MANIFEST_INVALID: %v", err)
			}
			return
		}
		if m == nil || mt == "" || !json.Valid(data) {
			t.Fatalf("accepted %q as %q", data, mt)
		}
	})
}
