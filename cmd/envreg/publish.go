package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages"
	"github.com/envreg/envreg/packages/layer"
)

// publishOptions are the flags of envreg publish.
type publishOptions struct {
	store                                        *storage
	in                                           packages.Input
	platform                                     string
	paths, envs, requires, conflicts             listFlag
	labels, debianSources                        listFlag
	policy                                       layer.Policy
	cacheDir, logLevel                           string
	registry, registryUser, registryPasswordFile string
}

func publishFlags(fs *flag.FlagSet) *publishOptions {
	o := &publishOptions{store: storageFlags(fs)}
	o.store.layerFormFlags(fs)
	fs.StringVar(&o.in.Name, "name", "", "package name (with --from-dir or --from-tar)")
	fs.StringVar(&o.in.Version, "version", "", "package version, strict semver MAJOR.MINOR.PATCH")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "platform of the layer: os/arch[/variant]")
	fs.StringVar(&o.in.Dir, "from-dir", "", "build the layer from this root filesystem directory")
	fs.StringVar(&o.in.Tar, "from-tar", "", "build the layer from this tar file (plain or gzip)")
	fs.Var(&o.paths, "path", "directory to prepend to PATH, e.g. /usr/local/php/bin (repeatable)")
	fs.Var(&o.envs, "env", "environment variable KEY=VALUE the package sets (repeatable)")
	fs.Var(&o.requires, "requires", "requirement on another package, e.g. 'base ^12' (repeatable)")
	fs.Var(&o.conflicts, "conflicts", "package versions this one cannot be combined with, e.g. 'php <8' (repeatable)")
	fs.Var(&o.labels, "label", "label KEY=VALUE recorded with the package version (repeatable)")
	fs.BoolVar(&o.policy.AllowSetuid, "allow-setuid", false, "keep setuid/setgid files of --from-dir/--from-tar content (refused by default)")
	fs.Int64Var(&o.policy.MaxTotalSize, "max-layer-size", 0, "refuse content over this many uncompressed bytes (0: 16 GiB)")
	fs.Int64Var(&o.policy.MaxEntrySize, "max-file-size", 0, "refuse a file over this many bytes (0: 4 GiB)")
	fs.IntVar(&o.policy.MaxEntries, "max-entries", 0, "refuse content with more entries (0: 1048576)")
	fs.BoolVar(&o.in.Force, "force", false, "replace an existing layer or metadata of the same name, version and platform")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "download cache for Debian packages (default $XDG_CACHE_HOME/envreg or ~/.cache/envreg)")
	fs.Var(&o.debianSources, "debian-source", "apt source line for Debian recipes, e.g. 'deb http://mirror/debian bookworm main' (repeatable; default: this machine's apt sources)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info (one line per stored layer), warn or error")
	fs.StringVar(&o.registry, "registry", "", "publish to this envreg over the network instead of a local store: host[:port], http://host:port or https://host; each version is pushed to packages/<name>:<version>")
	fs.StringVar(&o.registryUser, "registry-user", "", "user for --registry (password from ENVREG_REGISTRY_PASSWORD or --registry-password-file; default: the Docker config of docker login)")
	fs.StringVar(&o.registryPasswordFile, "registry-password-file", "", "file holding the password of --registry-user")
	return o
}

func runPublish(ctx context.Context, env *cliEnv, args []string) (err error) {
	fs := newFlags(env, "publish")
	o := publishFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(env.stderr, o.logLevel, "text")
	if err != nil {
		return err
	}
	fromFlags := o.in.Dir != "" || o.in.Tar != ""
	switch {
	case fromFlags && fs.NArg() > 0:
		return usagef("give either --from-dir/--from-tar or recipe arguments, not both")
	case !fromFlags && fs.NArg() == 0:
		return usagef("nothing to publish: give --from-dir or --from-tar with --name and --version, or recipe files/directories")
	case fromFlags && (o.in.Name == "" || o.in.Version == ""):
		return usagef("--name and --version are required with --from-dir/--from-tar")
	}
	target, cleanup, err := o.remoteTarget()
	if err != nil {
		return err
	}
	defer cleanup()
	b, err := o.store.open(ctx, log)
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
	pub := &packages.Publisher{Blobs: b.blobs, Catalog: b.catalog, Log: log, TempDir: o.store.tempDir(), Policy: o.policy, Uncompressed: o.store.uncompressed, Zstd: o.store.zstd,
		CacheDir: o.cacheDir, DebianSources: o.debianSources, Progress: terminalProgress(env.stderr)}
	if fromFlags {
		return o.publishInput(ctx, env, pub)
	}
	return publishRecipes(ctx, env, pub, fs.Args(), o.in.Force)
}

// remoteTarget is the registry of --registry, nil without it. Layers are
// then built in a private staging store, which cleanup removes.
func (o *publishOptions) remoteTarget() (target *remoteTarget, cleanup func(), err error) {
	cleanup = func() {}
	if o.registry == "" {
		return nil, cleanup, nil
	}
	if o.store.catalog != "" || o.store.blobs != "" {
		return nil, cleanup, usagef("--registry publishes over the network; it does not take --catalog or --blobs")
	}
	if o.in.Force {
		return nil, cleanup, usagef("--force is not available with --registry (a registry never replaces a pushed version)")
	}
	if target, err = parseRemote(o.registry, o.registryUser, o.registryPasswordFile); err != nil {
		return nil, cleanup, err
	}
	staging, err := os.MkdirTemp("", "envreg-publish-")
	if err != nil {
		return nil, cleanup, err
	}
	o.store.data = staging
	return target, func() { os.RemoveAll(staging) }, nil
}

// publishInput publishes the layer of --from-dir or --from-tar.
func (o *publishOptions) publishInput(ctx context.Context, env *cliEnv, pub *packages.Publisher) error {
	in := o.in
	p, err := catalog.ParsePlatform(o.platform)
	if err != nil {
		return usagef("%v", err)
	}
	in.Platform = p
	in.Path = o.paths
	in.Requires = o.requires
	in.Conflicts = o.conflicts
	if in.Env, err = keyValues("--env", o.envs); err != nil {
		return err
	}
	if in.Labels, err = keyValues("--label", o.labels); err != nil {
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

// publishRecipes publishes the recipe files and directories of args.
func publishRecipes(ctx context.Context, env *cliEnv, pub *packages.Publisher, args []string, force bool) error {
	for _, arg := range args {
		recipes, err := loadRecipeArg(arg)
		if err != nil {
			return err
		}
		for _, ranged := range recipes {
			// A recipe with source.debian.versions stands for the newest
			// versions in its range that the archive has.
			versions, err := pub.ExpandRecipe(ctx, ranged)
			if err != nil {
				return err
			}
			for _, rc := range versions {
				rels, err := pub.PublishRecipe(ctx, rc, "", force)
				if err != nil {
					return err
				}
				for _, rel := range rels {
					fmt.Fprintf(env.stdout, "published %s for %s\n", rel.ID(), platformList(rel))
				}
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
