package test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/envreg/envreg/test/fixtures"
)

// TestReadiness: a replica on Redis + S3 is ready while both answer; when
// the S3 server stops, and then redis-server, /readyz answers 503 naming
// the failing part, while /healthz (liveness) stays 200 (issue 19, item 2).
func TestReadiness(t *testing.T) {
	rs := startRemoteStores(t, "ready")
	publishFixtureTo(t, rs.storage, fixtures.All()[0])
	s := startServerWith(t, filepath.Join(t.TempDir(), "local"), rs.storage...)

	type report struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	ready := func() (int, report) {
		t.Helper()
		resp, body := s.get(t, "/readyz", "")
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("/readyz: %d %s: %v", resp.StatusCode, body, err)
		}
		return resp.StatusCode, r
	}
	live := func() {
		t.Helper()
		if resp, body := s.get(t, "/healthz", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz: %d %s, want 200 whatever the backends do", resp.StatusCode, body)
		}
	}
	// waitFor polls /readyz until check is not ok (the catalog is served
	// from cache for its staleness; an S3 client retries).
	waitFor := func(check string) report {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, r := ready()
			if r.Checks[check] != "ok" {
				if code != http.StatusServiceUnavailable || r.Ready {
					t.Errorf("/readyz with %s failing: %d %+v, want 503, not ready", check, code, r)
				}
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz still says %s is ok 30s after it stopped: %+v", check, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if code, r := ready(); code != http.StatusOK || !r.Ready || r.Checks["catalog"] != "ok" || r.Checks["blobs"] != "ok" {
		t.Fatalf("/readyz with everything up: %d %+v", code, r)
	}
	live()
	rs.s3.Stop()
	r := waitFor("blobs")
	if r.Checks["catalog"] != "ok" {
		t.Errorf("with only S3 down the catalog check says %q", r.Checks["catalog"])
	}
	live()
	rs.stopRedis()
	waitFor("catalog")
	live()
}
