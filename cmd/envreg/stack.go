package main

import (
	"context"
	"fmt"
	"os"

	"github.com/envreg/envreg/catalog"
)

func runStack(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "stack")
	store := storageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := store.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer b.Close()
	for _, path := range fs.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		st, err := catalog.ParseStackYAML(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := b.catalog.PutStack(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "stack %s saved\n", st.Name)
	}
	if fs.NArg() > 0 {
		return nil
	}
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	for i, st := range snap.Stacks() {
		y, err := catalog.MarshalStackYAML(st)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(env.stdout, "---")
		}
		env.stdout.Write(y)
	}
	return nil
}
