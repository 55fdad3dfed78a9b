package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer"
)

func runPublish(ctx context.Context, env *cliEnv, args []string) (err error) {
	fs := newFlags(env, "publish")
	store := storageFlags(fs)
	var in packages.Input
	var platform string
	var paths, envs, requires, conflicts, labels listFlag
	fs.StringVar(&in.Name, "name", "", "package name (with --from-dir or --from-tar)")
	fs.StringVar(&in.Version, "version", "", "package version, strict semver MAJOR.MINOR.PATCH")
	fs.StringVar(&platform, "platform", "linux/amd64", "platform of the layer: os/arch[/variant]")
	fs.StringVar(&in.Dir, "from-dir", "", "build the layer from this root filesystem directory")
	fs.StringVar(&in.Tar, "from-tar", "", "build the layer from this tar file (plain or gzip)")
	fs.Var(&paths, "path", "directory to prepend to PATH, e.g. /usr/local/php/bin (repeatable)")
	fs.Var(&envs, "env", "environment variable KEY=VALUE the package sets (repeatable)")
	fs.Var(&requires, "requires", "requirement on another package, e.g. 'base ^12' (repeatable)")
	fs.Var(&conflicts, "conflicts", "package versions this one cannot be combined with, e.g. 'php <8' (repeatable)")
	fs.Var(&labels, "label", "label KEY=VALUE recorded with the package version (repeatable)")
	var policy layer.Policy
	fs.BoolVar(&policy.AllowSetuid, "allow-setuid", false, "keep setuid/setgid files of --from-dir/--from-tar content (refused by default)")
	fs.Int64Var(&policy.MaxTotalSize, "max-layer-size", 0, "refuse content over this many uncompressed bytes (0: 16 GiB)")
	fs.Int64Var(&policy.MaxEntrySize, "max-file-size", 0, "refuse a file over this many bytes (0: 4 GiB)")
	fs.IntVar(&policy.MaxEntries, "max-entries", 0, "refuse content with more entries (0: 1048576)")
	fs.BoolVar(&in.Force, "force", false, "replace an existing layer or metadata of the same name, version and platform")
	cacheDir := fs.String("cache-dir", "", "download cache for Debian packages (default $XDG_CACHE_HOME/envreg or ~/.cache/envreg)")
	var debianSources listFlag
	fs.Var(&debianSources, "debian-source", "apt source line for Debian recipes, e.g. 'deb http://mirror/debian bookworm main' (repeatable; default: this machine's apt sources)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info (one line per stored layer), warn or error")
	registryURL := fs.String("registry", "", "publish to this envreg over the network instead of a local store: host[:port], http://host:port or https://host; each version is pushed to packages/<name>:<version>")
	registryUser := fs.String("registry-user", "", "user for --registry (password from ENVREG_REGISTRY_PASSWORD or --registry-password-file; default: the Docker config of docker login)")
	registryPasswordFile := fs.String("registry-password-file", "", "file holding the password of --registry-user")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(env.stderr, *logLevel, "text")
	if err != nil {
		return err
	}

	fromFlags := in.Dir != "" || in.Tar != ""
	switch {
	case fromFlags && fs.NArg() > 0:
		return usagef("give either --from-dir/--from-tar or recipe arguments, not both")
	case !fromFlags && fs.NArg() == 0:
		return usagef("nothing to publish: give --from-dir or --from-tar with --name and --version, or recipe files/directories")
	case fromFlags && (in.Name == "" || in.Version == ""):
		return usagef("--name and --version are required with --from-dir/--from-tar")
	}

	var target *remoteTarget
	if *registryURL != "" {
		if store.catalog != "" || store.blobs != "" {
			return usagef("--registry publishes over the network; it does not take --catalog or --blobs")
		}
		if in.Force {
			return usagef("--force is not available with --registry (a registry never replaces a pushed version)")
		}
		if target, err = parseRemote(*registryURL, *registryUser, *registryPasswordFile); err != nil {
			return err
		}
		// A private staging store: layers are built there, then pushed.
		staging, err := os.MkdirTemp("", "envreg-publish-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(staging)
		store.data = staging
	}
	b, err := store.open(ctx, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if target != nil {
		defer func() {
			if err == nil {
				err = target.pushReleases(ctx, b.catalog, b.blobs, log, env.stdout)
			}
		}()
	}
	pub := &packages.Publisher{Blobs: b.blobs, Catalog: b.catalog, Log: log, TempDir: store.tempDir(), Policy: policy,
		CacheDir: *cacheDir, DebianSources: debianSources, Progress: terminalProgress(env.stderr)}

	if fromFlags {
		p, err := catalog.ParsePlatform(platform)
		if err != nil {
			return usagef("%v", err)
		}
		in.Platform = p
		in.Path = paths
		in.Requires = requires
		in.Conflicts = conflicts
		if in.Env, err = keyValues("--env", envs); err != nil {
			return err
		}
		if in.Labels, err = keyValues("--label", labels); err != nil {
			return err
		}
		rel, err := pub.Publish(ctx, in)
		if err != nil {
			return err
		}
		l, _ := rel.Layer(in.Platform)
		fmt.Fprintf(env.stdout, "published %s for %s: %s (%d bytes)\n", rel.ID(), in.Platform, l.Digest, l.Size)
		return nil
	}

	for _, arg := range fs.Args() {
		recipes, err := loadRecipeArg(arg)
		if err != nil {
			return err
		}
		for _, rc := range recipes {
			rels, err := pub.PublishRecipe(ctx, rc, "", in.Force)
			if err != nil {
				return err
			}
			for _, rel := range rels {
				fmt.Fprintf(env.stdout, "published %s for %s\n", rel.ID(), platformList(rel))
			}
		}
	}
	return nil
}

// loadRecipeArg loads one recipe file or every recipe under a directory.
func loadRecipeArg(arg string) ([]packages.Recipe, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		rc, err := packages.LoadRecipeFile(arg)
		if err != nil {
			return nil, err
		}
		return []packages.Recipe{rc}, nil
	}
	return packages.LoadRecipeDir(arg)
}

func platformList(r catalog.Release) string {
	var ps []string
	for _, p := range r.Platforms() {
		ps = append(ps, p.String())
	}
	return strings.Join(ps, ", ")
}

// keyValues parses repeated KEY=VALUE flags.
func keyValues(flagName string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want KEY=VALUE", flagName, kv)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("%s: %s given twice", flagName, k)
		}
		m[k] = v
	}
	return m, nil
}
