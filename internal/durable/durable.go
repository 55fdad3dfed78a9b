// Package durable holds the file-system steps both embedded stores use to
// make writes survive a crash: creating directories durably, syncing a
// directory after a rename, and cleaning temp files left by a crash.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MkdirAll creates dir and missing parents, syncing each parent so that the
// new entries survive a crash.
func MkdirAll(dir string) error {
	if info, err := os.Stat(dir); err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return SyncDir(parent)
}

// SyncDir makes renames and removals in dir durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// RemoveStale removes the regular files in dir last modified before
// before: temp files of writes that a crash interrupted. Files that vanish
// meanwhile (committed or removed by another process) are fine.
func RemoveStale(dir string, before time.Time) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() && info.ModTime().Before(before) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
