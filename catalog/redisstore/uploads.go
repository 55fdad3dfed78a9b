package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/layerstore/uploads"
)

// Upload session records (uploads.RecordStore), for blob uploads that any
// replica may continue (uploads.Shared). With the default prefix:
//
//	envreg:upload:<id>     string  the session's record (JSON, written by package uploads),
//	                               expiring after the maximum idle age; every write renews it
//
// Each operation touches one key, so the keys need no hash tag and spread
// over a Redis Cluster. Swap and Delete are compare-and-set scripts: they
// write only when the key still holds the value the caller read.
//
// Commands used besides the catalog's (for ACLs): SET with NX and PX, GET,
// DEL, EVALSHA/EVAL.

// UploadRecords is the Store's uploads.RecordStore.
type UploadRecords struct{ s *Store }

var _ uploads.RecordStore = UploadRecords{}

// UploadRecords returns the upload session records kept under the Store's
// key prefix.
func (s *Store) UploadRecords() UploadRecords { return UploadRecords{s} }

func (u UploadRecords) key(id string) string { return u.s.prefix + "upload:" + id }

// swapScript: KEYS[1] the record; ARGV: old value, new value, TTL in ms.
// Returns 0 when there is no record, 1 when it holds another value, 2 when
// it was replaced.
var swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 2
`)

// deleteScript: KEYS[1] the record; ARGV[1] the old value. Returns as
// swapScript.
var deleteScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 1 end
redis.call('DEL', KEYS[1])
return 2
`)

func (u UploadRecords) check(ctx context.Context, id string) error {
	if !uploads.ValidID(id) {
		return fmt.Errorf("upload %q: %w", id, uploads.ErrUnknown)
	}
	return u.s.usable(ctx)
}

// Create stores the record of a new session.
func (u UploadRecords) Create(ctx context.Context, id string, value []byte, ttl time.Duration) error {
	if err := u.check(ctx, id); err != nil {
		return err
	}
	ok, err := u.s.client.SetNX(ctx, u.key(id), value, ttlOf(ttl)).Result()
	if err != nil {
		return fmt.Errorf("creating upload record %s in %s: %w", id, u.s.where, err)
	}
	if !ok {
		return fmt.Errorf("creating upload record %s in %s: it exists", id, u.s.where)
	}
	return nil
}

// Load returns the record, or an error wrapping uploads.ErrUnknown.
func (u UploadRecords) Load(ctx context.Context, id string) ([]byte, error) {
	if err := u.check(ctx, id); err != nil {
		return nil, err
	}
	b, err := u.s.client.Get(ctx, u.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("upload record %s: %w", id, uploads.ErrUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("reading upload record %s from %s: %w", id, u.s.where, err)
	}
	return b, nil
}

// Swap replaces the record with next if it still holds old.
func (u UploadRecords) Swap(ctx context.Context, id string, old, next []byte, ttl time.Duration) error {
	if err := u.check(ctx, id); err != nil {
		return err
	}
	r, err := swapScript.Run(ctx, u.s.client, []string{u.key(id)}, old, next, ttlOf(ttl).Milliseconds()).Int()
	return u.result(id, "writing", r, err)
}

// Delete removes the record if it still holds old.
func (u UploadRecords) Delete(ctx context.Context, id string, old []byte) error {
	if err := u.check(ctx, id); err != nil {
		return err
	}
	r, err := deleteScript.Run(ctx, u.s.client, []string{u.key(id)}, old).Int()
	return u.result(id, "deleting", r, err)
}

// result turns a compare-and-set script's answer into the RecordStore's
// errors.
func (u UploadRecords) result(id, verb string, r int, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s upload record %s in %s: %w", verb, id, u.s.where, err)
	case r == 0:
		return fmt.Errorf("upload record %s: %w", id, uploads.ErrUnknown)
	case r == 1:
		return fmt.Errorf("upload record %s: %w", id, uploads.ErrChanged)
	}
	return nil
}

// ttlOf is a record's time to live: at least a millisecond (PX 0 is an
// error).
func ttlOf(ttl time.Duration) time.Duration { return max(ttl, time.Millisecond) }
