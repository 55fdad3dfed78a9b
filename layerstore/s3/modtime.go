package s3

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// ModTime returns when the blob d was stored: its object's Last-Modified,
// which is when Put committed it (the copy from the temp object), or an
// error wrapping layerstore.ErrNotFound. A Put of a blob that exists does
// not write it, so the time does not change. envreg gc uses it for its
// grace period.
//
// The time is the S3 server's clock, to the second (HTTP dates have no
// fraction): compared with the local clock it is off by the clocks' skew
// and may look up to a second older than it is.
func (s *Store) ModTime(ctx context.Context, d digest.Digest) (time.Time, error) {
	key, err := s.key(d)
	if err != nil {
		return time.Time{}, err
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if isNoSuchKey(err) {
		return time.Time{}, notFound(d)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stat blob %s: %w", d, outage(err))
	}
	return info.LastModified, nil
}
