package redisstore

import (
	"context"
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

var _ catalog.Purger = (*Store)(nil)

// removeScript deletes one release: the key and its index member, a new
// epoch (readers patch their snapshot from the index, which cannot show a
// removal, so the new epoch makes every reader load the catalog whole),
// the generation bumped and announced, in one atomic step.
//
//	KEYS: generation, epoch, releases index, release key
//	ARGV: index member, channel, new epoch
//
// It returns {new generation, epoch}, or {0, ""} when there was no release.
var removeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[4]) == 0 then return {0, ''} end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
local gen = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[2], gen)
return {gen, ARGV[3]}
`)

// RemoveRelease deletes the release name v and moves the generation (see
// catalog.Purger).
func (s *Store) RemoveRelease(ctx context.Context, name string, v *semver.Version) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := catalog.ValidateName(name); err != nil {
		return err
	}
	m := member(name, v)
	gen, err := s.commit(ctx, removeScript,
		[]string{s.keys.generation, s.keys.epoch, s.keys.releases, s.keys.release + m},
		m, s.keys.channel, newEpoch())
	if err != nil {
		return fmt.Errorf("removing %s %s: %w", name, v, err)
	}
	if gen == 0 {
		return fmt.Errorf("removing %s %s: %w", name, v, catalog.ErrNotFound)
	}
	return nil
}

// DeleteDocument deletes a stored document (see catalog.Purger).
func (s *Store) DeleteDocument(ctx context.Context, dgst digest.Digest) error {
	key, err := s.documentKey(dgst)
	if err != nil {
		return err
	}
	n, err := s.client.Del(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("deleting document %s from %s: %w", dgst, s.where, err)
	}
	if n == 0 {
		return fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	}
	return nil
}
