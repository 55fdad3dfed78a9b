package fsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"
)

// Names inside a repository's directory. They start with '_', which no
// component of a repository name can (catalog.RepositoryNamePattern), so a
// repository "a" and a nested repository "a/b" share a directory without
// colliding.
const (
	manifestsDir = "_manifests"
	tagsDir      = "_tags"
	blobsDir     = "_blobs"
	referrersDir = "_referrers"
	reposLock    = "_lock"
)

var (
	_ catalog.Repositories = (*Store)(nil)
)

func (s *Store) reposDir() string      { return s.path("repositories") }
func (s *Store) reposLockFile() string { return filepath.Join(s.reposDir(), reposLock) }

// repoFiles names the files of one repository; built only from a name that
// passed catalog.ValidateRepository and digests that passed
// layerstore.ValidateDigest.
type repoFiles struct {
	name string
	dir  string
}

// repo validates name and returns its files.
func (s *Store) repo(name string) (repoFiles, error) {
	if err := catalog.ValidateRepository(name); err != nil {
		return repoFiles{}, err
	}
	return repoFiles{name: name, dir: filepath.Join(s.reposDir(), filepath.FromSlash(name))}, nil
}

func (r repoFiles) manifest(d digest.Digest) string {
	return filepath.Join(r.dir, manifestsDir, string(d.Algorithm()), d.Encoded()+".json")
}
func (r repoFiles) tags() string          { return filepath.Join(r.dir, tagsDir) }
func (r repoFiles) tag(tag string) string { return filepath.Join(r.dir, tagsDir, tag) }
func (r repoFiles) blob(d digest.Digest) string {
	return filepath.Join(r.dir, blobsDir, string(d.Algorithm()), d.Encoded())
}
func (r repoFiles) referrers(subject digest.Digest) string {
	return filepath.Join(r.dir, referrersDir, digestName(subject))
}
func (r repoFiles) referrer(subject, d digest.Digest) string {
	return filepath.Join(r.referrers(subject), digestName(d))
}

// digestName is a digest as one path component: "<algorithm>-<hex>".
func digestName(d digest.Digest) string { return string(d.Algorithm()) + "-" + d.Encoded() }

// parseDigestName inverts digestName; ok is false for a name that is not a
// valid digest of an accepted algorithm.
func parseDigestName(name string) (digest.Digest, bool) {
	alg, hex, found := strings.Cut(name, "-")
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, found && layerstore.ValidateDigest(d) == nil
}

// validDigest checks a digest before it becomes part of a path.
func validDigest(what string, d digest.Digest) error {
	if err := layerstore.ValidateDigest(d); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// changeRepos runs fn under the in-process mutex and the exclusive flock of
// repositories/_lock. Repository changes never touch GENERATION: they are
// not catalog (package) changes.
func (s *Store) changeRepos(ctx context.Context, fn func() error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.reposMu.Lock()
	defer s.reposMu.Unlock()
	lk, err := lockFile(ctx, s.reposLockFile(), "repositories", syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.unlock()
	return fn()
}

// readable checks what every read checks first.
func (s *Store) readable(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// writeNew writes path (creating its directory) unless it exists.
func (s *Store) writeNew(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := durable.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	return s.writeFile(path, data)
}

// remove removes path durably; a missing file is reported as
// os.ErrNotExist.
func (s *Store) remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return s.at("removed", path)
}

// PutManifest records m in repo and points tags at it; see
// catalog.Repositories and the package doc (Repositories) for the order of
// the writes. It takes the repositories lock.
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
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
	}
	data = append(data, '\n')
	return s.changeRepos(ctx, func() error {
		// The referrers marker first: one without its record is skipped by
		// Referrers, a record without its marker would be missed.
		if m.Subject != "" {
			if err := s.writeNew(r.referrer(m.Subject, m.Digest), nil); err != nil {
				return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
			}
		}
		if err := s.writeNew(r.manifest(m.Digest), data); err != nil {
			return fmt.Errorf("recording manifest %s in %s: %w", m.Digest, repo, err)
		}
		for _, tag := range tags {
			cur, err := os.ReadFile(r.tag(tag))
			if err == nil && strings.TrimSpace(string(cur)) == m.Digest.String() {
				continue
			}
			if err := durable.MkdirAll(r.tags()); err != nil {
				return fmt.Errorf("tagging %s:%s: %w", repo, tag, err)
			}
			if err := s.writeFile(r.tag(tag), []byte(m.Digest.String()+"\n")); err != nil {
				return fmt.Errorf("tagging %s:%s: %w", repo, tag, err)
			}
		}
		return nil
	})
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
	if err := s.readable(ctx); err != nil {
		return catalog.ManifestRecord{}, err
	}
	return readRecord(r, d)
}

// readRecord reads and checks one manifest record file.
func readRecord(r repoFiles, d digest.Digest) (catalog.ManifestRecord, error) {
	path := r.manifest(d)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest %s in repository %s: %w", d, r.name, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("reading manifest %s in repository %s: %w", d, r.name, err)
	}
	var m catalog.ManifestRecord
	if err := json.Unmarshal(data, &m); err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record file %s: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record file %s: %w", path, err)
	}
	if m.Digest != d {
		return catalog.ManifestRecord{}, fmt.Errorf("manifest record file %s: holds %s", path, m.Digest)
	}
	return m, nil
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
	if err := s.readable(ctx); err != nil {
		return "", err
	}
	return readTag(r, tag)
}

func readTag(r repoFiles, tag string) (digest.Digest, error) {
	path := r.tag(tag)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("tag %s in repository %s: %w", tag, r.name, catalog.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading tag %s in repository %s: %w", tag, r.name, err)
	}
	d := digest.Digest(strings.TrimSpace(string(data)))
	if err := layerstore.ValidateDigest(d); err != nil {
		return "", fmt.Errorf("tag file %s: %w", path, err)
	}
	return d, nil
}

// Tags lists repo's tags in byte order; an error wrapping
// catalog.ErrNotFound when repo holds no manifest and no blob.
func (s *Store) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	switch ok, err := exists(r.dir); {
	case err != nil:
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	case !ok:
		return nil, fmt.Errorf("repository %s: %w", repo, catalog.ErrNotFound)
	}
	names, err := readNames(r.tags())
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	tags := []string{}
	for _, n := range names {
		if catalog.ValidateTag(n) == nil {
			tags = append(tags, n)
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
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	records := []catalog.ManifestRecord{}
	for _, alg := range layerstore.Algorithms {
		names, err := readNames(filepath.Join(r.dir, manifestsDir, string(alg)))
		if err != nil {
			return nil, fmt.Errorf("listing manifests of %s: %w", repo, err)
		}
		for _, n := range names {
			hex, ok := strings.CutSuffix(n, ".json")
			d := digest.NewDigestFromEncoded(alg, hex)
			if !ok || d.Validate() != nil {
				continue // not a record (a stray file)
			}
			m, err := readRecord(r, d)
			if errors.Is(err, catalog.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			records = append(records, m)
		}
	}
	slices.SortFunc(records, func(a, b catalog.ManifestRecord) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return records, nil
}

// DeleteTag removes tag from repo, or returns an error wrapping
// catalog.ErrNotFound. It takes the repositories lock.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := catalog.ValidateTag(tag); err != nil {
		return err
	}
	return s.changeRepos(ctx, func() error {
		err := s.remove(r.tag(tag))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("tag %s in repository %s: %w", tag, repo, catalog.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("deleting tag %s:%s: %w", repo, tag, err)
		}
		return nil
	})
}

// DeleteManifest removes d from repo: first every tag pointing at it, then
// the record, then its referrers marker, so that a crash never leaves a tag
// naming a missing record. It returns an error wrapping catalog.ErrNotFound
// when repo does not hold d, and takes the repositories lock.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("manifest", d); err != nil {
		return err
	}
	return s.changeRepos(ctx, func() error {
		m, err := readRecord(r, d)
		if err != nil {
			return err
		}
		names, err := readNames(r.tags())
		if err != nil {
			return fmt.Errorf("deleting manifest %s from %s: %w", d, repo, err)
		}
		for _, tag := range names {
			if catalog.ValidateTag(tag) != nil {
				continue
			}
			cur, err := readTag(r, tag)
			if err != nil || cur != d {
				continue // another manifest's tag, or not a tag
			}
			if err := s.remove(r.tag(tag)); err != nil {
				return fmt.Errorf("deleting manifest %s from %s: tag %s: %w", d, repo, tag, err)
			}
		}
		if err := s.remove(r.manifest(d)); err != nil {
			return fmt.Errorf("deleting manifest %s from %s: %w", d, repo, err)
		}
		if m.Subject != "" && layerstore.ValidateDigest(m.Subject) == nil {
			if err := s.remove(r.referrer(m.Subject, d)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("deleting manifest %s from %s: referrers of %s: %w", d, repo, m.Subject, err)
			}
			removeEmpty(r.referrers(m.Subject))
		}
		return s.prune(r)
	})
}

// Referrers lists the records of repo's manifests whose subject is subject,
// sorted by digest; empty (not nil) when there are none.
func (s *Store) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]catalog.ManifestRecord, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := validDigest("subject", subject); err != nil {
		return nil, err
	}
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	names, err := readNames(r.referrers(subject))
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
	}
	records := []catalog.ManifestRecord{}
	for _, n := range names {
		d, ok := parseDigestName(n)
		if !ok {
			continue
		}
		m, err := readRecord(r, d)
		if errors.Is(err, catalog.ErrNotFound) {
			continue // a marker whose record a crash or a delete left behind
		}
		if err != nil {
			return nil, err
		}
		if m.Subject == subject {
			records = append(records, m)
		}
	}
	slices.SortFunc(records, func(a, b catalog.ManifestRecord) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return records, nil
}

// LinkBlob makes blob d part of repo (an empty marker file). It takes the
// repositories lock unless d is linked already.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("blob", d); err != nil {
		return err
	}
	if err := s.readable(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(r.blob(d)); err == nil {
		return nil
	}
	return s.changeRepos(ctx, func() error {
		if err := s.writeNew(r.blob(d), nil); err != nil {
			return fmt.Errorf("linking blob %s to %s: %w", d, repo, err)
		}
		return nil
	})
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
	if err := s.readable(ctx); err != nil {
		return false, err
	}
	switch _, err := os.Stat(r.blob(d)); {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("blob %s in %s: %w", d, repo, err)
	}
}

// UnlinkBlob removes d from repo, or returns an error wrapping
// catalog.ErrNotFound. It takes the repositories lock.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if err := validDigest("blob", d); err != nil {
		return err
	}
	return s.changeRepos(ctx, func() error {
		err := s.remove(r.blob(d))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("blob %s in repository %s: %w", d, repo, catalog.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("unlinking blob %s from %s: %w", d, repo, err)
		}
		return s.prune(r)
	})
}

// Blobs lists the blobs linked to repo, sorted (empty for a repository that
// does not exist).
func (s *Store) Blobs(ctx context.Context, repo string) ([]digest.Digest, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	blobs := []digest.Digest{}
	for _, alg := range layerstore.Algorithms {
		names, err := readNames(filepath.Join(r.dir, blobsDir, string(alg)))
		if err != nil {
			return nil, fmt.Errorf("listing blobs of %s: %w", repo, err)
		}
		for _, n := range names {
			if d := digest.NewDigestFromEncoded(alg, n); d.Validate() == nil {
				blobs = append(blobs, d)
			}
		}
	}
	slices.Sort(blobs)
	return blobs, nil
}

// RepositoryNames walks DIR/repositories and lists the repositories that
// hold a manifest or a blob, sorted.
func (s *Store) RepositoryNames(ctx context.Context) ([]string, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	names := []string{}
	var walk func(dir, name string) error
	walk = func(dir, name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if name != "" && catalog.ValidateRepository(name) == nil {
			switch ok, err := exists(dir); {
			case err != nil:
				return err
			case ok:
				names = append(names, name)
			}
		}
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, "_") || strings.HasPrefix(n, ".") {
				continue
			}
			child := n
			if name != "" {
				child = name + "/" + n
			}
			if len(child) > catalog.MaxRepositoryNameLength {
				continue
			}
			if err := walk(filepath.Join(dir, n), child); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(s.reposDir(), ""); err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// exists reports whether the repository in dir holds a manifest record or
// a linked blob. It reads at most one name per directory.
func exists(dir string) (bool, error) {
	for _, kind := range []string{manifestsDir, blobsDir} {
		for _, alg := range layerstore.Algorithms {
			ok, err := hasEntries(filepath.Join(dir, kind, string(alg)))
			if ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// hasEntries reports whether dir exists and is not empty.
func hasEntries(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return false, nil
	}
	return err == nil, err
}

// readNames lists the names in dir, sorted; none when dir does not exist.
func readNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// prune removes the directories of a repository that holds nothing any
// more, and its parents up to DIR/repositories while they are empty. The
// caller holds the repositories lock, so no write races with it; a reader
// meanwhile finds the repository missing, which it is. A failure to remove
// leaves empty directories, which hold nothing and are harmless.
func (s *Store) prune(r repoFiles) error {
	switch ok, err := exists(r.dir); {
	case err != nil:
		return err
	case ok:
		return nil
	}
	// Without a manifest there is no tag (DeleteManifest removes them
	// first) and no referrer that counts (Referrers needs the record).
	for _, sub := range []string{manifestsDir, tagsDir, blobsDir, referrersDir} {
		if err := os.RemoveAll(filepath.Join(r.dir, sub)); err != nil {
			return err
		}
	}
	for dir := r.dir; dir != s.reposDir() && strings.HasPrefix(dir, s.reposDir()); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty: a nested repository lives below it, or a parent one in it
		}
	}
	return nil
}

// removeEmpty removes dir if it is empty.
func removeEmpty(dir string) {
	os.Remove(dir)
}
