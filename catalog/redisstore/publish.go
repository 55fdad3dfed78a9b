package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

// publishAttempts bounds how often Publish reads and merges again because
// another writer changed the release first.
const publishAttempts = 100

// publishScript commits one release: a compare-and-set of the release key
// that, in the same atomic step, bumps the generation, records it as the
// release's score in the index, and announces it.
//
//	KEYS: generation, epoch, releases index, release key
//	ARGV: value read before the merge ("" = none), merged value, index member, channel, new epoch
//
// It returns {new generation, epoch}, or {0, ""} when the release key no
// longer holds what was read (nothing is written then). The new epoch is
// stored only if the epoch key is missing: the first change after the data
// was lost starts a new epoch.
var publishScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[4])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, ''} end
redis.call('SET', KEYS[2], ARGV[5], 'NX')
redis.call('SET', KEYS[4], ARGV[2])
local gen = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[3], gen, ARGV[3])
redis.call('PUBLISH', ARGV[4], gen)
return {gen, redis.call('GET', KEYS[2])}
`)

// stackScript stores one stack unless it is stored already.
//
//	KEYS: generation, epoch, stacks hash
//	ARGV: stack name, value, channel, new epoch
//
// It returns {new generation, epoch}, or {0, ""} when the stack was already
// stored with that value.
var stackScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then return {0, ''} end
redis.call('SET', KEYS[2], ARGV[4], 'NX')
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local gen = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[3], gen)
return {gen, redis.call('GET', KEYS[2])}
`)

// Publish validates r and merges it into the stored release of the same name
// and version, atomically; see catalog.Publisher and the package doc. It
// merges against what Redis holds, never against the cache, and does not
// modify r.
func (s *Store) Publish(ctx context.Context, r catalog.Release, opts catalog.PublishOptions) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := r.Validate(); err != nil {
		return err
	}
	r.Layers = slices.Clone(r.Layers) // Canonicalize sorts them
	r.Canonicalize()
	m := member(r.Name, r.Version)
	key := s.keys.release + m
	for attempt := range publishAttempts {
		if attempt > 0 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cur, err := s.client.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			cur = ""
		case err != nil:
			return fmt.Errorf("publishing %s: reading %s: %w", r.ID(), key, err)
		}
		merged, stored := r, []byte(nil)
		if cur != "" {
			old, err := catalog.DecodeRelease([]byte(cur))
			if err != nil {
				return fmt.Errorf("publishing %s: release key %s: %w", r.ID(), key, err)
			}
			if merged, err = catalog.MergeWith(old, r, opts); err != nil {
				return err
			}
			if stored, err = json.Marshal(old); err != nil {
				return fmt.Errorf("publishing %s: %w", r.ID(), err)
			}
		}
		data, err := json.Marshal(merged)
		if err != nil {
			return fmt.Errorf("publishing %s: %w", r.ID(), err)
		}
		if bytes.Equal(data, stored) {
			return nil // nothing new
		}
		gen, err := s.commit(ctx, publishScript,
			[]string{s.keys.generation, s.keys.epoch, s.keys.releases, key},
			cur, data, m, s.keys.channel, newEpoch())
		if err != nil {
			return fmt.Errorf("publishing %s: %w", r.ID(), err)
		}
		if gen > 0 {
			return nil
		}
	}
	return fmt.Errorf("publishing %s: the release changed under %d consecutive attempts", r.ID(), publishAttempts)
}

// PutStack validates st and stores it, replacing the stack of that name.
func (s *Store) PutStack(ctx context.Context, st catalog.Stack) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := st.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("storing stack %s: %w", st.Name, err)
	}
	if _, err := s.commit(ctx, stackScript,
		[]string{s.keys.generation, s.keys.epoch, s.keys.stacks},
		st.Name, data, s.keys.channel, newEpoch()); err != nil {
		return fmt.Errorf("storing stack %s: %w", st.Name, err)
	}
	return nil
}

// commit runs a change script and records its outcome: the generation it
// created, and a reset when its epoch is not the cached one (Redis lost
// data; reload everything rather than wait for the poller to notice). It
// returns the new generation, or 0 if the script changed nothing.
func (s *Store) commit(ctx context.Context, script *redis.Script, keys []string, args ...any) (uint64, error) {
	res, err := script.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("unexpected script reply %v", res)
	}
	gen, _ := res[0].(int64)
	epoch, _ := res[1].(string)
	if gen <= 0 {
		return 0, nil
	}
	if epoch != s.state.Load().epoch {
		s.resets.Add(1)
	}
	s.observe(uint64(gen))
	return uint64(gen), nil
}
