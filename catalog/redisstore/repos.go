package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// Ordinary repositories (catalog.Repositories).
//
// Their keys share the catalog's hash tag, so that every script below may
// touch several of them in one slot of a Redis Cluster. With the default
// prefix, for a repository <name>:
//
//	{envreg:}repos                            set   names of the repositories that hold a
//	                                                manifest or a blob
//	{envreg:}repo:<name>:manifests            hash  field <digest> -> catalog.ManifestRecord as JSON
//	{envreg:}repo:<name>:tags                 hash  field <tag> -> digest of a manifest in :manifests
//	{envreg:}repo:<name>:blobs                set   digests of the linked blobs
//	{envreg:}repo:<name>:referrers:<subject>  set   digests of the manifests whose subject is <subject>
//
// A repository name cannot contain ':' (catalog.RepositoryNamePattern), so
// these keys never collide, and "a" and a nested "a/b" are independent.
// Every change is one script (DeleteTag a single HDEL), so a reader never
// sees a manifest without its tags, a tag without its manifest, a referrer
// entry without its record, or the repos set disagree with what the
// repositories hold. Repository changes are not catalog changes: they
// neither INCR the generation nor PUBLISH on the changes channel, and they
// are never cached: every read goes to Redis, so a change is visible to
// every Store as soon as the call that made it returns.
//
// Commands used besides the catalog's (for ACLs): HSETNX, HDEL, HKEYS,
// HGETALL, SADD, SREM, SMEMBERS, SISMEMBER, EXISTS, DEL.

var _ catalog.Repositories = (*Store)(nil)

// deleteAttempts bounds how often DeleteManifest reads the record again
// because it changed between the read and the script.
const deleteAttempts = 10

// putManifestScript records a manifest and points tags at it.
//
//	KEYS: repos set, manifests hash, tags hash[, referrers set of the subject]
//	ARGV: repository name, digest, record, tags...
//
// A record that is stored already is kept (the same digest is the same
// manifest); only the tags change then.
var putManifestScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 and KEYS[4] then
  redis.call('SADD', KEYS[4], ARGV[2])
end
for i = 4, #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[2])
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
`)

// deleteManifestScript removes a manifest, the tags that point at it and
// its referrers entry, and the repository from the repos set if it holds
// nothing any more.
//
//	KEYS: repos set, manifests hash, tags hash, blobs set[, referrers set of the subject]
//	ARGV: repository name, digest, record as read before
//
// It returns 1 when it deleted, 0 when there is no such manifest, and -1
// (writing nothing) when the record is not what was read: its subject, and
// so its referrers key, may differ.
var deleteManifestScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur then return 0 end
if cur ~= ARGV[3] then return -1 end
local tags = redis.call('HGETALL', KEYS[3])
for i = 1, #tags, 2 do
  if tags[i + 1] == ARGV[2] then redis.call('HDEL', KEYS[3], tags[i]) end
end
redis.call('HDEL', KEYS[2], ARGV[2])
if KEYS[5] then redis.call('SREM', KEYS[5], ARGV[2]) end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SREM', KEYS[1], ARGV[1]) end
end
return 1
`)

// referrersScript reads the records named by a referrers set, skipping
// any without a record.
//
//	KEYS: referrers set, manifests hash
var referrersScript = redis.NewScript(`
local out = {}
for _, d in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.call('HGET', KEYS[2], d)
  if r then out[#out + 1] = r end
end
return out
`)

// linkBlobScript links a blob and records the repository.
//
//	KEYS: repos set, blobs set
//	ARGV: repository name, digest
var linkBlobScript = redis.NewScript(`
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
return 1
`)

// unlinkBlobScript unlinks a blob, and removes the repository from the
// repos set if it holds nothing any more.
//
//	KEYS: repos set, manifests hash, blobs set
//	ARGV: repository name, digest
//
// It returns 0 when the blob was not linked.
var unlinkBlobScript = redis.NewScript(`
if redis.call('SREM', KEYS[3], ARGV[2]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 1
`)

// repoKeys are the keys of one repository, built only from a name that
// passed catalog.ValidateRepository.
type repoKeys struct {
	name                   string
	manifests, tags, blobs string
	referrersOf            string // + subject digest
	repos                  string // the set of all repositories
}

// repo validates name and returns its keys.
func (s *Store) repo(name string) (repoKeys, error) {
	if err := catalog.ValidateRepository(name); err != nil {
		return repoKeys{}, err
	}
	tag := "{" + s.prefix + "}"
	base := tag + "repo:" + name + ":"
	return repoKeys{
		name:        name,
		manifests:   base + "manifests",
		tags:        base + "tags",
		blobs:       base + "blobs",
		referrersOf: base + "referrers:",
		repos:       s.reposKey(),
	}, nil
}

func (s *Store) reposKey() string { return "{" + s.prefix + "}repos" }

func (r repoKeys) referrers(subject digest.Digest) string { return r.referrersOf + string(subject) }

// validDigest checks a digest before it becomes part of a key or value.
func validDigest(what string, d digest.Digest) error {
	if err := layerstore.ValidateDigest(d); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// usable is what every method checks after validating its arguments.
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// decodeRecord parses and checks a stored record of d.
func decodeRecord(r repoKeys, d digest.Digest, data string) (catalog.ManifestRecord, error) {
	var m catalog.ManifestRecord
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record %s in %s: %w", d, r.manifests, err)
	}
	if err := m.Validate(); err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record %s in %s: %w", d, r.manifests, err)
	}
	if d != "" && m.Digest != d {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record %s in %s: holds %s", d, r.manifests, m.Digest)
	}
	return m, nil
}

func sortRecords(records []catalog.ManifestRecord) {
	slices.SortFunc(records, func(a, b catalog.ManifestRecord) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
}

// PutManifest records m in repo and points tags at it, in one script; see
// catalog.Repositories. A record stored already is kept.
func (s *Store) PutManifest(ctx context.Context, repo string, m catalog.ManifestRecord, tags ...string) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	if err := catalog.ValidateTags(tags...); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
	}
	keys := []string{r.repos, r.manifests, r.tags}
	if m.Subject != "" {
		keys = append(keys, r.referrers(m.Subject))
	}
	args := make([]any, 0, 3+len(tags))
	args = append(args, repo, m.Digest.String(), data)
	for _, tag := range tags {
		args = append(args, tag)
	}
	if err := putManifestScript.Run(ctx, s.client, keys, args...).Err(); err != nil {
		return fmt.Errorf("recording manifest %s in %s on %s: %w", m.Digest, repo, s.where, err)
	}
	return nil
}

// Manifest returns repo's record of d, or an error wrapping
// catalog.ErrNotFound.
func (s *Store) Manifest(ctx context.Context, repo string, d digest.Digest) (catalog.ManifestRecord, error) {
	r, err := s.repo(repo)
	if err != nil {
		return catalog.ManifestRecord{}, err
	}
	if err := validDigest("manifest", d); err != nil {
		return catalog.ManifestRecord{}, err
	}
	if err := s.usable(ctx); err != nil {
		return catalog.ManifestRecord{}, err
	}
	data, err := s.client.HGet(ctx, r.manifests, d.String()).Result()
	if errors.Is(err, redis.Nil) {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest %s in repository %s: %w", d, repo, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("reading manifest %s in repository %s from %s: %w", d, repo, s.where, err)
	}
	return decodeRecord(r, d, data)
}

// Tag returns the digest tag points at in repo, or an error wrapping
// catalog.ErrNotFound.
func (s *Store) Tag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	r, err := s.repo(repo)
	if err != nil {
		return "", err
	}
	if err := catalog.ValidateTag(tag); err != nil {
		return "", err
	}
	if err := s.usable(ctx); err != nil {
		return "", err
	}
	v, err := s.client.HGet(ctx, r.tags, tag).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("tag %s in repository %s: %w", tag, repo, catalog.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading tag %s in repository %s from %s: %w", tag, repo, s.where, err)
	}
	d := digest.Digest(v)
	if err := layerstore.ValidateDigest(d); err != nil {
		return "", fmt.Errorf("tag %s in %s: %w", tag, r.tags, err)
	}
	return d, nil
}

// Tags lists repo's tags in byte order; an error wrapping
// catalog.ErrNotFound when repo holds no manifest and no blob. The
// existence check and the listing are one transaction.
func (s *Store) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	var exists *redis.IntCmd
	var keys *redis.StringSliceCmd
	if _, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, r.manifests, r.blobs)
		keys = p.HKeys(ctx, r.tags)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("listing tags of %s from %s: %w", repo, s.where, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("repository %s: %w", repo, catalog.ErrNotFound)
	}
	tags := []string{}
	for _, t := range keys.Val() {
		if catalog.ValidateTag(t) == nil {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// Manifests lists repo's manifest records sorted by digest (empty for a
// repository that does not exist).
func (s *Store) Manifests(ctx context.Context, repo string) ([]catalog.ManifestRecord, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	all, err := s.client.HGetAll(ctx, r.manifests).Result()
	if err != nil {
		return nil, fmt.Errorf("listing manifests of %s from %s: %w", repo, s.where, err)
	}
	records := make([]catalog.ManifestRecord, 0, len(all))
	for field, data := range all {
		m, err := decodeRecord(r, digest.Digest(field), data)
		if err != nil {
			return nil, err
		}
		records = append(records, m)
	}
	sortRecords(records)
	return records, nil
}

// DeleteTag removes tag from repo, or returns an error wrapping
// catalog.ErrNotFound.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := catalog.ValidateTag(tag); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	n, err := s.client.HDel(ctx, r.tags, tag).Result()
	if err != nil {
		return fmt.Errorf("deleting tag %s:%s on %s: %w", repo, tag, s.where, err)
	}
	if n == 0 {
		return fmt.Errorf("tag %s in repository %s: %w", tag, repo, catalog.ErrNotFound)
	}
	return nil
}

// DeleteManifest removes d from repo together with the tags that point at
// it and its referrers entry, in one script, or returns an error wrapping
// catalog.ErrNotFound. It reads the record first for its subject (the
// referrers key the script needs); the script checks that the record is
// still what was read.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("manifest", d); err != nil {
		return err
	}
	for range deleteAttempts {
		if err := s.usable(ctx); err != nil {
			return err
		}
		data, err := s.client.HGet(ctx, r.manifests, d.String()).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("manifest %s in repository %s: %w", d, repo, catalog.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("deleting manifest %s from %s on %s: %w", d, repo, s.where, err)
		}
		keys := []string{r.repos, r.manifests, r.tags, r.blobs}
		// A record that does not parse is deleted all the same; only its
		// referrers entry cannot be found then.
		if m, err := decodeRecord(r, d, data); err == nil && m.Subject != "" && layerstore.ValidateDigest(m.Subject) == nil {
			keys = append(keys, r.referrers(m.Subject))
		}
		res, err := deleteManifestScript.Run(ctx, s.client, keys, repo, d.String(), data).Int()
		if err != nil {
			return fmt.Errorf("deleting manifest %s from %s on %s: %w", d, repo, s.where, err)
		}
		switch res {
		case 1:
			return nil
		case 0:
			return fmt.Errorf("manifest %s in repository %s: %w", d, repo, catalog.ErrNotFound)
		}
	}
	return fmt.Errorf("deleting manifest %s from %s: the record changed under %d consecutive attempts", d, repo, deleteAttempts)
}

// Referrers lists the records of repo's manifests whose subject is
// subject, sorted by digest; empty (not nil) when there are none.
func (s *Store) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]catalog.ManifestRecord, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := validDigest("subject", subject); err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	vals, err := referrersScript.Run(ctx, s.client, []string{r.referrers(subject), r.manifests}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s from %s: %w", subject, repo, s.where, err)
	}
	records := []catalog.ManifestRecord{}
	for _, data := range vals {
		m, err := decodeRecord(r, "", data)
		if err != nil {
			return nil, err
		}
		if m.Subject == subject {
			records = append(records, m)
		}
	}
	sortRecords(records)
	return records, nil
}

// LinkBlob makes blob d part of repo; linking a linked blob does nothing.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("blob", d); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := linkBlobScript.Run(ctx, s.client, []string{r.repos, r.blobs}, repo, d.String()).Err(); err != nil {
		return fmt.Errorf("linking blob %s to %s on %s: %w", d, repo, s.where, err)
	}
	return nil
}

// BlobLinked reports whether d is part of repo.
func (s *Store) BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	r, err := s.repo(repo)
	if err != nil {
		return false, err
	}
	if err := validDigest("blob", d); err != nil {
		return false, err
	}
	if err := s.usable(ctx); err != nil {
		return false, err
	}
	ok, err := s.client.SIsMember(ctx, r.blobs, d.String()).Result()
	if err != nil {
		return false, fmt.Errorf("blob %s in %s on %s: %w", d, repo, s.where, err)
	}
	return ok, nil
}

// UnlinkBlob removes d from repo, or returns an error wrapping
// catalog.ErrNotFound.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("blob", d); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	n, err := unlinkBlobScript.Run(ctx, s.client, []string{r.repos, r.manifests, r.blobs}, repo, d.String()).Int()
	if err != nil {
		return fmt.Errorf("unlinking blob %s from %s on %s: %w", d, repo, s.where, err)
	}
	if n == 0 {
		return fmt.Errorf("blob %s in repository %s: %w", d, repo, catalog.ErrNotFound)
	}
	return nil
}

// Blobs lists the blobs linked to repo, sorted (empty for a repository that
// does not exist).
func (s *Store) Blobs(ctx context.Context, repo string) ([]digest.Digest, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	members, err := s.client.SMembers(ctx, r.blobs).Result()
	if err != nil {
		return nil, fmt.Errorf("listing blobs of %s from %s: %w", repo, s.where, err)
	}
	blobs := make([]digest.Digest, 0, len(members))
	for _, m := range members {
		if d := digest.Digest(m); layerstore.ValidateDigest(d) == nil {
			blobs = append(blobs, d)
		}
	}
	slices.Sort(blobs)
	return blobs, nil
}

// RepositoryNames lists the repositories that hold a manifest or a blob,
// sorted.
func (s *Store) RepositoryNames(ctx context.Context) ([]string, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	members, err := s.client.SMembers(ctx, s.reposKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("listing repositories from %s: %w", s.where, err)
	}
	names := make([]string, 0, len(members))
	for _, n := range members {
		if catalog.ValidateRepository(n) == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}
