// Package s3 stores content-addressed blobs in an S3-compatible object store
// (AWS S3, MinIO, versitygw, Ceph RGW, …), so that several envreg replicas
// can share one set of blobs. It implements layerstore.Store, the optional
// layerstore.Redirector, and Walk, Delete and ModTime (for gc's grace
// period) like package fs; and, for blob upload sessions shared by
// replicas, the chunk store of uploads.Shared (UploadChunks).
//
// # URL
//
// A store is selected by URL, as in `envreg serve --blobs URL`:
//
//	s3://BUCKET[/PREFIX]?endpoint=http://127.0.0.1:7070&region=us-east-1[&presign=15m][&pathstyle=true]
//
// where:
//
//   - BUCKET must exist; Open checks it and never creates it.
//   - PREFIX (optional) puts every key under PREFIX/, so that one bucket can
//     hold several stores. Segments are letters, digits, '.', '_' and '-'.
//   - endpoint is scheme://host[:port] of the S3 API; http or https. Default:
//     https://s3.amazonaws.com.
//   - region is the signing region (us-east-1 for most S3-compatible
//     servers). Empty: the client asks the server for the bucket's location.
//   - presign (a Go duration, 1s to 168h) turns on redirects: RedirectURL
//     returns a presigned GET URL valid that long, so that clients fetch blob
//     bytes from the object store and replicas do not carry them. Off by
//     default. The URL points at endpoint, so clients must be able to reach it.
//   - pathstyle=true forces path-style requests (http://host/BUCKET/KEY),
//     false forces virtual-hosted style; absent, the client picks (path style
//     for IP addresses and non-AWS hosts).
//
// Unknown parameters are an error, so a typo does not silently change
// behaviour. Credentials never go in the URL: Open reads the standard AWS
// variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
// unless WithCredentials is given. (Libraries in envreg do not read the
// environment as a rule; the AWS variables are the exception because every
// S3 tool and deployment already speaks them, and cmd/envreg would only
// forward them.)
//
// # Layout
//
//	BUCKET/PREFIX/
//	  blobs/
//	    sha256/<hex>     one committed blob, named by the hex part of its digest
//	    sha512/<hex>
//	  _uploads/
//	    put-<random>     a Put in progress (or abandoned by a crash)
//	  _sessions/
//	    <id>/<chunk>     the chunks of a blob upload session that any replica
//	                     may continue (UploadChunks, chunks.go); never a blob
//	                     until the session commits them with Compose or Put
//
// # Commit sequence
//
// S3 has no rename, but it has a server-side copy, and an object appears
// atomically when its PUT, CompleteMultipartUpload or copy finishes. Put:
//
//  1. validates the digest (sha256 or sha512, lower-case hex of the right
//     length); keys are built only from a validated digest;
//  2. returns at once if blobs/<alg>/<hex> exists with the expected size,
//     without reading r;
//  3. streams r to _uploads/put-<random> while hashing it (the
//     layerstore.Verify rules: at most size+1 bytes are read, size and digest
//     must match). A mismatch or a reader error fails the upload before it
//     completes; a mismatch only visible at the end is caught before step 4;
//  4. copies the temp object server-side to blobs/<alg>/<hex> (CopyObject;
//     ComposeObject above 5 GiB, the limit of a single copy);
//  5. deletes the temp object, whatever happened.
//
// So the final key only ever holds verified content. Uploads larger than the
// part size (WithPartSize, default 16 MiB), or of unknown size, are multipart
// uploads; the client aborts them on failure. Memory per Put is bounded by
// one part buffer. With an unknown size the largest blob is 10,000 parts
// (about 156 GiB at the default part size). Temp objects and multipart uploads
// older than an hour, left by a crash, are removed by Open; a bucket
// lifecycle rule (AbortIncompleteMultipartUpload, expiry on PREFIX/_uploads/)
// is a good second line.
//
// Upload session chunks (_sessions/) are removed by the session when it
// finishes or is cancelled, and by uploads.Shared.Sweep when it is
// abandoned, which lists them (ListObjects with a delimiter,
// ListMultipartUploads) and deletes them (DeleteObject,
// AbortMultipartUpload). envreg relies on no bucket lifecycle rule, since
// not every S3 server has them (versitygw answers NotImplemented); where
// there are, an expiry on PREFIX/_sessions/ a day longer than
// --upload-max-age is a second line.
//
// # Reading
//
// Open returns a reader that fetches lazily: the first Read issues a GET,
// and a Read after a Seek issues a new GET with a Range header starting at
// the new offset (and If-Match on the ETag first seen, so a blob replaced
// under the reader is an error, not mixed content). http.ServeContent
// therefore serves a Range request without downloading what precedes it.
// Reads stop when the context given to Open ends.
//
// S3 has had strong read-after-write consistency since December 2020, so a
// blob that Put committed is visible to every replica at once.
//
// # Permissions
//
// The credentials need, on the bucket and PREFIX: s3:ListBucket,
// s3:GetObject, s3:PutObject, s3:DeleteObject,
// s3:ListBucketMultipartUploads and s3:AbortMultipartUpload.
//
// This package is not a cache and never evicts; garbage collection is a
// separate tool (envreg gc) built on Walk, ModTime and Delete.
package s3

import (
	"context"
	_ "crypto/sha256" // register the digest algorithms with crypto
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

const (
	// DefaultPartSize is the multipart part size unless WithPartSize says
	// otherwise; each Put holds at most one part in memory.
	DefaultPartSize = 16 << 20
	// MinPartSize and MaxPartSize are S3's limits for a part.
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30

	blobsDir   = "blobs/"
	uploadsDir = "_uploads/"
	// staleUploadAge is how old a temp object must be before Open removes it.
	staleUploadAge = time.Hour
	// maxCopySize is the largest object a single CopyObject may copy.
	maxCopySize = 5 << 30
	// cleanupTimeout bounds the removal of a temp object after Put, which
	// runs even when the caller's context has ended.
	cleanupTimeout = time.Minute
)

// Store is a layerstore.Store in an S3 bucket. It is safe for concurrent
// use, also by several processes (replicas) sharing the bucket and prefix.
type Store struct {
	client      *minio.Client
	bucket      string
	prefix      string // "" or "a/b/"
	endpoint    string // for messages
	presign     time.Duration
	partSize    uint64
	maxCopySize int64 // a variable so that tests can reach the ComposeObject path
}

var (
	_ layerstore.Store      = (*Store)(nil)
	_ layerstore.Redirector = (*Store)(nil)
)

// Option configures Open.
type Option func(*options)

type options struct {
	creds     *credentials.Credentials
	partSize  uint64
	transport http.RoundTripper
	observe   func(op string, d time.Duration, err error)
}

// WithObserver calls observe after every request to the S3 endpoint (op:
// the HTTP method, lower case; err: the transport's error, an unavailable
// error for a 5xx answer, layerstore.ErrNotFound for 404), for metrics.
// It must be quick.
func WithObserver(observe func(op string, d time.Duration, err error)) Option {
	return func(o *options) { o.observe = observe }
}

// observingTransport reports every round trip to an observer.
type observingTransport struct {
	next    http.RoundTripper
	observe func(op string, d time.Duration, err error)
}

func (t observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	result := err
	switch {
	case err != nil:
		result = outage(err)
	case resp.StatusCode == http.StatusNotFound:
		result = layerstore.ErrNotFound
	case resp.StatusCode >= 500:
		result = layerstore.Unavailable(fmt.Errorf("s3: %s", resp.Status))
	}
	t.observe(strings.ToLower(req.Method), time.Since(start), result)
	return resp, err
}

// WithCredentials uses these static credentials instead of the AWS
// environment variables. sessionToken may be empty.
func WithCredentials(accessKeyID, secretAccessKey, sessionToken string) Option {
	return func(o *options) {
		o.creds = credentials.NewStaticV4(accessKeyID, secretAccessKey, sessionToken)
	}
}

// WithPartSize sets the multipart part size in bytes (MinPartSize to
// MaxPartSize; default DefaultPartSize). Blobs up to this size are uploaded
// with one PUT; each Put buffers at most one part.
func WithPartSize(n uint64) Option {
	return func(o *options) { o.partSize = n }
}

// WithTransport sets the HTTP transport of the S3 client (custom TLS roots,
// proxies, instrumentation). Default: the client's own transport.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) { o.transport = rt }
}

// Open connects to the store described by rawURL (see the package doc),
// checks that the bucket exists, and removes temp objects and multipart
// uploads of Puts abandoned more than an hour ago. It does not create the
// bucket.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	loc, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	o := options{partSize: DefaultPartSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.partSize < MinPartSize || o.partSize > MaxPartSize {
		return nil, fmt.Errorf("opening blob store s3://%s: part size %d out of range [%d, %d]", loc.bucket, o.partSize, MinPartSize, MaxPartSize)
	}
	if o.creds == nil {
		o.creds = credentials.NewEnvAWS()
		if v, err := o.creds.Get(); err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
			return nil, fmt.Errorf("opening blob store s3://%s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", loc.bucket)
		}
	}
	if o.observe != nil {
		next := o.transport
		if next == nil {
			if next, err = minio.DefaultTransport(loc.secure); err != nil {
				return nil, fmt.Errorf("opening blob store s3://%s: %w", loc.bucket, err)
			}
		}
		o.transport = observingTransport{next: next, observe: o.observe}
	}
	client, err := minio.New(loc.host, &minio.Options{
		Creds:        o.creds,
		Secure:       loc.secure,
		Region:       loc.region,
		BucketLookup: loc.lookup,
		Transport:    o.transport,
	})
	if err != nil {
		return nil, fmt.Errorf("opening blob store s3://%s at %s: %w", loc.bucket, loc.endpoint, err)
	}
	s := &Store{
		client:      client,
		bucket:      loc.bucket,
		prefix:      loc.prefix,
		endpoint:    loc.endpoint,
		presign:     loc.presign,
		partSize:    o.partSize,
		maxCopySize: maxCopySize,
	}
	exists, err := client.BucketExists(ctx, s.bucket)
	if err != nil {
		return nil, fmt.Errorf("opening blob store: checking bucket %q at %s: %w", s.bucket, s.endpoint, err)
	}
	if !exists {
		return nil, fmt.Errorf("opening blob store: bucket %q does not exist at %s (envreg does not create buckets; create it first)", s.bucket, s.endpoint)
	}
	if err := s.removeStaleUploads(ctx, time.Now().Add(-staleUploadAge)); err != nil {
		return nil, fmt.Errorf("opening blob store s3://%s/%s: %w", s.bucket, s.prefix, err)
	}
	return s, nil
}

// key validates d and returns the object key it is stored under.
func (s *Store) key(d digest.Digest) (string, error) {
	if err := layerstore.ValidateDigest(d); err != nil {
		return "", err
	}
	return s.prefix + blobsDir + string(d.Algorithm()) + "/" + d.Encoded(), nil
}

func notFound(d digest.Digest) error { return fmt.Errorf("blob %s: %w", d, layerstore.ErrNotFound) }

// outage marks as layerstore.ErrUnavailable the errors that mean the S3
// endpoint cannot answer now: a connection that cannot be made or broke,
// and the server's 5xx answers (500 InternalError, 503 SlowDown or
// ServiceUnavailable). Other answers (403, 404, a digest mismatch) and
// context errors stay as they are.
func outage(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		if er.StatusCode >= 500 {
			return layerstore.Unavailable(err)
		}
		return err
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) {
		return layerstore.Unavailable(err)
	}
	return err
}

// isNoSuchKey reports whether err is S3's answer for a missing object.
func isNoSuchKey(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code == minio.NoSuchKey
}

// Stat returns the size of the blob d, or an error wrapping
// layerstore.ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	key, err := s.key(d)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if isNoSuchKey(err) {
		return 0, notFound(d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, outage(err))
	}
	return info.Size, nil
}

// Open returns the content of blob d and its size, or an error wrapping
// layerstore.ErrNotFound. The content is fetched with ranged GETs as it is
// read and sought (see the package doc); it reads while ctx lasts. The
// caller closes it.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	key, err := s.key(d)
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("opening blob %s: %w", d, outage(err))
	}
	// Stat is one HEAD; no content is fetched before the first Read.
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isNoSuchKey(err) {
			return nil, 0, notFound(d)
		}
		return nil, 0, fmt.Errorf("opening blob %s: %w", d, outage(err))
	}
	return obj, info.Size, nil
}

// RedirectURL returns a presigned GET URL for blob d when the store was
// opened with presign, and "" otherwise (serve the bytes yourself). It
// checks that the blob exists first, so a missing blob is an error wrapping
// layerstore.ErrNotFound rather than a redirect to an S3 error page.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest) (string, error) {
	key, err := s.key(d)
	if err != nil {
		return "", err
	}
	if s.presign == 0 {
		return "", nil
	}
	if _, err := s.Stat(ctx, d); err != nil {
		return "", err
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, s.presign, nil)
	if err != nil {
		return "", fmt.Errorf("presigning blob %s: %w", d, outage(err))
	}
	return u.String(), nil
}

// Delete removes the blob d, or returns an error wrapping
// layerstore.ErrNotFound. S3 deletes are idempotent, so the existence check
// is a separate request: a concurrent Delete of the same blob may make both
// succeed.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	key, err := s.key(d)
	if err != nil {
		return err
	}
	if _, err := s.Stat(ctx, d); err != nil {
		if errors.Is(err, layerstore.ErrNotFound) {
			return err
		}
		return fmt.Errorf("deleting blob %s: %w", d, outage(err))
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("deleting blob %s: %w", d, outage(err))
	}
	return nil
}

// Walk calls fn for every committed blob, sha256 before sha512, each in
// lexical order of the hex digest (S3's listing order). Keys that are not a
// valid digest are skipped; blobs deleted during the walk may be skipped. An
// error from fn stops the walk and is returned as is.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := s.prefix + blobsDir
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("listing blobs: %w", outage(obj.Err))
		}
		alg, encoded, ok := strings.Cut(strings.TrimPrefix(obj.Key, base), "/")
		if !ok {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)
		if !slices.Contains(layerstore.Algorithms, d.Algorithm()) || d.Validate() != nil {
			continue
		}
		if err := fn(d, obj.Size); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// removeStaleUploads removes temp objects and incomplete multipart uploads
// under _uploads/ that started before before. Younger ones may belong to a
// Put running now in another replica.
func (s *Store) removeStaleUploads(ctx context.Context, before time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := s.prefix + uploadsDir
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("listing abandoned uploads: %w", outage(obj.Err))
		}
		if !obj.LastModified.Before(before) {
			continue
		}
		err := s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{})
		if err != nil && !isNoSuchKey(err) {
			return fmt.Errorf("removing abandoned upload %s: %w", obj.Key, outage(err))
		}
	}
	core := minio.Core{Client: s.client}
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, base, true) {
		if up.Err != nil {
			var er minio.ErrorResponse
			if errors.As(up.Err, &er) && er.Code == minio.NotImplemented {
				return nil // the server keeps no multipart state to list
			}
			return fmt.Errorf("listing abandoned multipart uploads: %w", outage(up.Err))
		}
		if !up.Initiated.Before(before) {
			continue
		}
		err := core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID)
		var er minio.ErrorResponse
		if err != nil && !(errors.As(err, &er) && er.Code == minio.NoSuchUpload) {
			return fmt.Errorf("aborting abandoned multipart upload %s: %w", up.Key, outage(err))
		}
	}
	return nil
}
