package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
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
