package s3_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/internal/testservers"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/s3"
)

// TestOutageIsUnavailable: when the S3 endpoint goes away, every call says
// so with layerstore.ErrUnavailable (the registry answers 503 with
// Retry-After), while a missing blob stays ErrNotFound before the outage.
func TestOutageIsUnavailable(t *testing.T) {
	srv := testservers.StartS3(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, err := s3.Open(t.Context(), srv.URL("outage"))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a blob")
	d := digest.FromBytes(data)
	if err := st.Put(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	missing := digest.FromString("missing")
	if _, err := st.Stat(t.Context(), missing); !errors.Is(err, layerstore.ErrNotFound) || errors.Is(err, layerstore.ErrUnavailable) {
		t.Fatalf("Stat of a missing blob while up: %v, want ErrNotFound only", err)
	}
	srv.Stop()
	_, statErr := st.Stat(t.Context(), d)
	_, _, openErr := st.Open(t.Context(), d)
	other := []byte("another blob")
	putErr := st.Put(t.Context(), digest.FromBytes(other), int64(len(other)), bytes.NewReader(other))
	for what, err := range map[string]error{"Stat": statErr, "Open": openErr, "Put": putErr} {
		if !errors.Is(err, layerstore.ErrUnavailable) {
			t.Errorf("%s while S3 is down: %v, want an error wrapping layerstore.ErrUnavailable", what, err)
		}
	}
}
