package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // after "envreg NAME "
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries the process's outputs to subcommands.
type cliEnv struct {
	stdout, stderr io.Writer
}

// exitError carries a specific exit code (e.g. 1 for "unsatisfiable").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func commands() []command {
	return []command{
		{"serve", "run the registry", "[flags]", runServe},
		{"publish", "publish a package version (recipe, directory or tar)", "[flags] [RECIPE.yaml|DIR ...]", runPublish},
		{"sync", "publish every recipe version the catalog lacks, once or --every DURATION as a long-lived job", "[flags] [bundled|RECIPE.yaml|DIR ...]   (default: bundled)", runSync},
		{"resolve", "resolve requirements or a tag to exact versions and a pinned digest", "[flags] (--tag TAG | NAME[=CONSTRAINT] ...)", runResolve},
		{"stack", "add or replace a stack from a YAML file, or print the stacks", "[flags] [STACK.yaml ...]", runStack},
		{"prefetch", "list (or download) the layer blobs a node running --from needs for --to", "--registry URL [--stack env] --from DIGEST --to DIGEST [--platform linux/amd64] [--dir DIR] [--json]", runPrefetch},
		{"migrate", "copy a --data directory into Redis + S3 (--catalog, --blobs) and verify the copy", "--data DIR --catalog URL --blobs URL", runMigrate},
		{"verify", "recheck every blob, package version and stored manifest; exit 1 on damage", "[--data DIR | --catalog URL --blobs URL]", runVerify},
		{"yank", "stop resolving a package version (pinned digests stay pullable); --undo reverts", "[--undo] [--data DIR | --catalog URL --blobs URL] NAME VERSION", runYank},
		{"purge", "delete a package version and the composed manifests that use it (pinned digests stop working); envreg gc then frees its layers", "[--dry-run] [--data DIR | --catalog URL --blobs URL] NAME VERSION", runPurge},
		{"gc", "delete compositions not pulled within the retention (unless pinned), manifests no repository holds, and blobs nothing references", "[--dry-run] [--retention 2160h] [--grace 1h] [--data DIR | --catalog URL --blobs URL]", runGC},
		{"version", "print the version", "", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "envreg composes container images from prebuilt package layers on every pull.\n\nUsage:\n  envreg COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"envreg COMMAND --help\" for a command's flags. Deployment flags (--data,\n--catalog, --blobs, --addr, --addr-file, --log-level, --log-format, --shutdown-timeout,\n--read-header-timeout, --body-timeout, --stall-timeout, --max-connections, …) can also\nbe set as ENVREG_<FLAG>, e.g. ENVREG_DATA=/var/lib/envreg; flags on the command line win.\n")
}

// run is main without os.Exit, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		var usageErr *usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "envreg %s: %v\nRun \"envreg %s --help\" for usage.\n", c.name, err, c.name)
			return 2
		}
		fmt.Fprintf(stderr, "envreg %s: %v\n", c.name, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "envreg: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// newFlags returns a FlagSet whose --help prints the command's usage.
func newFlags(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("envreg "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(env.stdout, "envreg %s: %s\n\nUsage:\n  envreg %s %s\n\nFlags:\n", name, c.summary, name, c.usage)
			}
		}
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.stderr)
	}
	return fs
}

// envFlags are the deployment settings that can also come from the
// environment as ENVREG_<FLAG>. Flags that say what to publish or resolve
// (--name, --version, --env, …) cannot: a stray variable must not change
// what a CI job publishes.
var envFlags = map[string]bool{
	"data": true, "catalog": true, "blobs": true, "addr": true, "addr-file": true, "log-level": true, "log-format": true,
	"shutdown-timeout": true, "read-header-timeout": true, "body-timeout": true, "stall-timeout": true, "max-connections": true,
	"tls-cert": true, "tls-key": true,
	"uploads": true, "upload-max-age": true, "max-blob-size": true, "push": true,
	"auth-htpasswd": true, "auth-acl": true, "auth-anonymous-pull": true, "auth-realm": true,
	"auth-token-secret": true, "auth-service": true, "sendfile": true, "compose-budget": true,
}

// parseFlags sets deployment flags (envFlags) from, in increasing
// precedence: the --config file, ENVREG_<FLAG> environment variables, and
// the command line. Flags must come before arguments: "publish recipe.yaml
// --data d" is refused before anything is done, rather than publishing into
// the default directory.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var errs []error
	if fs.Lookup("config") != nil {
		if path := configPath(args); path != "" {
			errs = append(errs, applyConfigFile(fs, path))
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !envFlags[f.Name] {
			return
		}
		key := "ENVREG_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return usagef("%v", err)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") {
			return usagef("flag %s after an argument: flags go before arguments", a)
		}
	}
	return nil
}

// configFlag registers --config on commands that read a config file.
func configFlag(fs *flag.FlagSet) {
	fs.String("config", "", "YAML file of deployment settings, keyed by flag name (data, catalog, blobs, addr, log-level, …); ENVREG_* variables and flags override it (ENVREG_CONFIG names the file too)")
}

// configPath finds --config on the command line (before the first
// argument), else ENVREG_CONFIG.
func configPath(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "config" {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("ENVREG_CONFIG")
}

// applyConfigFile sets flags from a YAML mapping of flag name to value.
// Only deployment flags may appear; anything else is an error naming it.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(raw, &settings); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		if !envFlags[name] || fs.Lookup(name) == nil {
			errs = append(errs, fmt.Errorf("config %s: unknown setting %q (known: %s)", path, name, strings.Join(knownSettings(fs), ", ")))
			continue
		}
		value := settings[name]
		if value == nil {
			value = "" // "key:" with nothing after it
		}
		if err := fs.Set(name, fmt.Sprint(value)); err != nil {
			errs = append(errs, fmt.Errorf("config %s: %s: %w", path, name, err))
		}
	}
	return errors.Join(errs...)
}

func knownSettings(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if envFlags[f.Name] {
			names = append(names, f.Name)
		}
	})
	return names
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// defaultDataDir is ./data, matching the README.
const defaultDataDir = "data"

// quietLogger reports only warnings and errors (for one-shot commands).
func quietLogger(env *cliEnv) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newLogger returns a slog logger at the given level and format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("invalid --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usagef("invalid --log-format %q: want text or json", format)
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func runVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "envreg", version())
	return nil
}

// terminal returns w when it is a terminal (progress bars for a person),
// else nil (quiet in CI and in logs).
func terminal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return w
}
