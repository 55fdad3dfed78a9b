package fsstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"
)

// Ordinary repositories: the files of catalog.RepositoryDriver. The
// semantics (catalog.RepositoryStore) are the catalog package's; this file
// only says where each table entry lives:
//
//	DIR/repositories/<name>/
//	  _manifests/<alg>/<hex>.json            Manifests: the record (JSON)
//	  _tags/<tag>                            Tags: the digest and a newline
//	  _blobs/<alg>/<hex>                     Blobs: empty
//	  _referrers/<alg>-<subject hex>/<alg>-<hex>   Referrers(subject): empty
//	  _lock                                  (in DIR/repositories only) flock(2)ed by every update
//
// Names inside a repository's directory start with '_', which no component
// of a repository name can (catalog.RepositoryNamePattern), so a repository
// "a" and a nested repository "a/b" share a directory without colliding.
//
// An update takes the in-process mutex and the exclusive flock of _lock,
// and applies each write at once, durably (temp file, fsync, rename, fsync
// of the directory), in the order the semantics make them; reads take no
// lock. A repository that holds nothing after an update loses its
// directories.
const (
	manifestsDir = "_manifests"
	tagsDir      = "_tags"
	blobsDir     = "_blobs"
	referrersDir = "_referrers"
	reposLock    = "_lock"
)

func (s *Store) reposDir() string      { return s.path("repositories") }
func (s *Store) reposLockFile() string { return filepath.Join(s.reposDir(), reposLock) }

// repoDriver is the Store's catalog.RepositoryDriver.
type repoDriver struct{ s *Store }

var _ catalog.RepositoryDriver = repoDriver{}

// dir is a repository's directory (the name is validated by the caller).
func (d repoDriver) dir(repo string) string {
	return filepath.Join(d.s.reposDir(), filepath.FromSlash(repo))
}

// tableDir is the directory of a table, and the file of key within it.
func (d repoDriver) file(repo string, t catalog.Table, key string) string {
	dir := d.dir(repo)
	switch t.Kind {
	case catalog.TableManifests:
		dg := digest.Digest(key)
		return filepath.Join(dir, manifestsDir, string(dg.Algorithm()), dg.Encoded()+".json")
	case catalog.TableTags:
		return filepath.Join(dir, tagsDir, key)
	case catalog.TableBlobs:
		dg := digest.Digest(key)
		return filepath.Join(dir, blobsDir, string(dg.Algorithm()), dg.Encoded())
	default:
		return filepath.Join(dir, referrersDir, digestName(t.Subject), digestName(digest.Digest(key)))
	}
}

// Get reads one entry.
func (d repoDriver) Get(ctx context.Context, repo string, t catalog.Table, key string) (string, bool, error) {
	data, err := os.ReadFile(d.file(repo, t, key))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(data), true, nil
}

// List reads a whole table. Its keys are rebuilt from file names; names
// that are not a key of the table (stray files) are skipped.
func (d repoDriver) List(ctx context.Context, repo string, t catalog.Table) (map[string]string, error) {
	out := map[string]string{}
	dir := d.dir(repo)
	read := func(path, key string) error {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err == nil {
			out[key] = string(data)
		}
		return err
	}
	switch t.Kind {
	case catalog.TableManifests, catalog.TableBlobs:
		sub, suffix := blobsDir, ""
		if t.Kind == catalog.TableManifests {
			sub, suffix = manifestsDir, ".json"
		}
		for _, alg := range layerstore.Algorithms {
			names, err := readNames(filepath.Join(dir, sub, string(alg)))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				hex, ok := strings.CutSuffix(n, suffix)
				dg := digest.NewDigestFromEncoded(alg, hex)
				if !ok || dg.Validate() != nil {
					continue
				}
				if err := read(filepath.Join(dir, sub, string(alg), n), dg.String()); err != nil {
					return nil, err
				}
			}
		}
	case catalog.TableTags:
		names, err := readNames(filepath.Join(dir, tagsDir))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if catalog.ValidateTag(n) == nil {
				if err := read(filepath.Join(dir, tagsDir, n), n); err != nil {
					return nil, err
				}
			}
		}
	default:
		sub := filepath.Join(dir, referrersDir, digestName(t.Subject))
		names, err := readNames(sub)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if dg, ok := parseDigestName(n); ok {
				out[dg.String()] = ""
			}
		}
	}
	return out, nil
}

// Holds reports whether repo has a manifest record or a linked blob.
func (d repoDriver) Holds(ctx context.Context, repo string) (bool, error) {
	return exists(d.dir(repo))
}

// Update runs fn under the repositories lock; see the layout above.
func (d repoDriver) Update(ctx context.Context, repo string, fn func(catalog.RepositoryTx) error) error {
	s := d.s
	s.reposMu.Lock()
	defer s.reposMu.Unlock()
	lk, err := lockFile(ctx, s.reposLockFile(), "repositories", syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.unlock()
	if err := fn(repoTx{d: d, ctx: ctx, repo: repo}); err != nil {
		return err
	}
	return s.prune(d.dir(repo))
}

// repoTx applies each write at once.
type repoTx struct {
	d    repoDriver
	ctx  context.Context
	repo string
}

func (tx repoTx) Get(t catalog.Table, key string) (string, bool, error) {
	return tx.d.Get(tx.ctx, tx.repo, t, key)
}

func (tx repoTx) List(t catalog.Table) (map[string]string, error) {
	return tx.d.List(tx.ctx, tx.repo, t)
}

func (tx repoTx) Set(t catalog.Table, key, value string) error {
	path := tx.d.file(tx.repo, t, key)
	if err := durable.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	if t.Kind == catalog.TableTags {
		value += "\n"
	}
	return tx.d.s.writeFile(path, []byte(value))
}

func (tx repoTx) Delete(t catalog.Table, key string) error {
	path := tx.d.file(tx.repo, t, key)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if t.Kind == catalog.TableReferrers {
		os.Remove(filepath.Dir(path)) // the subject's directory, when empty
	}
	return tx.d.s.at("removed", path)
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

// readable checks what every read checks first.
func (s *Store) readable(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Repositories walks DIR/repositories and lists the repositories that hold
// a manifest or a blob.
func (d repoDriver) Repositories(ctx context.Context) ([]string, error) {
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
	if err := walk(d.s.reposDir(), ""); err != nil {
		return nil, err
	}
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

// readNames lists the names in dir; none when dir does not exist.
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
func (s *Store) prune(dir string) error {
	switch ok, err := exists(dir); {
	case err != nil:
		return err
	case ok:
		return nil
	}
	// Without a manifest there is no tag (DeleteManifest removes them
	// first) and no referrer that counts (Referrers needs the record).
	for _, sub := range []string{manifestsDir, tagsDir, blobsDir, referrersDir} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	for d := dir; d != s.reposDir() && strings.HasPrefix(d, s.reposDir()); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty: a nested repository lives below it, or a parent one in it
		}
	}
	return nil
}
