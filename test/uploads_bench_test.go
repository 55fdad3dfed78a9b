package test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// BenchmarkUploads pushes through "envreg serve" on loopback:
//
//   - chunked: a 60 MiB blob in 12 PATCH chunks of 5 MiB (the size that
//     OCI-Chunk-Min-Length asks for on Redis + S3) and a PUT;
//   - monolithic: ggcr's push of an image of three 8 MiB layers (per blob
//     POST, one PATCH with all of it, PUT; then the manifest), as crane,
//     docker and skopeo push;
//
// to one replica with --data (disk sessions, files), to Redis + S3 with the
// sessions in them (shared), and to Redis + S3 with the sessions on disk
// (--uploads, how replicas kept them before shared sessions). Content is
// random and new in every iteration. ENVREG_BENCH_BINARY runs another build
// of envreg, for before/after comparisons:
//
//	go test -run '^$' -bench BenchmarkUploads -benchtime 5x -count 3 ./test/
func BenchmarkUploads(b *testing.B) {
	if bin := os.Getenv("ENVREG_BENCH_BINARY"); bin != "" {
		saved := envregBin
		envregBin = bin
		defer func() { envregBin = saved }()
	}
	setups := []struct {
		name  string
		start func(b *testing.B) *server
	}{
		{"disk", func(b *testing.B) *server {
			data := filepath.Join(b.TempDir(), "data")
			return startServerWith(b, data, "--data", data)
		}},
		{"shared", func(b *testing.B) *server {
			return startServerWith(b, filepath.Join(b.TempDir(), "unused"), startRemoteStores(b, "bench").storage...)
		}},
		{"remote-disk-sessions", func(b *testing.B) *server {
			dir := b.TempDir()
			return startServerWith(b, dir, append(startRemoteStores(b, "bench").storage, "--uploads", filepath.Join(dir, "uploads"))...)
		}},
	}
	for _, setup := range setups {
		b.Run(setup.name, func(b *testing.B) {
			s := setup.start(b)
			b.Run("chunked", func(b *testing.B) { benchChunked(b, s) })
			b.Run("monolithic", func(b *testing.B) { benchMonolithic(b, s) })
		})
	}
}

func benchChunked(b *testing.B, s *server) {
	const chunk, chunks = 5 << 20, 12
	blob := make([]byte, chunk*chunks)
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		b.StopTimer()
		rand.Read(blob)
		d := digest.FromBytes(blob)
		b.StartTimer()
		resp, err := send(http.MethodPost, s.url("/v2/bench/chunked/blobs/uploads/"), nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("POST: %v %v", resp, err)
		}
		loc := resp.Header.Get("Location")
		for i := range chunks {
			resp, err = send(http.MethodPatch, s.url(loc), blob[i*chunk:(i+1)*chunk],
				"Content-Range", fmt.Sprintf("%d-%d", i*chunk, (i+1)*chunk-1), "Content-Type", "application/octet-stream")
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Fatalf("PATCH %d: %v %v", i, resp, err)
			}
			loc = resp.Header.Get("Location")
		}
		resp, err = send(http.MethodPut, s.url(loc+"?digest="+d.String()), nil)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("PUT: %v %v", resp, err)
		}
	}
}

func benchMonolithic(b *testing.B, s *server) {
	const layers, size = 3, 8 << 20
	b.SetBytes(layers * size)
	i := 0
	for b.Loop() {
		b.StopTimer()
		img := empty.Image
		for range layers {
			data := make([]byte, size)
			rand.Read(data)
			l := static.NewLayer(data, types.OCILayer)
			var err error
			if img, err = mutate.AppendLayers(img, l); err != nil {
				b.Fatal(err)
			}
		}
		i++
		r := ref(b, s, fmt.Sprintf("bench/monolithic:v%d", i))
		b.StartTimer()
		if err := remote.Write(r, img); err != nil {
			b.Fatal(err)
		}
	}
}
