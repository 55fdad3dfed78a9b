package registry_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestRemoteRoundTrip pulls composed images with go-containerregistry and
// validates every manifest, config and layer against its digest.
func TestRemoteRoundTrip(t *testing.T) {
	s := newPublished(t).server(t)
	u, _ := url.Parse(s.URL)
	for _, tag := range []string{"php-8.2_node-20", "gm-1.3_php-8.1", "latest", "nodejs"} {
		ref, err := name.ParseReference(u.Host+"/env:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
		// A client that only reads image manifests gets linux/amd64.
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s image: %v", tag, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil || cfg.Architecture != "amd64" {
			t.Errorf("%s: default image architecture %v (%v)", tag, cfg.Architecture, err)
		}
	}

	ref, _ := name.ParseReference(u.Host+"/env:php-10", name.Insecure)
	_, err := remote.Index(ref)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound || te.Errors[0].Code != transport.ManifestUnknownErrorCode {
		t.Errorf("pulling php-10: %v, want MANIFEST_UNKNOWN 404", err)
	}
}
