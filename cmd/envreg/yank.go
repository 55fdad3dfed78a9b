package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// runYank marks a package version yanked (or, with --undo, not yanked): a
// yanked version is never chosen by a new resolution, tag listings leave
// it out, and environments already pinned by digest stay pullable, since
// their manifests and the version's layers stay stored.
func runYank(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "yank")
	store := storageFlags(fs)
	undo := fs.Bool("undo", false, "make a yanked version resolvable again")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	name, v, err := nameVersion(fs, "yank")
	if err != nil {
		return err
	}
	b, err := store.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer b.Close()
	rel, err := catalog.SetYanked(ctx, b.catalog, name, v, !*undo)
	if err != nil {
		return err
	}
	state := "yanked"
	if !rel.Yanked {
		state = "resolvable again"
	}
	fmt.Fprintf(env.stdout, "%s is %s\n", rel.ID(), state)
	return nil
}

// nameVersion reads the NAME VERSION arguments of yank and purge.
func nameVersion(fs *flag.FlagSet, command string) (string, *semver.Version, error) {
	if fs.NArg() != 2 {
		return "", nil, usagef("want NAME VERSION, e.g. envreg %s php 8.2.36", command)
	}
	v, err := semver.StrictNewVersion(fs.Arg(1))
	if err != nil {
		return "", nil, usagef("version %q: want MAJOR.MINOR.PATCH", fs.Arg(1))
	}
	return fs.Arg(0), v, nil
}
