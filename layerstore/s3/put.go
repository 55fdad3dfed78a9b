package s3

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Put stores the content of r under d. size is the expected size or -1.
//
// A blob that exists is not written again and r is not read; if size is
// known and differs from the stored size, Put reports a
// *layerstore.DigestMismatchError (the caller's size is wrong for that
// digest). Otherwise the content is verified while it streams to a temp
// object and copied server-side to its final key only when it matches (see
// the package doc); on any failure nothing is left behind. Concurrent Puts of
// the same digest all succeed and leave one correct object.
func (s *Store) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	key, err := s.key(d)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil:
		if size >= 0 && info.Size != size {
			return &layerstore.DigestMismatchError{Want: d, Got: d, WantSize: size, GotSize: info.Size}
		}
		return nil
	case !isNoSuchKey(err):
		return fmt.Errorf("storing blob %s: %w", d, outage(err))
	}

	tmp := s.prefix + uploadsDir + "put-" + rand.Text()
	defer func() {
		// The temp object goes whatever happened, even when ctx has ended.
		// A failure here leaves an invisible object that the next Open
		// removes once it is an hour old; it does not fail the Put.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = s.client.RemoveObject(ctx, s.bucket, tmp, minio.RemoveObjectOptions{})
	}()

	v := newVerifier(ctx, r, d, size)
	up, err := s.client.PutObject(ctx, s.bucket, tmp, v, size, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
	})
	// The verifier's error explains an upload failure better than the
	// client's report of it, and a mismatch found only now (the client read
	// exactly size bytes) must stop the commit.
	if verr := v.check(err == nil); verr != nil {
		var mismatch *layerstore.DigestMismatchError
		if errors.As(verr, &mismatch) {
			return verr
		}
		return fmt.Errorf("storing blob %s: %w", d, verr)
	}
	if err != nil {
		return fmt.Errorf("storing blob %s: uploading: %w", d, outage(err))
	}
	if up.Size != v.n {
		return fmt.Errorf("storing blob %s: uploading: server stored %d bytes, %d were sent", d, up.Size, v.n)
	}

	if err := ctx.Err(); err != nil {
		return err
	}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: key}
	if v.n <= s.maxCopySize {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		// Beyond a single copy's limit: a multipart upload whose parts are
		// server-side copies of ranges of the temp object.
		dst.PartSize = uint64(s.maxCopySize)
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return fmt.Errorf("storing blob %s: committing: %w", d, outage(err))
	}
	return nil
}

// verifier hashes what the S3 client reads and applies the rules of
// layerstore.Verify while the content streams: at most size+1 bytes are
// read, and end of input is reported only when size and digest match;
// otherwise the client gets the mismatch as a read error and abandons the
// upload.
type verifier struct {
	ctx  context.Context
	r    io.Reader
	want digest.Digest
	size int64
	dg   digest.Digester
	n    int64
	done bool  // end of input reached, content matches
	err  error // first error returned to the client (sticky)
}

func newVerifier(ctx context.Context, r io.Reader, d digest.Digest, size int64) *verifier {
	if size >= 0 {
		// One byte more than expected catches longer content without
		// reading an unbounded stream.
		r = io.LimitReader(r, size+1)
	}
	return &verifier{ctx: ctx, r: r, want: d, size: size, dg: d.Algorithm().Digester()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.done {
		return 0, io.EOF
	}
	if err := v.ctx.Err(); err != nil {
		v.err = err
		return 0, err
	}
	n, err := v.r.Read(p)
	v.dg.Hash().Write(p[:n])
	v.n += int64(n)
	switch {
	case v.size >= 0 && v.n > v.size:
		v.err = v.mismatch()
		return n, v.err
	case err == io.EOF:
		if v.size >= 0 && v.n != v.size || v.dg.Digest() != v.want {
			v.err = v.mismatch()
			return n, v.err
		}
		v.done = true
		return n, io.EOF
	case err != nil:
		v.err = err
		return n, err
	}
	return n, nil
}

func (v *verifier) mismatch() error {
	return &layerstore.DigestMismatchError{Want: v.want, Got: v.dg.Digest(), WantSize: v.size, GotSize: v.n}
}

// check returns the verifier's verdict after the upload. When the upload
// succeeded without reading to the end (a client that stops at the declared
// size), it reads on: at most one byte more, then end of input, which checks
// size and digest.
func (v *verifier) check(uploaded bool) error {
	if uploaded && v.err == nil && !v.done {
		if _, err := io.Copy(io.Discard, v); err != nil {
			return err
		}
	}
	return v.err
}
