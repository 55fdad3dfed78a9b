package main

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/test/fixtures"
)

// runPublish publishes, through the real CLI (as test/main_test.go does):
//
//   - every package of fixtures.All, for both fixture platforms;
//   - "bulk" 1.0.0: one incompressible file of -bulk-mb MB (deterministic
//     ChaCha8 stream), so that blob GETs measure bytes moved, not requests;
//   - -synthetic generic packages p0..pN-1 (fixtures.Extra), so that each
//     tag php-8.2_pK is a combination the registry has never composed.
func runPublish(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	bin := fs.String("envreg", "", "envreg binary")
	data := fs.String("data", "", "envreg data directory")
	work := fs.String("work", "", "directory for the fixture trees (emptied first)")
	bulkMB := fs.Int("bulk-mb", 50, "size of the bulk package's file, in MB (10^6 bytes)")
	synthetic := fs.Int("synthetic", 50, "number of synthetic packages p0..pN-1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *data == "" || *work == "" {
		return fmt.Errorf("-envreg, -data and -work are required")
	}
	if err := os.RemoveAll(*work); err != nil {
		return err
	}
	pkgs := fixtures.All()
	for i := range *synthetic {
		pkgs = append(pkgs, fixtures.Extra("p"+strconv.Itoa(i), "1.0.0"))
	}
	for _, p := range pkgs {
		for _, plat := range fixtures.Platforms() {
			root := filepath.Join(*work, p.Name, p.Version, plat.OS+"-"+plat.Architecture)
			if err := fixtures.WriteTree(root, p, plat); err != nil {
				return err
			}
			if err := publish(*bin, *data, p, plat, root); err != nil {
				return err
			}
		}
	}
	bulk := fixtures.Package{Name: "bulk", Version: "1.0.0", Path: []string{"/opt/bulk/bin"}, Requires: []string{"base *"}}
	root := filepath.Join(*work, "bulk")
	if err := writeBulk(root, int64(*bulkMB)*1_000_000); err != nil {
		return err
	}
	for _, plat := range fixtures.Platforms() {
		if err := publish(*bin, *data, bulk, plat, root); err != nil {
			return err
		}
	}
	return nil
}

// publish runs "envreg publish --from-dir" for one package and platform.
func publish(bin, data string, p fixtures.Package, plat catalog.Platform, root string) error {
	args := []string{"publish", "--data", data, "--name", p.Name, "--version", p.Version,
		"--platform", plat.String(), "--from-dir", root}
	for _, path := range p.Path {
		args = append(args, "--path", path)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		args = append(args, "--env", k+"="+p.Env[k])
	}
	for _, r := range p.Requires {
		args = append(args, "--requires", r)
	}
	cmd := exec.Command(bin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("envreg %v: %v\n%s", args, err, out)
	}
	return nil
}

// writeBulk writes root/opt/bulk/data.bin: size bytes of a fixed-seed
// ChaCha8 stream, which gzip cannot shrink (the layer is about size bytes).
func writeBulk(root string, size int64) error {
	dir := filepath.Join(root, "opt", "bulk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'e', 'n', 'v', 'r', 'e', 'g'})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}
