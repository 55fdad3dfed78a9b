package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envreg/envreg/server/api"
)

// TestPrefetch: the provisioning API's "from" answer lists the blobs a node
// running the from image must fetch, and "envreg prefetch --from --to"
// lists (and with --dir downloads, verified) the same ones from the
// registry API.
func TestPrefetch(t *testing.T) {
	s := startServer(t, publishAll(t))
	resolve := func(body string) api.ResolveResponse {
		t.Helper()
		resp, data := s.postJSON(t, "/api/v1/stacks/env/resolve", body)
		var out api.ResolveResponse
		if resp.StatusCode != 200 || json.Unmarshal(data, &out) != nil {
			t.Fatalf("resolve %s: %d\n%s", body, resp.StatusCode, data)
		}
		return out
	}
	old := resolve(`{"requirements": {"php": "8.2.32", "nodejs": "20"}}`)
	next := resolve(`{"requirements": {"php": "8.2.36", "nodejs": "20"}, "from": "` + old.Digest + `"}`)
	for _, pr := range next.Platforms {
		if pr.Download == nil || len(pr.Download.Prefetch) != 1 || pr.Download.Layers != 1 {
			t.Fatalf("%s: download %+v, want one php layer to prefetch", pr.Platform, pr.Download)
		}
		want := pr.Download.Prefetch[0]
		if want.Size != pr.Download.Size || want.URL != "/v2/env/blobs/"+want.Digest {
			t.Errorf("%s: prefetch %+v, download size %d", pr.Platform, want, pr.Download.Size)
		}

		dir := t.TempDir()
		out := envreg(t, "prefetch", "--registry", "http://"+s.host, "--from", old.Digest, "--to", next.Digest,
			"--platform", pr.Platform, "--dir", dir, "--json")
		var got []struct {
			Digest, URL string
			Size        int64
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("envreg prefetch --json: %v\n%s", err, out)
		}
		if len(got) != 1 || got[0].Digest != want.Digest || got[0].Size != want.Size || got[0].URL != "http://"+s.host+want.URL {
			t.Errorf("%s: envreg prefetch lists %+v, the API %+v", pr.Platform, got, want)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "sha256", "*"))
		if wantFile := filepath.Join(dir, "sha256", want.Digest[len("sha256:"):]); !slices.Equal(files, []string{wantFile}) {
			t.Errorf("%s: --dir holds %v, want %s", pr.Platform, files, wantFile)
		} else if fi, err := os.Stat(wantFile); err != nil || fi.Size() != want.Size {
			t.Errorf("%s: downloaded %v, %v", pr.Platform, fi, err)
		}
	}
	// Nothing to fetch for the image the node already runs.
	if out := envreg(t, "prefetch", "--registry", "http://"+s.host, "--from", next.Digest, "--to", next.Digest); out != "0 blob(s), 0 bytes\n" {
		t.Errorf("prefetch of the same image: %q", out)
	}
}
