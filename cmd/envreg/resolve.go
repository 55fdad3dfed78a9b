package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/server/api"
)

// resolveOutput is what "envreg resolve --json" prints.
type resolveOutput struct {
	Stack     string             `json:"stack"`
	Reference string             `json:"reference"` // stack@digest of the OCI index (HOST/stack@digest with --registry)
	Digest    string             `json:"digest"`
	Packages  []resolvedPackage  `json:"packages"`
	Manifests []resolvedManifest `json:"manifests"`
}

type resolvedPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type resolvedManifest struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Layers   int    `json:"layers"`
	Size     int64  `json:"size"` // compressed bytes of all layers
}

func runResolve(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "resolve")
	store := storageFlags(fs)
	stackName := fs.String("stack", catalog.DefaultStackName, "stack (repository) to resolve in")
	tag := fs.String("tag", "", "resolve a tag such as php-8.2_node-20 instead of NAME=CONSTRAINT arguments")
	registryURL := fs.String("registry", "", "resolve through the provisioning API of a running envreg (http://HOST:PORT) instead of opening --data/--catalog/--blobs; the reference then names that host")
	registryUser := fs.String("registry-user", "", "user for --registry when it has authentication (password from ENVREG_REGISTRY_PASSWORD or --registry-password-file); it needs pull on the stack")
	registryPasswordFile := fs.String("registry-password-file", "", "file holding the password of --registry-user")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*tag == "") == (fs.NArg() == 0) {
		return usagef("give either --tag TAG or requirements such as php=^8.2 nodejs='>=18' graphicsmagick")
	}
	var (
		out *resolveOutput
		err error
	)
	if *registryURL != "" {
		if name := storageOnCommandLine(args); name != "" {
			return usagef("--%s and --registry exclude each other: --registry resolves on the server, with its stores", name)
		}
		password, perr := registryPassword(*registryUser, *registryPasswordFile)
		if perr != nil {
			return perr
		}
		out, err = resolveRemote(ctx, *registryURL, *registryUser, password, *stackName, *tag, fs.Args())
	} else {
		if *registryUser != "" || *registryPasswordFile != "" {
			return usagef("--registry-user and --registry-password-file need --registry")
		}
		out, err = resolveLocal(ctx, env, store, *stackName, *tag, fs.Args())
	}
	if err != nil {
		return err
	}
	return printResolution(env, out, *asJSON)
}

// storageOnCommandLine returns the first storage flag (data, catalog,
// blobs) given on the command line; ENVREG_* variables do not count.
func storageOnCommandLine(args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "data", "catalog", "blobs":
			return name
		}
	}
	return ""
}

// resolveLocal opens the stores, resolves and composes (which stores the
// documents, so the pinned reference can be pulled).
func resolveLocal(ctx context.Context, env *cliEnv, store *storage, stackName, tag string, args []string) (*resolveOutput, error) {
	b, err := store.open(ctx, quietLogger(env))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	st, ok := snap.Stack(stackName)
	if !ok {
		return nil, fmt.Errorf("unknown stack %q", stackName)
	}
	names := resolver.StackNames(snap, st)
	var req resolver.Request
	if tag != "" {
		req, err = resolver.ParseTag(tag, st, names)
	} else {
		var reqs []resolver.Requirement
		for _, a := range args {
			r, perr := resolver.ParseRequirement(a, names)
			if perr != nil {
				return nil, &exitError{1, perr}
			}
			reqs = append(reqs, r)
		}
		req, err = resolver.NewRequest(st.Name, reqs)
	}
	if err != nil {
		return nil, &exitError{1, err}
	}
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		return nil, &exitError{1, err}
	}
	composer := manifestgen.NewComposer(b.catalog, b.blobs)
	img, err := composer.Compose(ctx, snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		return nil, err
	}
	if err := composer.Pin(ctx, st.Name, img); err != nil { // a reference to keep, as the provisioning API's
		return nil, err
	}

	out := &resolveOutput{Stack: st.Name, Digest: img.Index.Descriptor.Digest.String()}
	out.Reference = st.Name + "@" + out.Digest
	for _, r := range res.Releases {
		out.Packages = append(out.Packages, resolvedPackage{r.Name, r.Version.String()})
	}
	for _, p := range res.Platforms {
		m, _ := img.Manifest(p)
		var size int64
		for _, r := range res.Releases {
			l, _ := r.Layer(p)
			size += manifestgen.LayerDescriptor(st, l, manifestgen.FormatOCI).Size // the form the stack serves
		}
		out.Manifests = append(out.Manifests, resolvedManifest{p.String(), m.Descriptor.Digest.String(), len(res.Releases), size})
	}
	return out, nil
}

// resolveRemote asks the provisioning API of a running envreg. Every
// answer but 200 exits with 1 and the server's one-line explanation, the
// sentence the local form prints.
func resolveRemote(ctx context.Context, registryURL, user, password, stackName, tag string, args []string) (*resolveOutput, error) {
	c, err := api.NewClient(registryURL, &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, usagef("--registry: %v", err)
	}
	if user != "" {
		c.SetBasicAuth(user, password)
	}
	in := api.ResolveRequest{Tag: tag}
	if tag == "" {
		in.Requirements = map[string]string{}
		spelled := map[string]string{}
		for _, a := range args {
			name, rng, hasRange := strings.Cut(a, "=")
			name, rng = strings.TrimSpace(name), strings.TrimSpace(rng)
			switch {
			case name == "":
				return nil, &exitError{1, fmt.Errorf("invalid requirement %q: no package name", a)}
			case hasRange && rng == "":
				return nil, &exitError{1, fmt.Errorf("invalid requirement %q: empty version range after '='", a)}
			case !hasRange:
				rng = "*"
			}
			if prev, ok := spelled[name]; ok {
				return nil, &exitError{1, fmt.Errorf("duplicate requirement for %s: %q and %q", name, prev, rng)}
			}
			spelled[name] = rng
			in.Requirements[name] = rng
		}
	}
	res, err := c.Resolve(ctx, stackName, in)
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		return nil, &exitError{1, errors.New(apiErr.Message)}
	}
	if err != nil {
		return nil, err
	}
	out := &resolveOutput{Stack: res.Stack, Reference: res.Reference, Digest: res.Digest}
	for _, p := range res.Packages {
		out.Packages = append(out.Packages, resolvedPackage{p.Name, p.Version})
	}
	for _, p := range res.Platforms {
		out.Manifests = append(out.Manifests, resolvedManifest{p.Platform, p.Digest, len(p.Layers), p.Size})
	}
	return out, nil
}

// printResolution prints the pinned reference and the version and platform
// tables, or out as JSON.
func printResolution(env *cliEnv, out *resolveOutput, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(env.stdout, out.Reference)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPACKAGE\tVERSION")
	for _, p := range out.Packages {
		fmt.Fprintf(tw, "%s\t%s\n", p.Name, p.Version)
	}
	fmt.Fprintln(tw, "\nPLATFORM\tMANIFEST\tSIZE")
	for _, m := range out.Manifests {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", m.Platform, m.Digest, m.Size)
	}
	return tw.Flush()
}
