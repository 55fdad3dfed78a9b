package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/maintenance"
)

// runGC collects what nothing keeps any more: compositions not served
// within --retention (unless pinned), pushed manifests no repository holds,
// and the blobs no package version or stored manifest references
// (maintenance.GC says in which order, and what stays racy).
func runGC(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "gc")
	st := storageFlags(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and the bytes it would free; delete nothing")
	grace := fs.Duration("grace", maintenance.DefaultGrace, "keep unreferenced blobs younger than this: a publish or compose in progress stores blobs before it references them")
	retention := fs.Duration("retention", maintenance.DefaultRetention, "collect compositions (composed indexes, manifests and configs) that no one pinned and no one pulled for this long; at least 24h, since a server records pulls only once an hour")
	now := fs.String("now", "", "judge ages as if it were this time (RFC 3339, e.g. 2027-03-01T00:00:00Z) instead of the clock: with --dry-run, shows what a later gc would collect")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	clock, err := gcFlags(fs, *grace, *retention, *now)
	if err != nil {
		return err
	}
	log := quietLogger(env)
	b, err := st.open(ctx, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if _, _, err := walkers(st, b); err != nil {
		return err
	}
	if _, err := blobAges(st, b, *grace); err != nil {
		return err
	}
	out := gcOutput{env: env, dryRun: *dryRun, grace: *grace, retention: *retention, now: clock()}
	r, err := maintenance.GC(ctx, b.stores(), maintenance.GCOptions{
		Grace:     *grace,
		Retention: *retention,
		DryRun:    *dryRun,
		Clock:     clock,
		Reopen: func(ctx context.Context) (catalog.Store, error) {
			fresh, err := st.open(ctx, log)
			if err != nil {
				return nil, err
			}
			return fresh.catalog, nil
		},
		OnDelete: out.deleted,
	})
	if err != nil {
		return st.explain(err)
	}
	out.report(r)
	return nil
}

// gcFlags checks gc's flags and returns the clock it judges ages by.
func gcFlags(fs *flag.FlagSet, grace, retention time.Duration, now string) (func() time.Time, error) {
	if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments: %v", fs.Args())
	}
	if grace < 0 {
		return nil, usagef("--grace must not be negative")
	}
	if retention < maintenance.MinRetention {
		return nil, usagef("--retention %s is too short: a server records that a composition was pulled only once an hour, "+
			"so a composition in use can look an hour old; give at least %s (default %s)",
			retention, maintenance.MinRetention, maintenance.DefaultRetention)
	}
	if now == "" {
		return time.Now, nil
	}
	at, err := time.Parse(time.RFC3339, now)
	if err != nil {
		return nil, usagef("--now %q: want RFC 3339, e.g. 2027-03-01T00:00:00Z", now)
	}
	offset := time.Until(at)
	return func() time.Time { return time.Now().Add(offset) }, nil
}

// gcOutput prints what gc does.
type gcOutput struct {
	env              *cliEnv
	dryRun           bool
	grace, retention time.Duration
	now              time.Time
}

func (o gcOutput) verb() string {
	if o.dryRun {
		return "would delete"
	}
	return "deleted"
}

// deleted prints one deleted blob or document.
func (o gcOutput) deleted(d maintenance.Deletion) {
	switch {
	case !d.Document:
		fmt.Fprintf(o.env.stdout, "%s %s (%d bytes)\n", o.verb(), d.Digest, d.Size)
	case !d.LastServed.IsZero():
		fmt.Fprintf(o.env.stdout, "%s composed manifest %s (not pulled since %s)\n", o.verb(), d.Digest, d.LastServed.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(o.env.stdout, "%s manifest %s (no repository holds it)\n", o.verb(), d.Digest)
	}
}

// report prints gc's summary lines.
func (o gcOutput) report(r *maintenance.GCReport) {
	w, verb := o.env.stdout, o.verb()
	if r.Adopted > 0 {
		adopted := "adopted"
		if o.dryRun {
			adopted = "would adopt"
		}
		fmt.Fprintf(w, "gc: %s %d compositions stored before this version, pinned\n", adopted, r.Adopted)
	}
	if r.MarksRemoved > 0 || r.MarksKept > 0 {
		removed := "unmarked"
		if o.dryRun {
			removed = "would unmark"
		}
		fmt.Fprintf(w, "gc: %s %d digests of compositions not pulled since %s (--retention %s); kept %d marked (%d pinned)\n",
			removed, r.MarksRemoved, o.now.Add(-o.retention).UTC().Format(time.RFC3339), o.retention, r.MarksKept, r.MarksPinned)
	}
	if r.CompositionsDeleted > 0 || r.CompositionsKept > 0 {
		fmt.Fprintf(w, "gc: %s %d composed manifests no stack serves any more; kept %d pulled again meanwhile\n", verb, r.CompositionsDeleted, r.CompositionsKept)
	}
	if r.DocumentsDeleted > 0 || r.DocumentsKept > 0 {
		fmt.Fprintf(w, "gc: %s %d manifests no repository holds any more; kept %d (younger than %s, or of unknown age)\n", verb, r.DocumentsDeleted, r.DocumentsKept, o.grace)
	}
	freed := "freed"
	if o.dryRun {
		freed = "would be freed"
	}
	fmt.Fprintf(w, "gc: %s %d unreferenced blobs, %d bytes %s; kept %d referenced blobs (%d bytes) and %d unreferenced blobs younger than %s\n",
		verb, r.BlobsDeleted, r.BytesFreed, freed, r.BlobsReferenced, r.BytesReferenced, r.BlobsYoung, o.grace)
}

// blobAges returns how to tell a blob's age, which the grace period needs
// (nil with none), or an error naming the blob store that cannot.
func blobAges(st *storage, b *backends, grace time.Duration) (blobAger, error) {
	a, err := maintenance.Ages(b.blobs, grace)
	return a, st.explain(err)
}
