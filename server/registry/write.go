package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

var zeroTime time.Time

func itoa(n int) string { return strconv.Itoa(n) }

// writeJSONList writes a list response with a Link header to the next page
// (RFC 5988, as the spec describes for tags/list).
func writeJSONList(w http.ResponseWriter, r *http.Request, body any, next, path string) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	h := w.Header()
	if next != "" {
		q := url.Values{"last": {next}}
		if n := r.URL.Query().Get("n"); n != "" {
			q.Set("n", n)
		}
		h.Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	return nil
}

// writeJSON writes v as a JSON body with the given status and type.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", itoa(len(data)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	return nil
}

// layerstoreDigest checks that d uses an algorithm envreg stores content
// under (sha256, sha512): anything else is DIGEST_INVALID.
func layerstoreDigest(d digest.Digest) error {
	return layerstore.ValidateDigest(d)
}
