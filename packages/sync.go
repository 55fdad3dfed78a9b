package packages

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/internal/debian"
)

// Syncer is the publishing job's engine, for `envreg sync` and for the
// background seeding of `envreg serve --seed` (one engine, two callers). A
// round (Round) publishes every recipe version the catalog lacks, for
// every platform of the recipe that the catalog lacks, and nothing that
// exists:
//
//   - Order: bases before the recipes on them, every package's newest
//     version before any package's older ones, and, with FirstPlatform,
//     that platform of every version before the others (a person waiting
//     for the registry gets linux/amd64 soonest).
//   - Races: every catalog write is exclusive (catalog.PublishOptions):
//     when several jobs publish one version at once, the catalog decides
//     that exactly one of them did; the others count it as Raced. A
//     version is recorded with all of its layers or not at all, so a job
//     stopped at any point (SIGTERM, a crash) leaves no half version; the
//     blobs of a version it did not record are garbage for `envreg gc`.
//   - Upstream: a version in the catalog is never built again, so one
//     that the archive dropped stays (the layers are envreg's own copy),
//     and nothing about it can fail a round; with CheckUpstream the round
//     logs it (SyncReport.GoneUpstream).
//   - Freshness: each round uses a new Publisher (NewPublisher), whose
//     private apt refreshes the archive's signed indexes once.
//
// A failure of one version is recorded with a reason (SyncFailure) and the
// round goes on with the next.
type Syncer struct {
	// Catalog tells which versions exist; its snapshot is read at the
	// start of the round and again before each step.
	Catalog catalog.Reader
	// NewPublisher returns the Publisher of a round. Its Exclusive field
	// is set by the Syncer.
	NewPublisher func() (*Publisher, error)
	// BaseDir is as for PublishRecipe ("" for recipes from LoadRecipeDir
	// or the bundled ones).
	BaseDir string
	// FirstPlatform, when set, is published for every version before the
	// other platforms (each becomes its own step).
	FirstPlatform string
	// What names the job in log lines and Status ("sync", "seeding").
	What string
	// Log receives a line per step (nil: discard).
	Log *slog.Logger
	// Inventory, when set, says which platforms of a version the target
	// has, instead of Catalog (which may then be nil): for `envreg sync
	// --registry`, the remote registry's packages/NAME:VERSION. A version
	// it lacks any platform of is published with all of them.
	Inventory Inventory
	// Deliver, when set, gets each release a step recorded through the
	// round's Publisher, whose catalog is then a staging store; the step
	// counts as published when Deliver returns nil (`envreg sync
	// --registry` pushes it), else it fails with reason "deliver".
	Deliver func(ctx context.Context, rel catalog.Release) error
	// CheckUpstream asks the archive, at the end of each round, whether
	// the Debian versions that were already in the catalog are still
	// there (refreshing its signed indexes every round): one that is gone
	// is logged and listed in SyncReport.GoneUpstream, never a failure;
	// the catalog keeps its copy.
	CheckUpstream bool
	// Rebuild resolves, at the end of each round, every Debian version the
	// catalog already has for every platform of its recipe (no download)
	// and publishes a rebuild of each whose closure changed upstream (a
	// library got a security update while the package's version stayed);
	// see rebuiltVersion. Not with Inventory (a remote registry).
	Rebuild bool

	mu      sync.Mutex
	status  syncStatus
	checked checkMemo // the last check of present versions (checkPresent)
}

// Inventory tells a Syncer what a target other than its Catalog has.
type Inventory interface {
	// Platforms lists the platforms of name at version that the target
	// has (none: nil, no error).
	Platforms(ctx context.Context, name string, version *semver.Version) ([]catalog.Platform, error)
}

// SyncReport is what a round did.
type SyncReport struct {
	// Steps is the number of steps the round planned: a version for
	// some of its platforms.
	Steps int
	// Published are the versions this round recorded, one release per
	// step, with the layers of that step's platforms.
	Published []catalog.Release
	// Present counts the recipe versions the catalog had with every
	// platform when the round started.
	Present int
	// Raced names the steps another job published meanwhile.
	Raced []string
	// Failed are the steps that failed.
	Failed []SyncFailure
	// GoneUpstream names the versions in the catalog whose main Debian
	// package the archive no longer has (CheckUpstream).
	GoneUpstream []string
	// Rebuilt are the rebuilds this round published (also in Published):
	// "php 8.2.36+1.deb12u1.r2: libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1".
	Rebuilt []string
	// Stopped is set when ctx ended before the round did; the steps not
	// started are neither failed nor published.
	Stopped bool
	Took    time.Duration
}

// SyncFailure is one step that failed.
type SyncFailure struct {
	// Step is "name version for platforms".
	Step string
	// Reason is a short, stable word for metrics: "upstream" (the
	// archive lacks a package or version), "recipe" (invalid recipe or
	// source), "conflict" (the catalog has the version with other
	// content), "catalog" (the catalog is unavailable), "deliver" (the
	// push to a remote registry failed) or "publish" (anything else:
	// download, build, blob store).
	Reason string
	Err    error
}

// syncStep is one recipe version for some of its platforms.
type syncStep struct {
	rc      Recipe
	version *semver.Version
	first   bool // FirstPlatform's step of a split version
	depth   int
	rank    int  // 0 for the newest version of the name (rankSteps)
	rebuild bool // a rebuild of a present version (checkPresent), published with force
}

func (s syncStep) String() string {
	return fmt.Sprintf("%s %s for %s", s.rc.Name, s.version, platformList(s.rc.Platforms))
}

// syncStatus is what Status reports.
type syncStatus struct {
	running           bool
	done, total, fail int
	current           string
}

// Status says what the round under way is doing, e.g. "seeding: 3 of 12
// steps done, 0 failed; publishing php 8.4.16 for linux/amd64", or "" when
// no round runs.
func (s *Syncer) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if !st.running {
		return ""
	}
	out := fmt.Sprintf("%s: %d of %d steps done, %d failed", s.what(), st.done, st.total, st.fail)
	if st.current != "" {
		out += "; publishing " + st.current
	}
	return out
}

func (s *Syncer) what() string { return cmp.Or(s.What, "sync") }

func (s *Syncer) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Syncer) setStatus(f func(*syncStatus)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

// Round publishes what recipes have that the catalog lacks. The error is
// for a round that could not start (the catalog unreadable, a recipe
// without a valid version); failures of single steps are in the report.
func (s *Syncer) Round(ctx context.Context, recipes []Recipe) (SyncReport, error) {
	start := time.Now()
	s.setStatus(func(st *syncStatus) { *st = syncStatus{running: true, current: "listing the archive's versions"} })
	defer s.setStatus(func(st *syncStatus) { *st = syncStatus{} })
	pub, err := s.NewPublisher()
	if err != nil {
		return SyncReport{}, fmt.Errorf("%s: %w", s.what(), err)
	}
	pub.Exclusive = true
	recipes, ranges, failed := s.expand(ctx, pub, recipes)
	steps, present, err := s.plan(ctx, recipes)
	if err != nil {
		return SyncReport{}, err
	}
	rep := SyncReport{Steps: len(steps) + len(failed), Present: len(present), Failed: failed}
	s.setStatus(func(st *syncStatus) {
		*st = syncStatus{running: true, total: rep.Steps, done: len(failed), fail: len(failed)}
	})
	for i, step := range steps {
		if ctx.Err() != nil {
			rep.Stopped = true
			break
		}
		s.setStatus(func(st *syncStatus) { st.current = step.String() })
		pub.report(Event{Kind: RecipeStarted, Index: i + 1, Count: len(steps), Subject: step.String()})
		s.log().InfoContext(ctx, s.what()+": publishing", "step", step.String(), "index", i+1, "of", len(steps))
		s.runStep(ctx, pub, step, &rep)
		s.setStatus(func(st *syncStatus) { st.done, st.fail, st.current = len(failed)+i+1, len(rep.Failed), "" })
	}
	if (s.CheckUpstream || s.Rebuild) && !rep.Stopped {
		s.setStatus(func(st *syncStatus) { st.current = "checking the versions in the catalog against the archive" })
		gone, rebuilds := s.checkPresent(ctx, pub, present)
		if s.CheckUpstream {
			rep.GoneUpstream = append(gone, s.goneFromRanges(ctx, ranges)...)
		}
		s.runRebuilds(ctx, pub, rebuilds, &rep)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// runRebuilds publishes the rebuild steps, bases first.
func (s *Syncer) runRebuilds(ctx context.Context, pub *Publisher, rebuilds []syncStep, rep *SyncReport) {
	slices.SortStableFunc(rebuilds, func(a, b syncStep) int { return cmp.Compare(a.depth, b.depth) })
	rep.Steps += len(rebuilds)
	for _, step := range rebuilds {
		if ctx.Err() != nil {
			rep.Stopped = true
			return
		}
		s.log().InfoContext(ctx, s.what()+": rebuilding", "step", step.String(), "reason", step.rc.rebuild.reason)
		n := len(rep.Published)
		s.runStep(ctx, pub, step, rep)
		if len(rep.Published) > n {
			rep.Rebuilt = append(rep.Rebuilt, step.rc.Name+" "+step.version.String()+": "+step.rc.rebuild.reason)
		}
	}
}

// runStep publishes one step and records the outcome in rep.
func (s *Syncer) runStep(ctx context.Context, pub *Publisher, step syncStep, rep *SyncReport) {
	if !step.rebuild && s.presentNow(ctx, step.rc) {
		rep.Raced = append(rep.Raced, step.String())
		s.log().InfoContext(ctx, s.what()+": published by another job meanwhile", "step", step.String())
		return
	}
	rels, err := pub.PublishRecipe(ctx, step.rc, s.BaseDir, step.rebuild)
	switch {
	case err == nil:
		rel := rels[0]
		rel.Layers = nil
		for _, r := range rels {
			rel.Layers = append(rel.Layers, r.Layers...)
		}
		if s.Deliver == nil {
			rep.Published = append(rep.Published, rel)
			return
		}
		if err := s.Deliver(ctx, rel); err != nil && ctx.Err() != nil {
			rep.Stopped = true
			return
		} else if err != nil {
			rep.Failed = append(rep.Failed, SyncFailure{Step: step.String(), Reason: "deliver", Err: err})
			s.log().ErrorContext(ctx, s.what()+": step failed", "step", step.String(), "reason", "deliver", "err", err)
			return
		}
		rep.Published = append(rep.Published, rel)
	case errors.Is(err, catalog.ErrAlreadyPublished):
		rep.Raced = append(rep.Raced, step.String())
		s.log().InfoContext(ctx, s.what()+": published by another job meanwhile", "step", step.String(), "detail", err.Error())
	case ctx.Err() != nil:
		rep.Stopped = true
		s.log().InfoContext(ctx, s.what()+": stopped; nothing of this step is in the catalog", "step", step.String())
	default:
		f := SyncFailure{Step: step.String(), Reason: failureReason(err), Err: err}
		rep.Failed = append(rep.Failed, f)
		s.log().ErrorContext(ctx, s.what()+": step failed", "step", f.Step, "reason", f.Reason, "err", err)
	}
}

// presentNow reports whether the target has every platform of rc now
// (another job published it since the round started).
func (s *Syncer) presentNow(ctx context.Context, rc Recipe) bool {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return false // the publish will say what is wrong
	}
	missing, err := s.missing(ctx, rc, snap)
	return err == nil && len(missing) == 0
}

// snapshot reads Catalog, unless Inventory replaces it.
func (s *Syncer) snapshot(ctx context.Context) (*catalog.Snapshot, error) {
	if s.Inventory != nil {
		return nil, nil
	}
	snap, err := s.Catalog.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the catalog: %w", s.what(), err)
	}
	return snap, nil
}

// missing lists the platforms of rc that the target lacks.
func (s *Syncer) missing(ctx context.Context, rc Recipe, snap *catalog.Snapshot) ([]string, error) {
	if s.Inventory == nil {
		return missingPlatforms(rc, snap)
	}
	v, err := semver.StrictNewVersion(rc.effectiveVersion())
	if err != nil {
		return nil, fmt.Errorf("recipe %s: version %q: %w", rc.where(), rc.effectiveVersion(), err)
	}
	have, err := s.Inventory.Platforms(ctx, rc.Name, v)
	if err != nil {
		return nil, err
	}
	// Any platform missing: all of them, since the target (a registry's
	// tag) is replaced as a whole.
	for _, p := range rc.Platforms {
		plat, err := catalog.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("recipe %s: %w", rc.where(), err)
		}
		if !slices.Contains(have, plat) {
			return rc.Platforms, nil
		}
	}
	return nil, nil
}

// plan lists the steps of a round in publishing order and the recipe
// versions that are complete already.
func (s *Syncer) plan(ctx context.Context, recipes []Recipe) ([]syncStep, []Recipe, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	var steps []syncStep
	var present []Recipe
	for _, rc := range recipes {
		missing, err := s.missing(ctx, rc, snap)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.what(), err)
		}
		if len(missing) == 0 {
			present = append(present, rc)
			continue
		}
		v, _ := semver.StrictNewVersion(rc.effectiveVersion()) // missingPlatforms parsed it
		step := syncStep{rc: rc, version: v, depth: baseDepth(rc)}
		step.rc.labelPlatforms = rc.Platforms // the same labels, however it is split
		if i := slices.Index(missing, s.FirstPlatform); i >= 0 && len(missing) > 1 {
			first := step
			first.rc.Platforms, first.first = []string{s.FirstPlatform}, true
			steps = append(steps, first)
			missing = slices.Delete(slices.Clone(missing), i, i+1)
		}
		step.rc.Platforms = missing
		step.first = slices.Equal(missing, []string{s.FirstPlatform})
		steps = append(steps, step)
	}
	rankSteps(steps)
	slices.SortStableFunc(steps, compareSteps)
	return steps, present, nil
}

// rankSteps numbers the steps of each name and phase (FirstPlatform or
// not) from the newest version down, so that every package's newest
// version comes before any package's second newest.
func rankSteps(steps []syncStep) {
	type key struct {
		name  string
		first bool
	}
	byKey := map[key][]int{}
	for i, st := range steps {
		k := key{st.rc.Name, st.first}
		byKey[k] = append(byKey[k], i)
	}
	for _, idx := range byKey {
		slices.SortFunc(idx, func(a, b int) int { return steps[b].version.Compare(steps[a].version) })
		for r, i := range idx {
			steps[i].rank = r
		}
	}
}

// compareSteps orders steps: FirstPlatform's steps first, then bases
// before what is installed on them, then every name's newest version
// before any name's older ones, then by name.
func compareSteps(a, b syncStep) int {
	if a.first != b.first {
		if a.first {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.depth, b.depth), cmp.Compare(a.rank, b.rank), strings.Compare(a.rc.Name, b.rc.Name),
		b.version.Compare(a.version))
}

// labelClosures adds to closures those of rc's labelPlatforms that it
// lacks (resolved, not downloaded), so that the labels describe every
// platform of the recipe when a step publishes some of them.
func (p *Publisher) labelClosures(ctx context.Context, rc Recipe, closures map[catalog.Platform][]debian.Package) error {
	for _, s := range rc.labelPlatforms {
		plat, err := catalog.ParsePlatform(s)
		if err != nil {
			return err
		}
		if _, ok := closures[plat]; ok {
			continue
		}
		_, closure, _, err := p.resolveDebian(ctx, rc, plat)
		if err != nil {
			return err
		}
		closures[plat] = closure
	}
	return nil
}

// failureReason classifies a step's error for metrics (SyncFailure.Reason).
func failureReason(err error) string {
	var nf *debian.NotFoundError
	var unsat *debian.UnsatisfiableError
	var invalid *catalog.ValidationError
	switch {
	case errors.As(err, &nf), errors.As(err, &unsat), errors.As(err, new(*RangeError)):
		return "upstream"
	case errors.As(err, &invalid):
		return "recipe"
	case errors.Is(err, catalog.ErrUnavailable):
		return "catalog"
	case errors.Is(err, catalog.ErrExists):
		return "conflict"
	}
	return "publish"
}

// expanded is a ranged recipe and what ExpandRecipe made of it.
type expanded struct {
	rc Recipe
	x  expansion
}

// expand replaces every ranged recipe by the versions it stands for
// (Publisher.ExpandRecipe), leaving out a version that a recipe of its
// own defines. A range whose versions cannot be listed is a failed step
// of the round, not its end.
func (s *Syncer) expand(ctx context.Context, pub *Publisher, recipes []Recipe) ([]Recipe, []expanded, []SyncFailure) {
	defined := map[string]bool{}
	for _, rc := range recipes {
		if v, err := semver.StrictNewVersion(rc.effectiveVersion()); err == nil && !rc.Ranged() {
			defined[rc.Name+" "+core(v)] = true
		}
	}
	var out []Recipe
	var ranges []expanded
	var failed []SyncFailure
	for _, rc := range recipes {
		if !rc.Ranged() {
			out = append(out, rc)
			continue
		}
		what := fmt.Sprintf("%s %s for %s", rc.Name, rc.Source.Debian.Versions, platformList(rc.Platforms))
		x, err := pub.expandRange(ctx, rc)
		if err != nil {
			f := SyncFailure{Step: what, Reason: failureReason(err), Err: err}
			failed = append(failed, f)
			s.log().ErrorContext(ctx, s.what()+": listing versions failed", "recipes", what, "reason", f.Reason, "err", err)
			continue
		}
		var versions []string
		for _, v := range x.recipes {
			versions = append(versions, v.Version)
			if !defined[v.Name+" "+core(semver.MustParse(v.Version))] {
				out = append(out, v)
			}
		}
		s.log().InfoContext(ctx, s.what()+": versions in range", "recipes", what, "versions", strings.Join(versions, " "))
		for _, w := range x.waiting {
			s.log().InfoContext(ctx, s.what()+": a newer version waits until every platform has it", "recipes", what, "version", w)
		}
		ranges = append(ranges, expanded{rc, x})
	}
	return out, ranges, failed
}

// goneFromRanges returns the catalog's versions of ranged recipes whose
// main package version the archive no longer offers (CheckUpstream).
func (s *Syncer) goneFromRanges(ctx context.Context, ranges []expanded) []string {
	if len(ranges) == 0 || s.Inventory != nil {
		return nil
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		s.log().DebugContext(ctx, s.what()+": could not check upstream", "err", err)
		return nil
	}
	// Several ranged recipes of one name and main package (graphicsmagick
	// from bookworm and from trixie) overlap: a version is gone only when
	// none of their sources offers it.
	upstream := map[string]bool{} // "name package version"
	for _, r := range ranges {
		reqs, _ := r.rc.Source.Debian.requests()
		for v := range r.x.upstream {
			upstream[r.rc.Name+" "+reqs[0].Name+" "+v] = true
		}
	}
	var gone []string
	seen := map[string]bool{}
	for _, r := range ranges {
		cons, _ := semver.NewConstraint(r.rc.Source.Debian.Versions)
		reqs, _ := r.rc.Source.Debian.requests()
		for _, rel := range snap.Releases(r.rc.Name) {
			dv := rel.Labels[LabelDebianVersion]
			if rel.Labels[LabelDebianPackage] != reqs[0].Name || dv == "" || !cons.Check(rel.Version) ||
				upstream[rel.Name+" "+reqs[0].Name+" "+dv] || seen[rel.ID()] {
				continue
			}
			seen[rel.ID()] = true
			id := rel.Name + " " + rel.Version.String()
			gone = append(gone, id)
			s.log().InfoContext(ctx, s.what()+": gone upstream; the catalog keeps its copy", "version", id, "debianVersion", dv)
		}
	}
	return gone
}
