package s3

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// defaultEndpoint is used when the URL has no endpoint parameter.
const defaultEndpoint = "https://s3.amazonaws.com"

// maxPresign is the longest validity a SigV4 presigned URL may have.
const maxPresign = 7 * 24 * time.Hour

// queryKeys are the parameters an s3:// URL may carry.
var queryKeys = []string{"endpoint", "pathstyle", "presign", "region"}

// prefixSegment is what one /-separated segment of PREFIX may contain.
var prefixSegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// location is a parsed s3:// URL.
type location struct {
	bucket   string
	prefix   string // "" or "a/b/" (with the trailing slash)
	host     string // endpoint host[:port]
	secure   bool   // https endpoint
	region   string // "" lets the client ask the server
	lookup   minio.BucketLookupType
	presign  time.Duration // 0: no redirects
	endpoint string        // the endpoint URL as given, for messages
}

// parseURL parses s3://BUCKET[/PREFIX]?endpoint=…&region=…&presign=…&pathstyle=…
// (see the package doc). Every error names the offending part.
func parseURL(raw string) (location, error) {
	var loc location
	u, err := url.Parse(raw)
	if err != nil {
		return loc, fmt.Errorf("parsing blob store URL: %w", err)
	}
	if u.Scheme != "s3" {
		return loc, fmt.Errorf("blob store URL %q: scheme must be s3", u.Redacted())
	}
	if u.User != nil {
		return loc, fmt.Errorf("blob store URL %q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", u.Redacted())
	}
	if u.Opaque != "" || u.Fragment != "" {
		return loc, fmt.Errorf("blob store URL %q: want s3://BUCKET[/PREFIX]?endpoint=...", raw)
	}
	loc.bucket = u.Host
	if err := s3utils.CheckValidBucketNameStrict(loc.bucket); err != nil {
		return loc, fmt.Errorf("blob store URL %q: bucket %q: %w", raw, loc.bucket, err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for seg := range strings.SplitSeq(p, "/") {
			if seg == "." || seg == ".." || !prefixSegment.MatchString(seg) {
				return loc, fmt.Errorf("blob store URL %q: prefix %q: each segment must be made of letters, digits, '.', '_' and '-', and not be . or ..", raw, p)
			}
		}
		loc.prefix = p + "/"
	}

	if err := loc.parseQuery(raw, u.Query()); err != nil {
		return loc, err
	}
	return loc, nil
}

// parseQuery reads the parameters of the URL raw into loc.
func (loc *location) parseQuery(raw string, q url.Values) error {
	for k, vs := range q {
		if !slices.Contains(queryKeys, k) {
			return fmt.Errorf("blob store URL %q: unknown parameter %q (known: %s)", raw, k, strings.Join(queryKeys, ", "))
		}
		if len(vs) != 1 {
			return fmt.Errorf("blob store URL %q: parameter %q given %d times", raw, k, len(vs))
		}
	}
	loc.endpoint = defaultEndpoint
	if q.Has("endpoint") {
		loc.endpoint = q.Get("endpoint")
	}
	if err := loc.parseEndpoint(raw); err != nil {
		return err
	}
	loc.region = q.Get("region")
	if q.Has("presign") {
		d, err := time.ParseDuration(q.Get("presign"))
		if err != nil {
			return fmt.Errorf("blob store URL %q: presign: %w", raw, err)
		}
		if d < time.Second || d > maxPresign {
			return fmt.Errorf("blob store URL %q: presign %s: must be between 1s and %s", raw, d, maxPresign)
		}
		loc.presign = d
	}
	if q.Has("pathstyle") {
		b, err := strconv.ParseBool(q.Get("pathstyle"))
		if err != nil {
			return fmt.Errorf("blob store URL %q: pathstyle: %w", raw, err)
		}
		loc.lookup = minio.BucketLookupDNS
		if b {
			loc.lookup = minio.BucketLookupPath
		}
	}
	return nil
}

// parseEndpoint checks loc.endpoint, scheme://host[:port], and sets host
// and secure.
func (loc *location) parseEndpoint(raw string) error {
	e, err := url.Parse(loc.endpoint)
	if err != nil {
		return fmt.Errorf("blob store URL %q: endpoint: %w", raw, err)
	}
	switch {
	case e.Scheme != "http" && e.Scheme != "https":
		return fmt.Errorf("blob store URL %q: endpoint %q must start with http:// or https://", raw, loc.endpoint)
	case e.Host == "":
		return fmt.Errorf("blob store URL %q: endpoint %q has no host", raw, loc.endpoint)
	case e.User != nil || (e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.Fragment != "":
		return fmt.Errorf("blob store URL %q: endpoint %q must be scheme://host[:port] only", raw, loc.endpoint)
	}
	loc.host, loc.secure = e.Host, e.Scheme == "https"
	return nil
}
