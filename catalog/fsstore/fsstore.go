// Package fsstore implements catalog.Store on plain files under one data
// directory (envreg's --data): the embedded default, for one host and any
// number of envreg processes sharing the directory. It is not meant for
// network filesystems (it relies on flock(2) and atomic rename).
//
// # Layout
//
//	DIR/
//	  catalog/
//	    GENERATION                        decimal uint64 and a newline; replaced atomically
//	    LOCK                              flock(2)ed: exclusive while changing, shared while loading;
//	                                      non-empty while a change is in progress (see Crashes)
//	    releases/<name>/<version>.json    one catalog.Release per package version (indented JSON)
//	    stacks/<name>.yaml                one catalog.Stack (catalog.MarshalStackYAML)
//	  documents/
//	    sha256/<hex>                      raw bytes of a stored manifest or index
//	    sha256/<hex>.type                 its media type (written before the data file), only when
//	                                      the data does not declare it (see Documents)
//	  tmp/                                temp files of writes in progress, same filesystem
//
// <version> is the version without build metadata (8.2.36 for 8.2.36+deb12):
// semver ignores build metadata for precedence, so 8.2.36+a and 8.2.36+b are
// one version whose metadata differs (catalog.SameContent), not two releases
// that would tie in resolution. The file records the full version.
//
// # Writes
//
// Every file is written the same way: temp file in DIR/tmp, write, fsync,
// rename over the target, fsync the target's directory. A reader sees the old
// file or the new one, never a torn one, and a temp file is never read
// (loading looks only at catalog/ and documents/). Temp files older than an
// hour are removed by Open; younger ones may belong to a live process.
//
// # Generation and snapshots
//
// A change (Publish, PutStack) takes the in-process mutex, then an exclusive
// flock on LOCK; it re-reads the affected file from disk (another process may
// have written it), writes the new file, and then GENERATION = GENERATION+1.
// A change that changes nothing (republishing identical content) neither
// writes nor bumps the generation.
//
// Snapshot returns the cached *catalog.Snapshot. At most once per poll
// interval (WithPollInterval, default 250ms) it reads GENERATION, a few
// bytes; when that differs from the cached generation it reloads every
// release and stack under a shared flock, so the loaded content is exactly
// the content of that generation. So a change made by another process is
// visible within one poll interval, and one made through this Store is
// visible as soon as Publish returns. Only one goroutine reloads; the others
// keep reading the atomic pointer.
//
// A release or stack file that cannot be parsed or does not validate makes
// Open fail with an error naming the file. If it appears later (written by
// hand, or a disk fault), Snapshot returns that error, again at most once a
// poll interval reading the disk, until the file is fixed: serving a stale
// catalog silently would hide the fault. The previous snapshot stays in
// memory, untouched.
//
// # Crashes
//
// Before its first write a change writes a marker into LOCK (and fsyncs it);
// it empties LOCK after bumping the generation. A crash after the release or
// stack file is renamed but before GENERATION is replaced leaves the new file
// complete but no new generation, and the marker. Whoever next takes the
// exclusive lock (Open, or the next change) sees the marker and bumps the
// generation, so every process reloads and no two processes hold different
// content under one generation number for longer than that. A crash before
// the rename leaves only a temp file, which is never read.
//
// # Documents
//
// Documents need no lock or generation: they are addressed by digest, and
// the data file (written last) is what makes a document exist. A document
// whose data is a JSON object with a top-level "mediaType" equal to its media
// type (every composed one, and pushed ones that declare it) is that one
// file: one durable write instead of two, which halves the syncs of a first
// GET of a new combination. Any other document also has a .type file, written
// and synced before the data file. A reader uses the .type file when there is
// one (stores written before this rule have one for every document), else
// the declared mediaType.
package fsstore

import (
	"bytes"
	"context"
	_ "crypto/sha256" // register the digest algorithms with crypto
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envreg/envreg/internal/durable"
	"github.com/envreg/envreg/layerstore"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

const (
	// DefaultPollInterval is how often Snapshot checks GENERATION.
	DefaultPollInterval = 250 * time.Millisecond
	// staleTempAge is how old a temp file must be before Open removes it.
	staleTempAge = time.Hour
	// changeMarker is the content of LOCK while a change is in progress.
	changeMarker = "changing\n"
)

// Option configures Open.
type Option func(*Store)

// WithPollInterval sets how often Snapshot checks whether another process
// changed the catalog (default 250ms; 0 checks on every call).
func WithPollInterval(d time.Duration) Option {
	return func(s *Store) { s.poll = max(d, 0) }
}

// WithObservers reports reading or storing a document (op "document_get"
// or "document_put"), marking compositions ("mark") and each reload, for
// metrics.
func WithObservers(o catalog.Observers) Option {
	return func(s *Store) { s.obs = o }
}

// observed reports an operation that started at start to the observer.
func (s *Store) observed(op string, start time.Time, err error) { s.obs.Observed(op, start, err) }

// Store is a catalog.Store on files under one directory. It is safe for
// concurrent use, also by several processes on the same directory.
type Store struct {
	// RepositoryStore is catalog.Repositories over this store's files
	// (repos.go).
	*catalog.RepositoryStore

	dir  string
	poll time.Duration

	// mu serialises changes and reloads in this process. It is taken
	// before the file lock, never after.
	mu sync.Mutex
	// reposMu serialises repository changes in this process, before
	// repositories/_lock; it is never held with mu.
	reposMu sync.Mutex
	state   atomic.Pointer[state]
	closed  atomic.Bool
	// docs caches documents, checked against their files (doccache.go).
	docs docCache

	// hook, when set (tests only), is called at named points of a write;
	// an error aborts the write there as a crash would.
	hook func(point, path string) error

	obs catalog.Observers
}

var _ catalog.Store = (*Store)(nil)

// state is what Snapshot serves until the next check.
type state struct {
	snap    *catalog.Snapshot // last good snapshot; never nil
	err     error             // non-nil: the catalog on disk is unreadable
	checked time.Time         // when GENERATION was last read
}

var errClosed = fmt.Errorf("fsstore: store is closed: %w", catalog.ErrUnavailable)

// Open opens the catalog under dir, creating dir and its layout if missing.
// It removes stale temp files, completes a change interrupted by a crash
// (see the package doc), and loads the catalog; a release or stack file that
// does not parse or validate is an error naming the file.
func Open(dir string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	s := &Store{dir: abs, poll: DefaultPollInterval, docs: docCache{max: defaultDocCacheBytes}}
	for _, o := range opts {
		o(s)
	}
	s.RepositoryStore = catalog.NewRepositoryStore(repoDriver{s}, s.readable)
	for _, d := range []string{s.releasesDir(), s.stacksDir(), s.path("documents", "sha256"), s.path("documents", "sha512"), s.reposDir(), s.tmpDir()} {
		if err := durable.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("opening catalog: %w", err)
		}
	}
	if err := durable.RemoveStale(s.tmpDir(), time.Now().Add(-staleTempAge)); err != nil {
		return nil, fmt.Errorf("opening catalog %s: removing stale temp files: %w", abs, err)
	}

	lk, err := s.lock(context.Background(), syscall.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", abs, err)
	}
	defer lk.unlock()
	if lk.interrupted() {
		gen, err := s.readGeneration()
		if err == nil {
			err = s.writeGeneration(gen + 1)
		}
		if err == nil {
			err = lk.clear()
		}
		if err != nil {
			return nil, fmt.Errorf("opening catalog %s: completing an interrupted change: %w", abs, err)
		}
	}
	snap, err := s.load()
	if err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", abs, err)
	}
	s.state.Store(&state{snap: snap, checked: time.Now()})
	return s, nil
}

// Close marks the store closed. It holds no file descriptors between calls,
// so there is nothing else to release.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}
func (s *Store) releasesDir() string { return s.path("catalog", "releases") }
func (s *Store) stacksDir() string   { return s.path("catalog", "stacks") }
func (s *Store) tmpDir() string      { return s.path("tmp") }
func (s *Store) genFile() string     { return s.path("catalog", "GENERATION") }
func (s *Store) lockFile() string    { return s.path("catalog", "LOCK") }

// versionKey is the file name of a version: without build metadata.
func versionKey(v *semver.Version) string {
	bare, _ := v.SetMetadata("") // cannot fail for empty metadata
	return bare.String()
}

func (s *Store) releaseFile(name string, v *semver.Version) string {
	return filepath.Join(s.releasesDir(), name, versionKey(v)+".json")
}

func (s *Store) at(point, path string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(point, path)
}

// Snapshot returns the current snapshot; see the package doc for when it
// looks at the disk.
func (s *Store) Snapshot(ctx context.Context) (*catalog.Snapshot, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if st := s.state.Load(); time.Since(st.checked) < s.poll {
		return st.result()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	if time.Since(st.checked) < s.poll {
		return st.result() // another goroutine checked meanwhile
	}
	gen, err := s.readGeneration()
	if err != nil {
		s.state.Store(&state{snap: st.snap, err: err, checked: time.Now()})
		return nil, err
	}
	if st.err == nil && gen == st.snap.Generation {
		s.state.Store(&state{snap: st.snap, checked: time.Now()})
		return st.snap, nil
	}
	lk, err := s.lock(ctx, syscall.LOCK_SH)
	if err != nil {
		return nil, err // the caller gave up; not a fault of the catalog
	}
	defer lk.unlock()
	snap, err := s.load()
	if err != nil {
		s.state.Store(&state{snap: st.snap, err: err, checked: time.Now()})
		return nil, err
	}
	s.state.Store(&state{snap: snap, checked: time.Now()})
	return snap, nil
}

func (st *state) result() (*catalog.Snapshot, error) {
	if st.err != nil {
		return nil, st.err
	}
	return st.snap, nil
}

// load reads the whole catalog. The caller holds the file lock.
func (s *Store) load() (*catalog.Snapshot, error) {
	start := time.Now()
	snap, err := s.loadFiles()
	if err == nil {
		s.obs.Reloaded(start)
	}
	return snap, err
}

// loadFiles reads every release and stack.
func (s *Store) loadFiles() (*catalog.Snapshot, error) {
	gen, err := s.readGeneration()
	if err != nil {
		return nil, err
	}
	releases, err := s.loadReleases()
	if err != nil {
		return nil, err
	}
	stacks, err := s.loadStacks()
	if err != nil {
		return nil, err
	}
	return catalog.NewSnapshot(gen, releases, stacks), nil
}

func (s *Store) loadReleases() ([]catalog.Release, error) {
	names, err := os.ReadDir(s.releasesDir())
	if err != nil {
		return nil, fmt.Errorf("reading releases: %w", err)
	}
	var releases []catalog.Release
	for _, n := range names {
		if strings.HasPrefix(n.Name(), ".") || !n.IsDir() {
			continue
		}
		dir := filepath.Join(s.releasesDir(), n.Name())
		if err := catalog.ValidateName(n.Name()); err != nil {
			return nil, fmt.Errorf("release directory %s: %w", dir, err)
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading releases: %w", err)
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") || !strings.HasSuffix(f.Name(), ".json") {
				continue
			}
			r, _, err := readRelease(filepath.Join(dir, f.Name()))
			if err != nil {
				return nil, err
			}
			releases = append(releases, r)
		}
	}
	return releases, nil
}

// readRelease reads, validates and checks the placement of one release
// file. It also returns the bytes, for no-op detection.
func readRelease(path string) (catalog.Release, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return catalog.Release{}, nil, err
	}
	r, err := catalog.DecodeRelease(data)
	if err != nil {
		return catalog.Release{}, nil, fmt.Errorf("release file %s: %w", path, err)
	}
	name := filepath.Base(filepath.Dir(path))
	key := strings.TrimSuffix(filepath.Base(path), ".json")
	if r.Name != name || versionKey(r.Version) != key {
		return catalog.Release{}, nil, fmt.Errorf("release file %s: holds %s, which belongs in %s/%s.json",
			path, r.ID(), r.Name, versionKey(r.Version))
	}
	return r, data, nil
}

func encodeRelease(r catalog.Release) ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func (s *Store) loadStacks() ([]catalog.Stack, error) {
	files, err := os.ReadDir(s.stacksDir())
	if err != nil {
		return nil, fmt.Errorf("reading stacks: %w", err)
	}
	var stacks []catalog.Stack
	for _, f := range files {
		if strings.HasPrefix(f.Name(), ".") || !strings.HasSuffix(f.Name(), ".yaml") {
			continue
		}
		path := filepath.Join(s.stacksDir(), f.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading stacks: %w", err)
		}
		st, err := catalog.ParseStackYAML(data)
		if err != nil {
			return nil, fmt.Errorf("stack file %s: %w", path, err)
		}
		if want := strings.TrimSuffix(f.Name(), ".yaml"); st.Name != want {
			return nil, fmt.Errorf("stack file %s: holds stack %q, which belongs in %s.yaml", path, st.Name, st.Name)
		}
		stacks = append(stacks, st)
	}
	return stacks, nil
}

func (s *Store) readGeneration() (uint64, error) {
	data, err := os.ReadFile(s.genFile())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading generation: %w", err)
	}
	gen, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("generation file %s: %w", s.genFile(), err)
	}
	return gen, nil
}

func (s *Store) writeGeneration(gen uint64) error {
	if err := s.writeFile(s.genFile(), []byte(strconv.FormatUint(gen, 10)+"\n")); err != nil {
		return fmt.Errorf("writing generation: %w", err)
	}
	return nil
}

// A change is what Publish or PutStack computed under the lock: a file to
// write and how to patch the cached snapshot. A nil *change changes nothing.
type change struct {
	path    string
	data    []byte
	remove  bool             // delete path (a release being purged) instead of writing data
	release *catalog.Release // the release as a reload would read it
	stack   *catalog.Stack
}

// update runs prepare under both locks and, if it returns a change, commits
// it: marker, file, generation, marker cleared, snapshot refreshed.
func (s *Store) update(ctx context.Context, prepare func() (*change, error)) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lk, err := s.lock(ctx, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.unlock()

	c, err := prepare()
	if err != nil {
		return err
	}
	interrupted := lk.interrupted()
	if c == nil && !interrupted {
		return nil
	}
	gen, err := s.readGeneration()
	if err != nil {
		return err
	}
	if err := lk.mark(); err != nil {
		return err
	}
	if c != nil {
		if err := durable.MkdirAll(filepath.Dir(c.path)); err != nil {
			return err
		}
		if c.remove {
			if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := durable.SyncDir(filepath.Dir(c.path)); err != nil {
				return err
			}
		} else if err := s.writeFile(c.path, c.data); err != nil {
			return err
		}
		if err := s.at("file-written", c.path); err != nil {
			return err
		}
	}
	if err := s.writeGeneration(gen + 1); err != nil {
		return err
	}
	if err := lk.clear(); err != nil {
		return err
	}

	// Refresh the cache. Patching is exact when the cache holds generation
	// gen and no interrupted change left files it does not know; otherwise
	// reload (we hold the exclusive lock, so the disk is quiet).
	cur := s.state.Load()
	var snap *catalog.Snapshot
	if cur.err == nil && cur.snap.Generation == gen && !interrupted {
		snap = c.patch(cur.snap, gen+1)
	} else if snap, err = s.load(); err != nil {
		// The change is committed; the catalog has another problem, which
		// the next Snapshot reports.
		s.state.Store(&state{snap: cur.snap, err: err, checked: time.Now()})
		return nil
	}
	s.state.Store(&state{snap: snap, checked: time.Now()})
	return nil
}

func (c *change) patch(old *catalog.Snapshot, gen uint64) *catalog.Snapshot {
	releases := old.AllReleases()
	stacks := old.Stacks()
	if r := c.release; r != nil {
		i := slices.IndexFunc(releases, func(o catalog.Release) bool {
			return o.Name == r.Name && versionKey(o.Version) == versionKey(r.Version)
		})
		switch {
		case c.remove && i >= 0:
			releases = slices.Delete(releases, i, i+1)
		case c.remove:
		case i >= 0:
			releases[i] = *r
		default:
			releases = append(releases, *r)
		}
	}
	if st := c.stack; st != nil {
		i := slices.IndexFunc(stacks, func(o catalog.Stack) bool { return o.Name == st.Name })
		if i >= 0 {
			stacks[i] = *st
		} else {
			stacks = append(stacks, *st)
		}
	}
	return catalog.NewSnapshot(gen, releases, stacks)
}

// Publish validates r and merges it into the stored release of the same name
// and version, atomically; see catalog.Publisher. It does not modify r.
func (s *Store) Publish(ctx context.Context, r catalog.Release, opts catalog.PublishOptions) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Layers = slices.Clone(r.Layers) // Canonicalize sorts them
	r.Canonicalize()
	return s.update(ctx, func() (*change, error) {
		path := s.releaseFile(r.Name, r.Version)
		merged := r
		old, oldData, err := readRelease(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("publishing %s: %w", r.ID(), err)
		default:
			if merged, err = catalog.MergeWith(old, r, opts); err != nil {
				return nil, err
			}
		}
		data, err := encodeRelease(merged)
		if err != nil {
			return nil, fmt.Errorf("publishing %s: %w", r.ID(), err)
		}
		if oldData != nil {
			if cur, err := encodeRelease(old); err == nil && bytes.Equal(cur, data) {
				return nil, nil // nothing new
			}
		}
		// Serve what a reload would read, byte for byte.
		stored, err := catalog.DecodeRelease(data)
		if err != nil {
			return nil, fmt.Errorf("publishing %s: %w", r.ID(), err)
		}
		return &change{path: path, data: data, release: &stored}, nil
	})
}

// RemoveRelease deletes the release name v and moves the generation (see
// catalog.Purger).
func (s *Store) RemoveRelease(ctx context.Context, name string, v *semver.Version) error {
	if err := catalog.ValidateName(name); err != nil {
		return err
	}
	return s.update(ctx, func() (*change, error) {
		path := s.releaseFile(name, v)
		old, _, err := readRelease(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing %s %s: %w", name, v, catalog.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("removing %s %s: %w", name, v, err)
		}
		return &change{path: path, remove: true, release: &old}, nil
	})
}

// DocumentModTime reports when the document dgst was stored (for envreg
// gc's grace period), or an error wrapping catalog.ErrNotFound.
func (s *Store) DocumentModTime(ctx context.Context, dgst digest.Digest) (time.Time, error) {
	path, err := s.docPath(dgst)
	if err != nil {
		return time.Time{}, err
	}
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, err
	}
	return info.ModTime(), nil
}

// DeleteDocument deletes a stored document (see catalog.Purger): the data
// file first, which is what makes it exist, then its media type.
func (s *Store) DeleteDocument(ctx context.Context, dgst digest.Digest) error {
	path, err := s.docPath(dgst)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	s.docs.drop(dgst)
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("deleting document %s: %w", dgst, err)
	}
	if err := os.Remove(path + ".type"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting document %s: %w", dgst, err)
	}
	return durable.SyncDir(filepath.Dir(path))
}

// PutStack validates st and stores it, replacing the stack of that name.
func (s *Store) PutStack(ctx context.Context, st catalog.Stack) error {
	if err := st.Validate(); err != nil {
		return err
	}
	data, err := catalog.MarshalStackYAML(st)
	if err != nil {
		return fmt.Errorf("storing stack %s: %w", st.Name, err)
	}
	stored, err := catalog.ParseStackYAML(data) // what a reload reads
	if err != nil {
		return fmt.Errorf("storing stack %s: %w", st.Name, err)
	}
	path := filepath.Join(s.stacksDir(), st.Name+".yaml")
	return s.update(ctx, func() (*change, error) {
		cur, err := os.ReadFile(path)
		if err == nil && bytes.Equal(cur, data) {
			return nil, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("storing stack %s: %w", st.Name, err)
		}
		return &change{path: path, data: data, stack: &stored}, nil
	})
}

// docPath validates dgst and returns the file of its data.
func (s *Store) docPath(dgst digest.Digest) (string, error) {
	if s.closed.Load() {
		return "", errClosed
	}
	if err := layerstore.ValidateDigest(dgst); err != nil {
		return "", fmt.Errorf("document: %w", err)
	}
	return s.path("documents", string(dgst.Algorithm()), dgst.Encoded()), nil
}

// PutDocument stores d after checking that d.Digest is the digest of d.Data.
// Storing a document that exists with the same media type does nothing; with
// another media type it is an error wrapping catalog.ErrExists.
func (s *Store) PutDocument(ctx context.Context, d catalog.Document) (err error) {
	defer func(start time.Time) { s.observed("document_put", start, err) }(time.Now())
	return s.putDocument(ctx, d)
}

func (s *Store) putDocument(ctx context.Context, d catalog.Document) error {
	path, err := s.docPath(d.Digest)
	if err == nil {
		err = catalog.CheckDocument(ctx, d)
	}
	if err != nil {
		return err
	}
	switch cur, err := s.Document(ctx, d.Digest); {
	case err == nil && cur.MediaType == d.MediaType:
		return nil
	case err == nil:
		return fmt.Errorf("storing document %s as %s: %w as %s", d.Digest, d.MediaType, catalog.ErrExists, cur.MediaType)
	case !errors.Is(err, catalog.ErrNotFound):
		return err
	}
	// The data file is what makes the document exist, so it goes last.
	if declaredMediaType(d.Data) == d.MediaType {
		// A stale .type (left by a delete that crashed halfway) would take
		// precedence over the declaration; it cannot disagree for the same
		// bytes unless written by hand, but do not let it.
		if err := os.Remove(path + ".type"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("storing document %s: %w", d.Digest, err)
		}
	} else if err := s.writeFile(path+".type", []byte(d.MediaType)); err != nil {
		return fmt.Errorf("storing document %s: %w", d.Digest, err)
	}
	if err := s.writeFile(path, d.Data); err != nil {
		return fmt.Errorf("storing document %s: %w", d.Digest, err)
	}
	// A stored document is usually fetched soon after (a new combination's
	// manifests, by digest, right after its index).
	if fi, err := os.Stat(path); err == nil {
		if id, ok := idOf(fi); ok {
			s.docs.put(d, id)
		}
	}
	return nil
}

// declaredMediaType is the top-level "mediaType" of a JSON object, or "".
func declaredMediaType(data []byte) string {
	if len(data) == 0 || data[0] != '{' {
		return ""
	}
	var v struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.MediaType
}

// Document returns the document stored under dgst, or an error wrapping
// catalog.ErrNotFound. Content that no longer matches its digest (a disk
// fault) is an error. The returned Data may be shared with other callers
// and must not be modified.
func (s *Store) Document(ctx context.Context, dgst digest.Digest) (doc catalog.Document, err error) {
	defer func(start time.Time) { s.observed("document_get", start, err) }(time.Now())
	return s.document(ctx, dgst)
}

func (s *Store) document(ctx context.Context, dgst digest.Digest) (catalog.Document, error) {
	path, err := s.docPath(dgst)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return catalog.Document{}, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		s.docs.drop(dgst)
		return catalog.Document{}, fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.Document{}, fmt.Errorf("reading document %s: %w", dgst, err)
	}
	if id, ok := idOf(fi); ok {
		if doc, ok := s.docs.get(dgst, id); ok {
			return doc, nil
		}
	}
	return s.readDocument(path, dgst)
}

// readDocument reads, verifies and caches the document in path.
func (s *Store) readDocument(path string, dgst digest.Digest) (catalog.Document, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return catalog.Document{}, fmt.Errorf("document %s: %w", dgst, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.Document{}, fmt.Errorf("reading document %s: %w", dgst, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return catalog.Document{}, fmt.Errorf("reading document %s: %w", dgst, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return catalog.Document{}, fmt.Errorf("reading document %s: %w", dgst, err)
	}
	if got := dgst.Algorithm().FromBytes(data); got != dgst {
		return catalog.Document{}, fmt.Errorf("document %s is corrupt: content has digest %s", dgst, got)
	}
	mt, err := os.ReadFile(path + ".type")
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		if mt = []byte(declaredMediaType(data)); len(mt) == 0 {
			return catalog.Document{}, fmt.Errorf("reading document %s: no .type file and no declared mediaType", dgst)
		}
	default:
		return catalog.Document{}, fmt.Errorf("reading document %s: media type: %w", dgst, err)
	}
	doc := catalog.Document{MediaType: string(mt), Digest: dgst, Data: data}
	if id, ok := idOf(fi); ok {
		s.docs.put(doc, id)
	}
	return doc, nil
}

// WalkDocuments calls fn with every stored document (verified against its
// digest), by algorithm then digest. It is how documents are enumerated for
// migration and integrity tooling.
func (s *Store) WalkDocuments(ctx context.Context, fn func(catalog.Document) error) error {
	for _, alg := range layerstore.Algorithms {
		entries, err := os.ReadDir(s.path("documents", string(alg)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".type") || !e.Type().IsRegular() {
				continue
			}
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if d.Validate() != nil {
				continue // not a document (a stray file)
			}
			doc, err := s.Document(ctx, d)
			if err != nil {
				return err
			}
			if err := fn(doc); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile replaces path with data atomically and durably: temp file in
// DIR/tmp, write, fsync, rename, fsync the directory.
func (s *Store) writeFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(s.tmpDir(), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := s.at("temp-written", tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

// fileLock is a held flock(2) on catalog/LOCK or repositories/_lock. Each
// holder opens the file itself: flock belongs to the open file description,
// so two Stores in one process exclude each other like two processes do.
type fileLock struct{ f *os.File }

// lock takes the catalog lock (LOCK_EX or LOCK_SH), polling so that ctx can
// end the wait.
func (s *Store) lock(ctx context.Context, how int) (*fileLock, error) {
	return lockFile(ctx, s.lockFile(), "catalog", how)
}

// lockFile takes a flock(2) on path (what names it in errors), polling so
// that ctx can end the wait.
func lockFile(ctx context.Context, path, what string, how int) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", what, err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", what, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for the %s lock: %w", what, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// unlock releases the lock (closing the descriptor releases the flock).
func (l *fileLock) unlock() { l.f.Close() }

// interrupted reports whether a change left its marker: it crashed (or
// failed) after it may have written a file and before it bumped the
// generation. Only meaningful under the exclusive lock.
func (l *fileLock) interrupted() bool {
	info, err := l.f.Stat()
	return err != nil || info.Size() > 0
}

// mark records that a change is in progress, durably, before its first
// write.
func (l *fileLock) mark() error {
	if _, err := l.f.WriteAt([]byte(changeMarker), 0); err != nil {
		return fmt.Errorf("marking change: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("marking change: %w", err)
	}
	return nil
}

// clear removes the marker. It is not synced: if a crash loses the clear,
// the next exclusive holder bumps the generation once more, which is
// harmless.
func (l *fileLock) clear() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("clearing change marker: %w", err)
	}
	return nil
}
