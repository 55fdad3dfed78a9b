package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

const (
	// scanCount is the COUNT hint of each SCAN call.
	scanCount = 500
	// walkBatch is how many documents one pipelined round trip reads.
	walkBatch = 100
)

// WalkDocuments calls fn with every stored document (verified against its
// digest), by algorithm then digest, as catalog/fsstore does. It is how
// documents are enumerated for migration and integrity tooling (envreg gc,
// envreg verify).
//
// The document keys are listed first, with SCAN MATCH on this Store's
// document key prefix (on every master of a Redis Cluster), so each
// document is passed once even where SCAN returns a key twice; documents
// stored during the walk may be left out. Then the documents are read in
// batches. A document whose content does not match the digest in its key,
// or whose key lacks its media type or data or is not a hash, stops the walk
// with an error naming the digest and the key; a key deleted during the
// walk is skipped, and so is a key under the prefix whose remainder is not
// a valid digest (not a document). An error from fn stops the walk and is
// returned as is.
//
// Needs the SCAN and HMGET commands (see the package doc's ACL list).
func (s *Store) WalkDocuments(ctx context.Context, fn func(catalog.Document) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	digests, err := s.documentDigests(ctx)
	if err != nil {
		return fmt.Errorf("listing documents in %s: %w", s.where, err)
	}
	for batch := range slices.Chunk(digests, walkBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		docs, err := s.readDocuments(ctx, batch)
		if err != nil {
			return err
		}
		for _, d := range docs {
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// documentDigests returns the digest of every document key, sorted by
// algorithm (in layerstore.Algorithms order) then digest.
func (s *Store) documentDigests(ctx context.Context) ([]digest.Digest, error) {
	match := globEscape(s.keys.document) + "*"
	var (
		mu   sync.Mutex
		seen = map[digest.Digest]bool{}
	)
	add := func(keys []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			d := digest.Digest(strings.TrimPrefix(k, s.keys.document))
			if !strings.HasPrefix(k, s.keys.document) || layerstore.ValidateDigest(d) != nil {
				continue // not a document key
			}
			seen[d] = true
		}
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		// Documents spread over the cluster (their keys have no hash
		// tag): every master holds some.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return scanKeys(ctx, c, match, add)
		})
	} else {
		err = scanKeys(ctx, s.client, match, add)
	}
	if err != nil {
		return nil, err
	}
	out := make([]digest.Digest, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b digest.Digest) int {
		return cmp.Or(
			cmp.Compare(slices.Index(layerstore.Algorithms, a.Algorithm()), slices.Index(layerstore.Algorithms, b.Algorithm())),
			cmp.Compare(a, b),
		)
	})
	return out, nil
}

// scanKeys runs a full SCAN MATCH match on c, passing each page of keys to
// add.
func scanKeys(ctx context.Context, c redis.Cmdable, match string, add func([]string)) error {
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return err
		}
		add(keys)
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// readDocuments reads the documents digests name in one pipeline and
// verifies each against its digest. Documents that no longer exist are
// left out.
func (s *Store) readDocuments(ctx context.Context, digests []digest.Digest) ([]catalog.Document, error) {
	cmds := make([]*redis.SliceCmd, len(digests))
	// The error of Exec is the first command's error; each is checked
	// below, so that it can name its key.
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range digests {
			cmds[i] = p.HMGet(ctx, s.keys.document+string(d), "mediaType", "data")
		}
		return nil
	})
	docs := make([]catalog.Document, 0, len(digests))
	for i, d := range digests {
		key := s.keys.document + string(d)
		vals, err := cmds[i].Result()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("reading document %s (key %s) from %s: %w", d, key, s.where, err)
		}
		mt, hasType := vals[0].(string)
		data, hasData := vals[1].(string)
		switch {
		case !hasType && !hasData:
			continue // deleted since it was listed
		case !hasType || !hasData:
			return nil, fmt.Errorf("document %s is corrupt: key %s lacks its media type or data", d, key)
		}
		if got := d.Algorithm().FromString(data); got != d {
			return nil, fmt.Errorf("document %s is corrupt: key %s holds content with digest %s", d, key, got)
		}
		docs = append(docs, catalog.Document{MediaType: mt, Digest: d, Data: []byte(data)})
	}
	return docs, nil
}

// globEscape quotes the characters that SCAN MATCH patterns give a meaning
// to, so that s matches only itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
