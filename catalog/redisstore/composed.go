package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

// Composition marks (catalog.Compositions), in the catalog's hash slot:
//
//	{envreg:}composed:<stack>    zset  member digest, score = last served (Unix seconds)
//	{envreg:}pinned:<stack>      set   the pinned digests of the stack
//	{envreg:}composed-stacks     set   the stacks that have marks
//
// ZADD GT moves a score forward only, so replicas refreshing one mark in
// any order keep the latest time.

func (s *Store) composedKey(stack string) string { return "{" + s.prefix + "}composed:" + stack }
func (s *Store) pinnedKey(stack string) string   { return "{" + s.prefix + "}pinned:" + stack }
func (s *Store) composedStacksKey() string       { return "{" + s.prefix + "}composed-stacks" }

// MarkComposed records stack's marks on ds (see catalog.Compositions).
func (s *Store) MarkComposed(ctx context.Context, stack string, served time.Time, pinned bool, ds ...digest.Digest) error {
	for _, d := range ds {
		if err := catalog.ValidateMark(stack, d); err != nil {
			return err
		}
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	if len(ds) == 0 {
		return nil
	}
	score := float64(served.Unix())
	members := make([]redis.Z, len(ds))
	names := make([]any, len(ds))
	for i, d := range ds {
		members[i] = redis.Z{Score: score, Member: string(d)}
		names[i] = string(d)
	}
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.composedStacksKey(), stack)
		p.ZAddGT(ctx, s.composedKey(stack), members...)
		if pinned {
			p.SAdd(ctx, s.pinnedKey(stack), names...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("marking compositions of %s in %s: %w", stack, s.where, err)
	}
	return nil
}

// Composed returns stack's mark on d (see catalog.Compositions).
func (s *Store) Composed(ctx context.Context, stack string, d digest.Digest) (catalog.ComposedMark, error) {
	if err := catalog.ValidateMark(stack, d); err != nil {
		return catalog.ComposedMark{}, err
	}
	if err := s.usable(ctx); err != nil {
		return catalog.ComposedMark{}, err
	}
	var score *redis.FloatCmd
	var pin *redis.BoolCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		score = p.ZScore(ctx, s.composedKey(stack), string(d))
		pin = p.SIsMember(ctx, s.pinnedKey(stack), string(d))
		return nil
	})
	if errors.Is(err, redis.Nil) && errors.Is(score.Err(), redis.Nil) {
		return catalog.ComposedMark{}, fmt.Errorf("%s composed by %s: %w", d, stack, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.ComposedMark{}, fmt.Errorf("reading the mark of %s in %s from %s: %w", d, stack, s.where, err)
	}
	return catalog.ComposedMark{Digest: d, Served: unixTime(score.Val()), Pinned: pin.Val()}, nil
}

func unixTime(score float64) time.Time {
	sec, frac := math.Modf(score)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// WalkComposed calls fn with every mark (see catalog.ComposedWalker).
func (s *Store) WalkComposed(ctx context.Context, fn func(stack string, m catalog.ComposedMark) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	stacks, err := s.client.SMembers(ctx, s.composedStacksKey()).Result()
	if err != nil {
		return fmt.Errorf("listing stacks with compositions in %s: %w", s.where, err)
	}
	for _, stack := range stacks {
		if catalog.ValidateName(stack) != nil {
			continue
		}
		pins, err := s.client.SMembers(ctx, s.pinnedKey(stack)).Result()
		if err != nil {
			return fmt.Errorf("listing pinned compositions of %s in %s: %w", stack, s.where, err)
		}
		pinned := make(map[string]bool, len(pins))
		for _, p := range pins {
			pinned[p] = true
		}
		var cursor uint64
		for {
			kv, next, err := s.client.ZScan(ctx, s.composedKey(stack), cursor, "", 1000).Result()
			if err != nil {
				return fmt.Errorf("listing compositions of %s in %s: %w", stack, s.where, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				var score float64
				if _, err := fmt.Sscan(kv[i+1], &score); err != nil {
					return fmt.Errorf("composition mark %s of %s: score %q: %w", kv[i], stack, kv[i+1], err)
				}
				d := digest.Digest(kv[i])
				if catalog.ValidateMark(stack, d) != nil {
					continue
				}
				if err := fn(stack, catalog.ComposedMark{Digest: d, Served: unixTime(score), Pinned: pinned[kv[i]]}); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	return nil
}

// unmarkScript removes a mark unless it is pinned or was served at or
// after ARGV[2], in one step.
//
//	KEYS: composed zset, pinned set
//	ARGV: digest, before (Unix seconds)
var unmarkScript = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if tonumber(score) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// Unmark removes an unpinned mark last served before before (see
// catalog.ComposedWalker), atomically.
func (s *Store) Unmark(ctx context.Context, stack string, d digest.Digest, before time.Time) (bool, error) {
	if err := catalog.ValidateMark(stack, d); err != nil {
		return false, err
	}
	if err := s.usable(ctx); err != nil {
		return false, err
	}
	n, err := unmarkScript.Run(ctx, s.client, []string{s.composedKey(stack), s.pinnedKey(stack)},
		string(d), before.Unix()).Int()
	if err != nil {
		return false, fmt.Errorf("unmarking %s in %s in %s: %w", d, stack, s.where, err)
	}
	return n == 1, nil
}

// RemoveMarks removes stack's marks on ds, pinned or not (see
// catalog.ComposedWalker), in one transaction.
func (s *Store) RemoveMarks(ctx context.Context, stack string, ds ...digest.Digest) error {
	for _, d := range ds {
		if err := catalog.ValidateMark(stack, d); err != nil {
			return err
		}
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	if len(ds) == 0 {
		return nil
	}
	names := make([]any, len(ds))
	for i, d := range ds {
		names[i] = string(d)
	}
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.composedKey(stack), names...)
		p.SRem(ctx, s.pinnedKey(stack), names...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing marks of %s in %s: %w", stack, s.where, err)
	}
	return nil
}

func (s *Store) adoptedKey() string { return "{" + s.prefix + "}composed-adopted" }

// LegacyAdopted reports whether SetLegacyAdopted ran (catalog.LegacyAdoption).
func (s *Store) LegacyAdopted(ctx context.Context) (bool, error) {
	if err := s.usable(ctx); err != nil {
		return false, err
	}
	n, err := s.client.Exists(ctx, s.adoptedKey()).Result()
	if err != nil {
		return false, fmt.Errorf("reading %s in %s: %w", s.adoptedKey(), s.where, err)
	}
	return n == 1, nil
}

// SetLegacyAdopted records that the legacy compositions were adopted.
func (s *Store) SetLegacyAdopted(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := s.client.Set(ctx, s.adoptedKey(), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return fmt.Errorf("writing %s in %s: %w", s.adoptedKey(), s.where, err)
	}
	return nil
}
