package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
)

// sessionsDir holds the chunks of shared upload sessions (uploads.Shared):
//
//	BUCKET/PREFIX/_sessions/<id>/<index>-<token>   the body of one PATCH
//
// Nothing there is a blob: Walk, Stat and Open see only blobs/, and a
// session's chunks become a blob only through Compose (after the session
// verified them) or through Put. Open's removal of stale temp objects does
// not touch _sessions/, whose objects live as long as their session (up to
// --upload-max-age); uploads.Shared.Sweep removes those of abandoned
// sessions.
const sessionsDir = "_sessions/"

// UploadChunks is the Store's uploads.ChunkStore.
type UploadChunks struct{ s *Store }

var _ uploads.ChunkStore = UploadChunks{}

// UploadChunks returns the store of upload session chunks in this bucket
// and prefix; Compose commits them as blobs of this Store.
func (s *Store) UploadChunks() UploadChunks { return UploadChunks{s} }

func (u UploadChunks) key(id, name string) (string, error) {
	if !uploads.ValidID(id) || name == "" || strings.Trim(name, "0123456789abcdefghijklmnopqrstuvwxyz-") != "" {
		return "", fmt.Errorf("upload chunk %q of %q: invalid name", name, id)
	}
	return u.s.prefix + sessionsDir + id + "/" + name, nil
}

// MinChunkSize is S3's minimum part size: what every chunk but the last
// needs for Compose.
func (u UploadChunks) MinChunkSize() int64 { return MinPartSize }

// PutChunk stores r as chunk name of session id.
func (u UploadChunks) PutChunk(ctx context.Context, id, name string, size int64, r io.Reader) (int64, error) {
	key, err := u.key(id, name)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	src := &readErr{r: r}
	up, err := u.s.client.PutObject(ctx, u.s.bucket, key, src, size, minio.PutObjectOptions{
		PartSize:    u.s.partSize,
		ContentType: "application/octet-stream",
	})
	if src.err != nil {
		// The body failed, not S3: say so (a client that went away is
		// not an outage).
		return 0, fmt.Errorf("storing upload chunk %s: %w", name, src.err)
	}
	if err != nil {
		return 0, fmt.Errorf("storing upload chunk %s: %w", name, outage(err))
	}
	return up.Size, nil
}

// readErr records the first error its reader returned other than EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// OpenChunk reads a chunk.
func (u UploadChunks) OpenChunk(ctx context.Context, id, name string) (io.ReadCloser, error) {
	key, err := u.key(id, name)
	if err != nil {
		return nil, err
	}
	obj, err := u.s.client.GetObject(ctx, u.s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading upload chunk %s: %w", name, outage(err))
	}
	return obj, nil
}

// DeleteChunk removes one chunk.
func (u UploadChunks) DeleteChunk(ctx context.Context, id, name string) error {
	key, err := u.key(id, name)
	if err != nil {
		return err
	}
	if err := u.s.client.RemoveObject(ctx, u.s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("deleting upload chunk %s: %w", name, outage(err))
	}
	return nil
}

// Compose makes the chunks, in order, blob d: one server-side copy for a
// single chunk of at most 5 GiB, else a multipart upload whose parts are
// server-side copies of the chunks (UploadPartCopy). The blob appears
// atomically when the copy completes; the caller has verified the content.
func (u UploadChunks) Compose(ctx context.Context, d digest.Digest, size int64, id string, chunks []uploads.StoredChunk) error {
	key, err := u.s.key(d)
	if err != nil {
		return err
	}
	if len(chunks) == 0 || len(chunks) > uploads.MaxChunks {
		return uploads.ErrNotComposable
	}
	srcs := make([]minio.CopySrcOptions, len(chunks))
	for i, c := range chunks {
		if i < len(chunks)-1 && c.Size < MinPartSize {
			return uploads.ErrNotComposable
		}
		k, err := u.key(id, c.Name)
		if err != nil {
			return err
		}
		srcs[i] = minio.CopySrcOptions{Bucket: u.s.bucket, Object: k}
	}
	info, err := u.s.client.StatObject(ctx, u.s.bucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil && info.Size == size:
		return nil // stored already (a push of the same content)
	case err == nil:
		return &layerstore.DigestMismatchError{Want: d, Got: d, WantSize: size, GotSize: info.Size}
	case !isNoSuchKey(err):
		return fmt.Errorf("storing blob %s: %w", d, outage(err))
	}
	dst := minio.CopyDestOptions{Bucket: u.s.bucket, Object: key}
	if len(srcs) == 1 && size <= u.s.maxCopySize {
		_, err = u.s.client.CopyObject(ctx, dst, srcs[0])
	} else {
		dst.PartSize = uint64(u.s.maxCopySize)
		_, err = u.s.client.ComposeObject(ctx, dst, srcs...)
	}
	if err != nil {
		return fmt.Errorf("storing blob %s: composing %d chunks of upload %s: %w", d, len(chunks), id, outage(err))
	}
	return nil
}

// DeleteSession removes every chunk of session id, and the multipart
// uploads of chunks that were interrupted.
func (u UploadChunks) DeleteSession(ctx context.Context, id string) error {
	if !uploads.ValidID(id) {
		return fmt.Errorf("upload session %q: invalid id", id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := u.s.prefix + sessionsDir + id + "/"
	for obj := range u.s.client.ListObjectsIter(ctx, u.s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("listing the chunks of upload %s: %w", id, outage(obj.Err))
		}
		if err := u.s.client.RemoveObject(ctx, u.s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
			return fmt.Errorf("deleting a chunk of upload %s: %w", id, outage(err))
		}
	}
	return u.walkIncomplete(ctx, base, func(key, uploadID string) error {
		err := minio.Core{Client: u.s.client}.AbortMultipartUpload(ctx, u.s.bucket, key, uploadID)
		var er minio.ErrorResponse
		if err != nil && !(errors.As(err, &er) && er.Code == minio.NoSuchUpload) {
			return fmt.Errorf("aborting an interrupted chunk of upload %s: %w", id, outage(err))
		}
		return nil
	})
}

// walkIncomplete calls fn for every multipart upload in progress under
// prefix; a server that keeps no such list has none to report.
func (u UploadChunks) walkIncomplete(ctx context.Context, prefix string, fn func(key, uploadID string) error) error {
	for up := range u.s.client.ListIncompleteUploads(ctx, u.s.bucket, prefix, true) {
		if up.Err != nil {
			var er minio.ErrorResponse
			if errors.As(up.Err, &er) && er.Code == minio.NotImplemented {
				return nil
			}
			return fmt.Errorf("listing interrupted upload chunks: %w", outage(up.Err))
		}
		if err := fn(up.Key, up.UploadID); err != nil {
			return err
		}
	}
	return nil
}

// WalkSessions calls fn with the id of every session that has chunks or
// interrupted chunk uploads. The ids are listed first, so fn may delete.
func (u UploadChunks) WalkSessions(ctx context.Context, fn func(id string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := u.s.prefix + sessionsDir
	seen := map[string]bool{}
	var ids []string
	add := func(key string) {
		id, _, _ := strings.Cut(strings.TrimPrefix(key, base), "/")
		if uploads.ValidID(id) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for obj := range u.s.client.ListObjectsIter(ctx, u.s.bucket, minio.ListObjectsOptions{Prefix: base}) {
		if obj.Err != nil {
			return fmt.Errorf("listing upload sessions: %w", outage(obj.Err))
		}
		add(obj.Key)
	}
	err := u.walkIncomplete(ctx, base, func(key, _ string) error { add(key); return nil })
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}
