package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

// resolveOutput is what "envreg resolve --json" prints.
type resolveOutput struct {
	Stack     string             `json:"stack"`
	Reference string             `json:"reference"` // stack@digest of the OCI index
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
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*tag == "") == (fs.NArg() == 0) {
		return usagef("give either --tag TAG or requirements such as php=^8.2 nodejs='>=18' graphicsmagick")
	}

	b, err := store.open(ctx, quietLogger(env))
	if err != nil {
		return err
	}
	defer b.Close()
	snap, err := b.catalog.Snapshot(ctx)
	if err != nil {
		return err
	}
	st, ok := snap.Stack(*stackName)
	if !ok {
		return fmt.Errorf("unknown stack %q", *stackName)
	}
	names := resolver.StackNames(snap, st)
	var req resolver.Request
	if *tag != "" {
		req, err = resolver.ParseTag(*tag, st, names)
	} else {
		var reqs []resolver.Requirement
		for _, a := range fs.Args() {
			r, perr := resolver.ParseRequirement(a, names)
			if perr != nil {
				return &exitError{1, perr}
			}
			reqs = append(reqs, r)
		}
		req, err = resolver.NewRequest(st.Name, reqs)
	}
	if err != nil {
		return &exitError{1, err}
	}
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		return &exitError{1, err}
	}
	// Compose stores the documents, so the pinned reference can be pulled.
	img, err := manifestgen.NewComposer(b.catalog, b.blobs).Compose(ctx, snap, st, req, manifestgen.FormatOCI)
	if err != nil {
		return err
	}

	out := resolveOutput{Stack: st.Name, Digest: img.Index.Descriptor.Digest.String()}
	out.Reference = st.Name + "@" + out.Digest
	for _, r := range res.Releases {
		out.Packages = append(out.Packages, resolvedPackage{r.Name, r.Version.String()})
	}
	for _, p := range res.Platforms {
		m, _ := img.Manifest(p)
		var size int64
		for _, r := range res.Releases {
			l, _ := r.Layer(p)
			size += l.Size
		}
		out.Manifests = append(out.Manifests, resolvedManifest{p.String(), m.Descriptor.Digest.String(), len(res.Releases), size})
	}
	if *asJSON {
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
