package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/envreg/envreg/packages"
)

// seeder publishes the recipes of `envreg serve --seed` through the
// publishing job's engine (packages.Syncer, as `envreg sync`): in the
// background while the registry serves, newest versions and linux/amd64
// first, or before listening with --seed-wait. A tag whose packages are
// not published yet answers 404 with the usual explanation meanwhile.
// SIGTERM stops it between versions: a version is recorded whole or not
// at all (the catalog's atomic publish).
type seeder struct {
	syncer  *packages.Syncer
	recipes []packages.Recipe
	log     *slog.Logger
	dir     string
}

// newSeeder loads the recipes of dir ("": no seeding) and, with wait,
// publishes them before returning.
func newSeeder(ctx context.Context, env *cliEnv, b *backends, store *storage, log *slog.Logger, dir, cacheDir string, wait bool) (*seeder, error) {
	s := &seeder{log: log, dir: dir}
	if dir == "" {
		return s, nil
	}
	recipes, err := loadRecipeSources([]string{dir})
	if err != nil {
		return nil, fmt.Errorf("--seed: %w", err)
	}
	s.recipes = recipes
	s.syncer = &packages.Syncer{Catalog: b.catalog, What: "seeding", Log: log, FirstPlatform: "linux/amd64",
		NewPublisher: func() (*packages.Publisher, error) {
			return &packages.Publisher{Blobs: b.blobs, Catalog: b.catalog, Log: log, TempDir: store.tempDir(),
				CacheDir: cacheDir, Progress: terminalProgress(env.stderr), Uncompressed: store.uncompressed, Zstd: store.zstd}, nil
		}}
	if wait {
		err := s.run(ctx)
		s.syncer = nil // done: nothing to start
		if err != nil {
			return nil, fmt.Errorf("--seed %s: %w", dir, err)
		}
	}
	return s, nil
}

// run publishes what the catalog lacks and logs what it did; it fails
// when a version failed.
func (s *seeder) run(ctx context.Context) error {
	rep, err := s.syncer.Round(ctx, s.recipes)
	if err != nil {
		return err
	}
	s.log.Info("seeded", "recipes", len(s.recipes), "published", len(rep.Published), "present", rep.Present,
		"failed", len(rep.Failed), "stopped", rep.Stopped, "took", rep.Took.Round(time.Millisecond))
	if len(rep.Failed) > 0 {
		return fmt.Errorf("%d of %d steps failed, the first: %s: %w", len(rep.Failed), rep.Steps, rep.Failed[0].Step, rep.Failed[0].Err)
	}
	return nil
}

// start seeds in the background until done or ctx ends; the returned
// function waits for it to stop.
func (s *seeder) start(ctx context.Context) (wait func()) {
	if s.syncer == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.run(ctx); err != nil {
			s.log.Error("seeding failed; the registry serves what is published", "seed", s.dir, "err", err)
		}
	}()
	return func() { <-done }
}

// status is what /readyz says about the seeding ("" when none runs).
func (s *seeder) status() string {
	if s.syncer == nil {
		return ""
	}
	return s.syncer.Status()
}
