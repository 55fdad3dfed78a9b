package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
)

// prefetchBlob is one blob a node that runs --from must download for --to.
type prefetchBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

// runPrefetch lists (or, with --dir, downloads) the layer blobs of --to's
// manifest for --platform that --from's manifest lacks: what a platform
// fetches before it switches a node from one pinned environment to the
// next, so that only starting the container is left for the switch. It
// reads the registry API (/v2/), so any envreg, or any registry, answers.
func runPrefetch(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "prefetch")
	registry := fs.String("registry", "", "the registry, http://HOST:PORT or https://HOST (pull access without credentials)")
	stack := fs.String("stack", catalog.DefaultStackName, "the repository of both digests")
	from := fs.String("from", "", "digest of the index (or manifest) the node runs now")
	to := fs.String("to", "", "digest of the index (or manifest) it switches to")
	platform := fs.String("platform", "linux/amd64", "the node's platform")
	dir := fs.String("dir", "", "download the blobs into DIR/sha256/HEX, each verified against its digest (default: list them)")
	asJSON := fs.Bool("json", false, "list as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *registry == "" || *from == "" || *to == "" {
		return usagef("--registry, --from and --to are required")
	}
	p := prefetcher{base: strings.TrimRight(*registry, "/") + "/v2/" + *stack, platform: *platform,
		client: &http.Client{Timeout: 10 * time.Minute}}
	old, err := p.layers(ctx, *from, 2)
	if err != nil {
		return err
	}
	have := map[digest.Digest]bool{}
	for _, l := range old {
		have[l.Digest] = true
	}
	want, err := p.layers(ctx, *to, 2)
	if err != nil {
		return err
	}
	var blobs []prefetchBlob
	var total int64
	for _, l := range want {
		if !have[l.Digest] {
			have[l.Digest] = true // a blob is fetched once
			blobs = append(blobs, prefetchBlob{l.Digest.String(), l.Size, p.base + "/blobs/" + l.Digest.String()})
			total += l.Size
		}
	}
	for _, b := range blobs {
		if *dir == "" {
			break
		}
		if err := p.download(ctx, b, *dir); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(blobs)
	}
	for _, b := range blobs {
		fmt.Fprintf(env.stdout, "%s %d %s\n", b.Digest, b.Size, b.URL)
	}
	fmt.Fprintf(env.stdout, "%d blob(s), %d bytes\n", len(blobs), total)
	return nil
}

type prefetcher struct {
	base, platform string
	client         *http.Client
}

// layers returns the layers of the manifest for the platform that ref (an
// index, at most depth levels of indexes above a manifest) names, in order.
func (p prefetcher) layers(ctx context.Context, ref string, depth int) ([]ocispec.Descriptor, error) {
	var doc struct {
		ocispec.Manifest
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := p.get(ctx, "/manifests/"+ref, &doc); err != nil {
		return nil, err
	}
	if len(doc.Manifests) == 0 {
		return doc.Layers, nil
	}
	for _, m := range doc.Manifests {
		if m.Platform != nil && depth > 0 && platformString(*m.Platform) == p.platform {
			return p.layers(ctx, m.Digest.String(), depth-1)
		}
	}
	return nil, fmt.Errorf("%s has no manifest for %s", ref, p.platform)
}

func platformString(pl ocispec.Platform) string {
	s := pl.OS + "/" + pl.Architecture
	if pl.Variant != "" {
		s += "/" + pl.Variant
	}
	return s
}

func (p prefetcher) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", strings.Join([]string{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v)
}

// download fetches b into dir/ALGORITHM/HEX through a temporary file,
// verifying size and digest before the rename.
func (p prefetcher) download(ctx context.Context, b prefetchBlob, dir string) error {
	d, err := digest.Parse(b.Digest)
	if err != nil {
		return err
	}
	target := filepath.Join(dir, d.Algorithm().String(), d.Encoded())
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", b.URL, resp.Status)
	}
	f, err := os.CreateTemp(filepath.Dir(target), ".prefetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	v := d.Verifier()
	n, err := io.Copy(io.MultiWriter(f, v), resp.Body)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", d, err)
	}
	if n != b.Size || !v.Verified() {
		return fmt.Errorf("downloading %s: got %d bytes that do not match the digest and size %d", d, n, b.Size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(f.Name(), target)
}
