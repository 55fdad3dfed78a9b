package redisstore

import (
	"context"
	_ "crypto/sha256" // register the digest algorithms with crypto
	_ "crypto/sha512"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// documentScript stores a document unless one is stored under its digest.
//
//	KEYS: document hash
//	ARGV: media type, data
//
// It returns "" when it stored the document, else the stored media type.
// Both fields are written by one HSET, so a reader never sees one without
// the other.
var documentScript = redis.NewScript(`
local mt = redis.call('HGET', KEYS[1], 'mediaType')
if mt then return mt end
redis.call('HSET', KEYS[1], 'mediaType', ARGV[1], 'data', ARGV[2])
return ''
`)

// documentKey validates dgst and returns its key.
func (s *Store) documentKey(dgst digest.Digest) (string, error) {
	if s.closed.Load() {
		return "", errClosed
	}
	if err := layerstore.ValidateDigest(dgst); err != nil {
		return "", fmt.Errorf("document: %w", err)
	}
	return s.keys.document + string(dgst), nil
}

// PutDocument stores d after checking that d.Digest is the digest of d.Data.
// Storing a document that exists with the same media type does nothing; with
// another media type it is an error wrapping catalog.ErrExists. Documents
// are not catalog changes: the generation stays.
func (s *Store) PutDocument(ctx context.Context, d catalog.Document) error {
	if err := catalog.CheckDocument(ctx, d); err != nil {
		return err
	}
	key, err := s.documentKey(d.Digest)
	if err != nil {
		return err
	}
	stored, err := documentScript.Run(ctx, s.client, []string{key}, d.MediaType, d.Data).Text()
	if err != nil {
		return fmt.Errorf("storing document %s in %s: %w", d.Digest, s.where, err)
	}
	if stored != "" && stored != d.MediaType {
		return fmt.Errorf("storing document %s as %s: %w as %s", d.Digest, d.MediaType, catalog.ErrExists, stored)
	}
	return nil
}

// Document returns the document stored under dgst, or an error wrapping
// catalog.ErrNotFound. Content that no longer matches its digest is an
// error. Documents are read from Redis every time, never cached.
func (s *Store) Document(ctx context.Context, dgst digest.Digest) (catalog.Document, error) {
	key, err := s.documentKey(dgst)
	if err != nil {
		return catalog.Document{}, err
	}
	vals, err := s.client.HMGet(ctx, key, "mediaType", "data").Result()
	if err != nil {
		return catalog.Document{}, fmt.Errorf("reading document %s from %s: %w", dgst, s.where, err)
	}
	mt, hasType := vals[0].(string)
	data, hasData := vals[1].(string)
	switch {
	case !hasType && !hasData:
		return catalog.Document{}, fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	case !hasType || !hasData:
		return catalog.Document{}, fmt.Errorf("document %s is corrupt: key %s lacks its media type or data", dgst, key)
	}
	if got := dgst.Algorithm().FromString(data); got != dgst {
		return catalog.Document{}, fmt.Errorf("document %s is corrupt: content has digest %s", dgst, got)
	}
	return catalog.Document{MediaType: mt, Digest: dgst, Data: []byte(data)}, nil
}
