package fsstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/internal/durable"
)

// Composition marks (catalog.Compositions) are empty files:
//
//	DIR/composed/<stack>/<alg>-<hex>        the mark; its mtime is when it was last served
//	DIR/composed/<stack>/<alg>-<hex>.pin    present when the mark is pinned
//
// Creating a batch of marks costs one directory sync, whatever its size
// (empty files have no data to sync), and refreshing one is a utimes(2)
// without a sync: Served is coarse, and a refresh lost in a crash only
// makes a composition look older to gc.

const pinSuffix = ".pin"

func (s *Store) composedDir(stack string) string { return s.path("composed", stack) }

// MarkComposed records stack's marks on ds (see catalog.Compositions).
func (s *Store) MarkComposed(ctx context.Context, stack string, served time.Time, pinned bool, ds ...digest.Digest) error {
	if s.closed.Load() {
		return errClosed
	}
	for _, d := range ds {
		if err := catalog.ValidateMark(stack, d); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.composedDir(stack)
	if err := durable.MkdirAll(dir); err != nil {
		return fmt.Errorf("marking compositions of %s: %w", stack, err)
	}
	created := false
	for _, d := range ds {
		name := filepath.Join(dir, digestName(d))
		c, err := touchOrCreate(name, served)
		if err != nil {
			return fmt.Errorf("marking %s as composed by %s: %w", d, stack, err)
		}
		created = created || c
		if pinned {
			c, err := touchOrCreate(name+pinSuffix, served)
			if err != nil {
				return fmt.Errorf("pinning %s in %s: %w", d, stack, err)
			}
			created = created || c
		}
	}
	if created {
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("marking compositions of %s: %w", stack, err)
		}
	}
	return nil
}

// touchOrCreate creates the empty file name with mtime t, or moves the
// mtime of an existing one forward to t. It reports whether it created it.
func touchOrCreate(name string, t time.Time) (bool, error) {
	info, err := os.Stat(name)
	if err == nil {
		if info.ModTime().Before(t) {
			return false, os.Chtimes(name, t, t)
		}
		return false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return touchOrCreate(name, t) // made meanwhile by another process
	}
	if err != nil {
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	return true, os.Chtimes(name, t, t)
}

// Composed returns stack's mark on d (see catalog.Compositions).
func (s *Store) Composed(ctx context.Context, stack string, d digest.Digest) (catalog.ComposedMark, error) {
	if s.closed.Load() {
		return catalog.ComposedMark{}, errClosed
	}
	if err := catalog.ValidateMark(stack, d); err != nil {
		return catalog.ComposedMark{}, err
	}
	name := filepath.Join(s.composedDir(stack), digestName(d))
	info, err := os.Stat(name)
	if errors.Is(err, os.ErrNotExist) {
		return catalog.ComposedMark{}, fmt.Errorf("%s composed by %s: %w", d, stack, catalog.ErrNotFound)
	}
	if err != nil {
		return catalog.ComposedMark{}, fmt.Errorf("reading the mark of %s in %s: %w", d, stack, err)
	}
	m := catalog.ComposedMark{Digest: d, Served: info.ModTime()}
	if _, err := os.Stat(name + pinSuffix); err == nil {
		m.Pinned = true
	}
	return m, nil
}

// WalkComposed calls fn with every mark (see catalog.ComposedWalker).
func (s *Store) WalkComposed(ctx context.Context, fn func(stack string, m catalog.ComposedMark) error) error {
	stacks, err := os.ReadDir(s.path("composed"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, st := range stacks {
		if !st.IsDir() || catalog.ValidateName(st.Name()) != nil {
			continue
		}
		entries, err := os.ReadDir(s.composedDir(st.Name()))
		if err != nil {
			return err
		}
		pins := map[string]bool{}
		for _, e := range entries {
			if name, ok := strings.CutSuffix(e.Name(), pinSuffix); ok {
				pins[name] = true
			}
		}
		for _, e := range entries {
			d, ok := parseDigestName(e.Name())
			if !ok {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // unmarked meanwhile
			}
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(st.Name(), catalog.ComposedMark{Digest: d, Served: info.ModTime(), Pinned: pins[e.Name()]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unmark removes an unpinned mark last served before before (see
// catalog.ComposedWalker). A refresh between its check and the removal
// (microseconds) is lost; gc only unmarks what was not served for its
// whole retention period.
func (s *Store) Unmark(ctx context.Context, stack string, d digest.Digest, before time.Time) (bool, error) {
	m, err := s.Composed(ctx, stack, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	if err != nil || m.Pinned || !m.Served.Before(before) {
		return false, err
	}
	dir := s.composedDir(stack)
	if err := os.Remove(filepath.Join(dir, digestName(d))); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, durable.SyncDir(dir)
}

// RemoveMarks removes stack's marks on ds, pinned or not (see
// catalog.ComposedWalker). The pin goes first: a crash in between leaves
// an unpinned mark, which gc collects, never a pin without its mark that a
// later mark would inherit.
func (s *Store) RemoveMarks(ctx context.Context, stack string, ds ...digest.Digest) error {
	if s.closed.Load() {
		return errClosed
	}
	for _, d := range ds {
		if err := catalog.ValidateMark(stack, d); err != nil {
			return err
		}
	}
	dir := s.composedDir(stack)
	removed := false
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := filepath.Join(dir, digestName(d))
		for _, f := range []string{name + pinSuffix, name} {
			switch err := os.Remove(f); {
			case err == nil:
				removed = true
			case !errors.Is(err, os.ErrNotExist):
				return fmt.Errorf("removing the mark of %s in %s: %w", d, stack, err)
			}
		}
	}
	if removed {
		return durable.SyncDir(dir)
	}
	return nil
}

func (s *Store) adoptedFile() string { return s.path("composed", "ADOPTED") }

// LegacyAdopted reports whether SetLegacyAdopted ran (catalog.LegacyAdoption).
func (s *Store) LegacyAdopted(ctx context.Context) (bool, error) {
	_, err := os.Stat(s.adoptedFile())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// SetLegacyAdopted records that the legacy compositions were adopted.
func (s *Store) SetLegacyAdopted(ctx context.Context) error {
	if err := durable.MkdirAll(s.path("composed")); err != nil {
		return err
	}
	if _, err := touchOrCreate(s.adoptedFile(), time.Now()); err != nil {
		return err
	}
	return durable.SyncDir(s.path("composed"))
}
