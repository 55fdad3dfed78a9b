package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/layerstore"
)

// Repository semantics, written once.
//
// RepositoryStore implements Repositories (validation, record encoding,
// tag and referrer rules, ordering, errors) over a RepositoryDriver, the
// narrow port a backend implements: per repository, four tables of
// strings and an atomic update. The way distribution writes its
// repository semantics once over its storage driver, a new backend needs
// only the driver: a few get/list/set/delete calls and one transaction.
//
// Tables and what they hold (key → value):
//
//	Manifests             digest → ManifestRecord as JSON
//	Tags                  tag → digest of a manifest in Manifests
//	Blobs                 digest → "" (the blob is linked)
//	Referrers(subject)    digest → "" (a manifest whose subject is subject)
//
// A record is written before the tags that point at it and after its
// referrers entry, and deleted after its tags and before its referrers
// entry, so that a driver that applies an update's writes one by one (in
// the order made) is consistent after any prefix of them: a tag never
// names a missing record, and a referrers entry without its record is
// skipped.

// TableKind is one of a repository's tables.
type TableKind int

// The tables of a repository.
const (
	TableManifests TableKind = iota
	TableTags
	TableBlobs
	TableReferrers
)

// Table names a table of a repository; Subject is set for TableReferrers
// only.
type Table struct {
	Kind    TableKind
	Subject digest.Digest
}

// The tables without a subject.
var (
	Manifests = Table{Kind: TableManifests}
	Tags      = Table{Kind: TableTags}
	Blobs     = Table{Kind: TableBlobs}
)

// ReferrersOf is the referrers table of subject.
func ReferrersOf(subject digest.Digest) Table { return Table{Kind: TableReferrers, Subject: subject} }

// RepositoryDriver is what a backend implements for ordinary repositories.
// Repository names, keys and subjects it receives are validated (a
// repository name by ValidateRepository, digests by
// layerstore.ValidateDigest, tags by ValidateTag), so it may build file
// names and keys from them.
type RepositoryDriver interface {
	// Get returns the value of key in repo's table t; ok is false when
	// there is none.
	Get(ctx context.Context, repo string, t Table, key string) (value string, ok bool, err error)
	// List returns repo's table t (empty when there is none).
	List(ctx context.Context, repo string, t Table) (map[string]string, error)
	// Holds reports whether repo's Manifests or Blobs table has an entry.
	Holds(ctx context.Context, repo string) (bool, error)
	// Repositories lists the repositories that hold something, in any order.
	Repositories(ctx context.Context) ([]string, error)
	// Update runs fn on repo with exclusive access against every other
	// Update of repo (in any process): what fn reads is current, and no
	// other update interleaves with its writes. The writes apply either
	// all at once or one by one in the order made (see above); fn may run
	// again when the driver detects a concurrent change (optimistic
	// drivers), so it must not have other side effects.
	Update(ctx context.Context, repo string, fn func(RepositoryTx) error) error
}

// RepositoryTx is one repository's state inside RepositoryDriver.Update.
type RepositoryTx interface {
	Get(t Table, key string) (string, bool, error)
	List(t Table) (map[string]string, error)
	Set(t Table, key, value string) error
	Delete(t Table, key string) error
}

// RepositoryStore implements Repositories over a driver.
type RepositoryStore struct {
	driver RepositoryDriver
	// usable is checked first by every method (a closed store, a
	// cancelled context).
	usable func(ctx context.Context) error
}

var _ Repositories = (*RepositoryStore)(nil)

// NewRepositoryStore returns the repository semantics over d. usable, when
// not nil, is what every call checks first (a closed store); the context's
// cancellation is always checked.
func NewRepositoryStore(d RepositoryDriver, usable func(ctx context.Context) error) *RepositoryStore {
	return &RepositoryStore{driver: d, usable: usable}
}

// check validates repo and the digests, and that the store can be used.
func (s *RepositoryStore) check(ctx context.Context, repo string, ds ...digest.Digest) error {
	if err := ValidateRepository(repo); err != nil {
		return err
	}
	for _, d := range ds {
		if err := layerstore.ValidateDigest(d); err != nil {
			return fmt.Errorf("repository %s: %w", repo, err)
		}
	}
	if s.usable != nil {
		if err := s.usable(ctx); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// DecodeRecord parses and checks a stored record of d ("" when the key is
// unknown); where names it in errors.
func DecodeRecord(where string, d digest.Digest, data string) (ManifestRecord, error) {
	var m ManifestRecord
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return ManifestRecord{}, fmt.Errorf("manifest record %s: %w", where, err)
	}
	if err := m.Validate(); err != nil {
		return ManifestRecord{}, fmt.Errorf("manifest record %s: %w", where, err)
	}
	if d != "" && m.Digest != d {
		return ManifestRecord{}, fmt.Errorf("manifest record %s: holds %s", where, m.Digest)
	}
	return m, nil
}

func sortRecords(records []ManifestRecord) {
	slices.SortFunc(records, func(a, b ManifestRecord) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
}

// PutManifest records m in repo and points tags at it (Repositories). A
// record stored already is kept: the same digest is the same manifest.
func (s *RepositoryStore) PutManifest(ctx context.Context, repo string, m ManifestRecord, tags ...string) error {
	if err := s.check(ctx, repo); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	if err := ValidateTags(tags...); err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
	}
	d := m.Digest.String()
	err = s.driver.Update(ctx, repo, func(tx RepositoryTx) error {
		_, stored, err := tx.Get(Manifests, d)
		if err != nil {
			return err
		}
		if !stored {
			if m.Subject != "" {
				if err := tx.Set(ReferrersOf(m.Subject), d, ""); err != nil {
					return err
				}
			}
			if err := tx.Set(Manifests, d, string(data)); err != nil {
				return err
			}
		}
		for _, tag := range tags {
			if cur, ok, err := tx.Get(Tags, tag); err != nil || (ok && cur == d) {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.Set(Tags, tag, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
}

// Manifest returns repo's record of d, or an error wrapping ErrNotFound.
func (s *RepositoryStore) Manifest(ctx context.Context, repo string, d digest.Digest) (ManifestRecord, error) {
	if err := s.check(ctx, repo, d); err != nil {
		return ManifestRecord{}, err
	}
	data, ok, err := s.driver.Get(ctx, repo, Manifests, d.String())
	if err != nil {
		return ManifestRecord{}, fmt.Errorf("reading manifest %s in repository %s: %w", d, repo, err)
	}
	if !ok {
		return ManifestRecord{}, fmt.Errorf("manifest %s in repository %s: %w", d, repo, ErrNotFound)
	}
	return DecodeRecord(repo+"@"+d.String(), d, data)
}

// Tag returns the digest tag points at in repo, or an error wrapping
// ErrNotFound.
func (s *RepositoryStore) Tag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if err := s.check(ctx, repo); err != nil {
		return "", err
	}
	if err := ValidateTag(tag); err != nil {
		return "", err
	}
	v, ok, err := s.driver.Get(ctx, repo, Tags, tag)
	if err != nil {
		return "", fmt.Errorf("reading tag %s in repository %s: %w", tag, repo, err)
	}
	if !ok {
		return "", fmt.Errorf("tag %s in repository %s: %w", tag, repo, ErrNotFound)
	}
	d := digest.Digest(strings.TrimSpace(v))
	if err := layerstore.ValidateDigest(d); err != nil {
		return "", fmt.Errorf("tag %s in repository %s: %w", tag, repo, err)
	}
	return d, nil
}

// Tags lists repo's tags in byte order; an error wrapping ErrNotFound when
// repo holds no manifest and no blob.
func (s *RepositoryStore) Tags(ctx context.Context, repo string) ([]string, error) {
	if err := s.check(ctx, repo); err != nil {
		return nil, err
	}
	switch ok, err := s.driver.Holds(ctx, repo); {
	case err != nil:
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	case !ok:
		return nil, fmt.Errorf("repository %s: %w", repo, ErrNotFound)
	}
	all, err := s.driver.List(ctx, repo, Tags)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	tags := []string{}
	for t := range all {
		if ValidateTag(t) == nil {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// Manifests lists repo's manifest records sorted by digest (empty for a
// repository that does not exist).
func (s *RepositoryStore) Manifests(ctx context.Context, repo string) ([]ManifestRecord, error) {
	if err := s.check(ctx, repo); err != nil {
		return nil, err
	}
	all, err := s.driver.List(ctx, repo, Manifests)
	if err != nil {
		return nil, fmt.Errorf("listing manifests of %s: %w", repo, err)
	}
	records := make([]ManifestRecord, 0, len(all))
	for key, data := range all {
		m, err := DecodeRecord(repo+"@"+key, digest.Digest(key), data)
		if err != nil {
			return nil, err
		}
		records = append(records, m)
	}
	sortRecords(records)
	return records, nil
}

// DeleteTag removes tag from repo, or returns an error wrapping
// ErrNotFound.
func (s *RepositoryStore) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := s.check(ctx, repo); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	return s.driver.Update(ctx, repo, func(tx RepositoryTx) error {
		switch _, ok, err := tx.Get(Tags, tag); {
		case err != nil:
			return fmt.Errorf("deleting tag %s:%s: %w", repo, tag, err)
		case !ok:
			return fmt.Errorf("tag %s in repository %s: %w", tag, repo, ErrNotFound)
		}
		return tx.Delete(Tags, tag)
	})
}

// DeleteManifest removes d from repo: every tag pointing at it, then the
// record, then its referrers entry; or returns an error wrapping
// ErrNotFound.
func (s *RepositoryStore) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if err := s.check(ctx, repo, d); err != nil {
		return err
	}
	key := d.String()
	return s.driver.Update(ctx, repo, func(tx RepositoryTx) error {
		data, ok, err := tx.Get(Manifests, key)
		if err != nil {
			return fmt.Errorf("deleting manifest %s from %s: %w", d, repo, err)
		}
		if !ok {
			return fmt.Errorf("manifest %s in repository %s: %w", d, repo, ErrNotFound)
		}
		tags, err := tx.List(Tags)
		if err != nil {
			return fmt.Errorf("deleting manifest %s from %s: %w", d, repo, err)
		}
		for _, tag := range slices.Sorted(maps.Keys(tags)) {
			if strings.TrimSpace(tags[tag]) == key {
				if err := tx.Delete(Tags, tag); err != nil {
					return fmt.Errorf("deleting manifest %s from %s: tag %s: %w", d, repo, tag, err)
				}
			}
		}
		if err := tx.Delete(Manifests, key); err != nil {
			return fmt.Errorf("deleting manifest %s from %s: %w", d, repo, err)
		}
		// A record that does not parse is deleted all the same; only its
		// referrers entry cannot be found then.
		if m, err := DecodeRecord(repo+"@"+key, d, data); err == nil && m.Subject != "" {
			if err := tx.Delete(ReferrersOf(m.Subject), key); err != nil {
				return fmt.Errorf("deleting manifest %s from %s: referrers of %s: %w", d, repo, m.Subject, err)
			}
		}
		return nil
	})
}

// Referrers lists the records of repo's manifests whose subject is
// subject, sorted by digest; empty (not nil) when there are none. An entry
// without its record (left by a crash) is skipped.
func (s *RepositoryStore) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ManifestRecord, error) {
	if err := s.check(ctx, repo, subject); err != nil {
		return nil, err
	}
	entries, err := s.driver.List(ctx, repo, ReferrersOf(subject))
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
	}
	records := []ManifestRecord{}
	for key := range entries {
		d := digest.Digest(key)
		if layerstore.ValidateDigest(d) != nil {
			continue
		}
		data, ok, err := s.driver.Get(ctx, repo, Manifests, key)
		if err != nil {
			return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
		}
		if !ok {
			continue
		}
		m, err := DecodeRecord(repo+"@"+key, d, data)
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

// LinkBlob makes blob d part of repo; linking a linked blob changes
// nothing.
func (s *RepositoryStore) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if linked, err := s.BlobLinked(ctx, repo, d); err != nil || linked {
		return err
	}
	err := s.driver.Update(ctx, repo, func(tx RepositoryTx) error {
		return tx.Set(Blobs, d.String(), "")
	})
	if err != nil {
		return fmt.Errorf("linking blob %s to %s: %w", d, repo, err)
	}
	return nil
}

// BlobLinked reports whether d is part of repo.
func (s *RepositoryStore) BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	if err := s.check(ctx, repo, d); err != nil {
		return false, err
	}
	_, ok, err := s.driver.Get(ctx, repo, Blobs, d.String())
	if err != nil {
		return false, fmt.Errorf("blob %s in %s: %w", d, repo, err)
	}
	return ok, nil
}

// UnlinkBlob removes d from repo, or returns an error wrapping
// ErrNotFound.
func (s *RepositoryStore) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := s.check(ctx, repo, d); err != nil {
		return err
	}
	return s.driver.Update(ctx, repo, func(tx RepositoryTx) error {
		switch _, ok, err := tx.Get(Blobs, d.String()); {
		case err != nil:
			return fmt.Errorf("unlinking blob %s from %s: %w", d, repo, err)
		case !ok:
			return fmt.Errorf("blob %s in repository %s: %w", d, repo, ErrNotFound)
		}
		return tx.Delete(Blobs, d.String())
	})
}

// Blobs lists the blobs linked to repo, sorted (empty for a repository that
// does not exist).
func (s *RepositoryStore) Blobs(ctx context.Context, repo string) ([]digest.Digest, error) {
	if err := s.check(ctx, repo); err != nil {
		return nil, err
	}
	all, err := s.driver.List(ctx, repo, Blobs)
	if err != nil {
		return nil, fmt.Errorf("listing blobs of %s: %w", repo, err)
	}
	blobs := make([]digest.Digest, 0, len(all))
	for key := range all {
		if d := digest.Digest(key); layerstore.ValidateDigest(d) == nil {
			blobs = append(blobs, d)
		}
	}
	slices.Sort(blobs)
	return blobs, nil
}

// RepositoryNames lists the repositories that hold a manifest or a blob,
// sorted.
func (s *RepositoryStore) RepositoryNames(ctx context.Context) ([]string, error) {
	if s.usable != nil {
		if err := s.usable(ctx); err != nil {
			return nil, err
		}
	}
	all, err := s.driver.Repositories(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	names := make([]string, 0, len(all))
	for _, n := range all {
		if ValidateRepository(n) == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
