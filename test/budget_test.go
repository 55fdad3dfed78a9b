package test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompositionBudget: anonymous pulls of distinct tags cannot make the
// server store without bound (issue 15, item 6). With --compose-budget 4
// a client's fifth new composition is refused with 429 TOOMANYREQUESTS and
// Retry-After, storing nothing, while tags already composed keep answering,
// also after a restart with an empty cache and a budget of 1.
func TestCompositionBudget(t *testing.T) {
	data := publishAll(t)
	s := startServer(t, data, "--compose-budget", "4")
	docs := func() int {
		entries, err := os.ReadDir(filepath.Join(data, "documents", "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	tags := []string{"php-8.2", "php-8.1", "node-18", "node-20"}
	for _, tag := range tags {
		if resp, body := s.get(t, "/v2/env/manifests/"+tag, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tag, resp.StatusCode, body)
		}
	}
	stored := docs()
	resp, body := s.get(t, "/v2/env/manifests/gm_php-8.2", "")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"TOOMANYREQUESTS"`) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("fifth new composition: %d, Retry-After %q, %s; want 429 TOOMANYREQUESTS with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if got := docs(); got != stored {
		t.Errorf("the refused composition stored %d documents", got-stored)
	}
	// Composed already: free, from the cache...
	if resp, body := s.get(t, "/v2/env/manifests/php-8.2", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("php-8.2 again: %d %s", resp.StatusCode, body)
	}
	// ...and from the store.
	s.stop(t)
	s = startServer(t, data, "--compose-budget", "1")
	for _, tag := range tags {
		if resp, body := s.get(t, "/v2/env/manifests/"+tag, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s after a restart with a budget of 1: %d %s", tag, resp.StatusCode, body)
		}
	}
}
