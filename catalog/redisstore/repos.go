package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

// Ordinary repositories: the keys of catalog.RepositoryDriver. The
// semantics (catalog.RepositoryStore) are the catalog package's; this file
// only says where each table lives.
//
// The keys share the catalog's hash tag, so that one transaction may touch
// several of them in one slot of a Redis Cluster. With the default prefix,
// for a repository <name>:
//
//	{envreg:}repos                            set   names of the repositories that hold a
//	                                                manifest or a blob
//	{envreg:}repo:<name>:manifests            hash  Manifests: field <digest> -> catalog.ManifestRecord as JSON
//	{envreg:}repo:<name>:tags                 hash  Tags: field <tag> -> digest of a manifest in :manifests
//	{envreg:}repo:<name>:blobs                set   Blobs: digests of the linked blobs
//	{envreg:}repo:<name>:referrers:<subject>  set   Referrers(subject): digests of the manifests whose
//	                                                subject is <subject>
//
// A repository name cannot contain ':' (catalog.RepositoryNamePattern), so
// these keys never collide, and "a" and a nested "a/b" are independent.
// An update is optimistic (Update): it reads, records what it read, and
// commits its writes and the repos set in one script that first checks the
// reads still hold. So a reader never sees a manifest without its tags, a
// tag without its manifest, a referrer entry without its record, or the
// repos set disagree with what the repositories hold. Repository changes
// are not catalog changes: they neither INCR the generation nor PUBLISH,
// and they are never cached.
//
// Commands used besides the catalog's (for ACLs): EVALSHA/EVAL, HGET,
// HSET, HDEL, HGETALL, SADD, SREM, SMEMBERS, SISMEMBER, EXISTS.

// updateAttempts bounds how often an update starts again because what it
// read changed.
const updateAttempts = 50

// repoDriver is the Store's catalog.RepositoryDriver.
type repoDriver struct{ s *Store }

var _ catalog.RepositoryDriver = repoDriver{}

func (s *Store) reposKey() string { return "{" + s.prefix + "}repos" }

// key is the Redis key of a table.
func (d repoDriver) key(repo string, t catalog.Table) string {
	base := "{" + d.s.prefix + "}repo:" + repo + ":"
	switch t.Kind {
	case catalog.TableManifests:
		return base + "manifests"
	case catalog.TableTags:
		return base + "tags"
	case catalog.TableBlobs:
		return base + "blobs"
	default:
		return base + "referrers:" + t.Subject.String()
	}
}

// isSet reports whether a table is a set (values are empty) rather than a
// hash.
func isSet(t catalog.Table) bool {
	return t.Kind == catalog.TableBlobs || t.Kind == catalog.TableReferrers
}

// Get reads one entry.
func (d repoDriver) Get(ctx context.Context, repo string, t catalog.Table, key string) (string, bool, error) {
	c := d.s.client
	if isSet(t) {
		ok, err := c.SIsMember(ctx, d.key(repo, t), key).Result()
		return "", ok, d.s.wrap(err)
	}
	v, err := c.HGet(ctx, d.key(repo, t), key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, d.s.wrap(err)
}

// List reads a whole table.
func (d repoDriver) List(ctx context.Context, repo string, t catalog.Table) (map[string]string, error) {
	c := d.s.client
	if isSet(t) {
		members, err := c.SMembers(ctx, d.key(repo, t)).Result()
		if err != nil {
			return nil, d.s.wrap(err)
		}
		out := make(map[string]string, len(members))
		for _, m := range members {
			out[m] = ""
		}
		return out, nil
	}
	out, err := c.HGetAll(ctx, d.key(repo, t)).Result()
	return out, d.s.wrap(err)
}

// Holds reports whether repo has a manifest record or a linked blob.
func (d repoDriver) Holds(ctx context.Context, repo string) (bool, error) {
	n, err := d.s.client.Exists(ctx, d.key(repo, catalog.Manifests), d.key(repo, catalog.Blobs)).Result()
	return n > 0, d.s.wrap(err)
}

// Repositories lists the members of the repos set.
func (d repoDriver) Repositories(ctx context.Context) ([]string, error) {
	names, err := d.s.client.SMembers(ctx, d.s.reposKey()).Result()
	return names, d.s.wrap(err)
}

// commitScript applies an update if everything it read is unchanged.
//
//	KEYS: repos set, manifests hash, blobs set, then every key the update
//	      read or writes
//	ARGV: repository name, then the update as JSON:
//	      {"reads": [[key index, kind, field, value]...], "writes": [[key index, op, field, value]...]}
//
// A read of kind "h" (HGET: value is the string, or false when absent),
// "s" (SISMEMBER: value is true or false), "H" (HGETALL: value is the
// whole hash as an object) or "S" (SMEMBERS: value is an object whose
// keys are the members) must still hold, else the script writes nothing
// and returns 0 (read again and decide again). The writes are HSET, HDEL,
// SADD and SREM; then the repos set is made true.
const commitScript = `
local u = cjson.decode(ARGV[2])
local function same(key, kind, field, want)
  if kind == 'h' then
    local v = redis.call('HGET', key, field)
    if want == false then return v == false end
    return v == want
  elseif kind == 's' then
    return (redis.call('SISMEMBER', key, field) == 1) == want
  end
  local got = {}
  local n = 0
  if kind == 'H' then
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do got[all[i]] = all[i + 1]; n = n + 1 end
  else
    for _, m in ipairs(redis.call('SMEMBERS', key)) do got[m] = ''; n = n + 1 end
  end
  local m = 0
  for k, v in pairs(want) do
    if got[k] ~= v then return false end
    m = m + 1
  end
  return m == n
end
for _, r in ipairs(u.reads) do
  if not same(KEYS[r[1]], r[2], r[3], r[4]) then return 0 end
end
for _, w in ipairs(u.writes) do
  redis.call(w[2], KEYS[w[1]], w[3], w[4])
end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('SADD', KEYS[1], ARGV[1])
else
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 1
`

var commit = redis.NewScript(commitScript)

// Update runs fn optimistically: it reads from Redis, records what it
// read, and commits its writes with commitScript, which applies them only
// if every read still holds. Concurrent updates of other entries of the
// same repository (pushing layers in parallel) do not conflict; a
// conflicting one makes fn run again, after a short random pause.
func (d repoDriver) Update(ctx context.Context, repo string, fn func(catalog.RepositoryTx) error) error {
	for attempt := range updateAttempts {
		if attempt > 0 {
			pause(ctx, attempt)
		}
		t := &repoTx{d: d, ctx: ctx, repo: repo}
		t.keys = []string{d.s.reposKey(), d.key(repo, catalog.Manifests), d.key(repo, catalog.Blobs)}
		if err := fn(t); err != nil {
			return err
		}
		if len(t.writes) == 0 {
			return nil
		}
		u, err := json.Marshal(map[string]any{"reads": nonNilOps(t.reads), "writes": t.writes})
		if err != nil {
			return err
		}
		ok, err := commit.Run(ctx, d.s.client, t.keys, repo, u).Int()
		if err != nil {
			return d.s.wrap(err)
		}
		if ok == 1 {
			return nil
		}
	}
	return fmt.Errorf("updating repository %s: it changed under %d consecutive attempts", repo, updateAttempts)
}

func nonNilOps(ops [][]any) [][]any {
	if ops == nil {
		return [][]any{}
	}
	return ops
}

// pause waits a random 1..2^attempt milliseconds (at most 64), or until
// ctx ends.
func pause(ctx context.Context, attempt int) {
	d := time.Duration(1+rand.IntN(1<<min(attempt, 6))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// repoTx records reads and queues writes for commitScript.
type repoTx struct {
	d      repoDriver
	ctx    context.Context
	repo   string
	keys   []string
	reads  [][]any // [key index, kind, field, value]
	writes [][]any // [key index, command, field, value]
}

// index returns the KEYS index (1-based) of table tb's key, adding it.
func (t *repoTx) index(tb catalog.Table) int {
	k := t.d.key(t.repo, tb)
	for i, have := range t.keys {
		if have == k {
			return i + 1
		}
	}
	t.keys = append(t.keys, k)
	return len(t.keys)
}

func (t *repoTx) Get(tb catalog.Table, key string) (string, bool, error) {
	v, ok, err := t.d.Get(t.ctx, t.repo, tb, key)
	if err != nil {
		return "", false, err
	}
	switch {
	case isSet(tb):
		t.reads = append(t.reads, []any{t.index(tb), "s", key, ok})
	case ok:
		t.reads = append(t.reads, []any{t.index(tb), "h", key, v})
	default:
		t.reads = append(t.reads, []any{t.index(tb), "h", key, false})
	}
	return v, ok, nil
}

func (t *repoTx) List(tb catalog.Table) (map[string]string, error) {
	all, err := t.d.List(t.ctx, t.repo, tb)
	if err != nil {
		return nil, err
	}
	kind := "H"
	if isSet(tb) {
		kind = "S"
	}
	t.reads = append(t.reads, []any{t.index(tb), kind, "", all})
	return all, nil
}

func (t *repoTx) Set(tb catalog.Table, key, value string) error {
	if isSet(tb) {
		t.writes = append(t.writes, []any{t.index(tb), "SADD", key, key})
	} else {
		t.writes = append(t.writes, []any{t.index(tb), "HSET", key, value})
	}
	return nil
}

func (t *repoTx) Delete(tb catalog.Table, key string) error {
	if isSet(tb) {
		t.writes = append(t.writes, []any{t.index(tb), "SREM", key, key})
	} else {
		t.writes = append(t.writes, []any{t.index(tb), "HDEL", key, key})
	}
	return nil
}
