package packages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/packages/internal/debian"
)

// rebuildOf is what a rebuild step knows of the release it replaces.
type rebuildOf struct {
	reason string // catalog.LabelRebuild
	yanked bool   // a rebuild keeps the version's yank
}

// rebuildSuffix matches the build number a rebuild appends to build metadata.
var rebuildSuffix = regexp.MustCompile(`(^|\.)r([0-9]+)$`)

// rebuiltVersion is the version of the next build of v. Rebuilds:
//
// A Debian package version's layer holds a closure: the main package and
// the libraries the base lacks (LabelDebianPackages records their Debian
// versions per release). When a security update replaces one of them
// (libssl3, libicu72) while the main package's version stays, the job
// (Syncer.Rebuild) notices that the closure the archive gives now differs
// from the recorded one and publishes a rebuild:
//
//   - named with the same version and build metadata ".rN" appended, N the
//     build's number: 8.2.36+1.deb12u1 → 8.2.36+1.deb12u1.r2 → …r3; a
//     version without metadata gets "+r2". Semver precedence ignores build
//     metadata, so the catalog, which holds one release per version,
//     replaces the release: tags and ranges (php-8.2, php-8.2.36, ~8.2)
//     select the rebuild because it is the only build they can select;
//   - published with force: the release's layers are replaced and the
//     replaced ones are kept as catalog.Release.Superseded, which the
//     stack still serves and gc still keeps, so digests pinned before the
//     rebuild keep pulling; its yank, if any, stays;
//   - labelled catalog.LabelRebuild with the reason, which the
//     provisioning API's from answer shows beside "rebuilt".
//
// A rebuild is exactly what publishing the recipe version anew from the
// archive gives (the layers are reproducible), so two jobs that rebuild
// at once record the same layers.
func rebuiltVersion(v *semver.Version) *semver.Version {
	meta := v.Metadata()
	if m := rebuildSuffix.FindStringSubmatch(meta); m != nil {
		n, _ := strconv.Atoi(m[2])
		meta = strings.TrimSuffix(meta, "r"+m[2]) + "r" + strconv.Itoa(n+1)
	} else if meta == "" {
		meta = "r2"
	} else {
		meta += ".r2"
	}
	out, _ := v.SetMetadata(meta)
	return &out
}

// closureChanges describes how the package list now differs from before
// (both LabelDebianPackages values): "libssl3 3.0.15-1~deb12u1 →
// 3.0.16-1~deb12u1, libfoo (added) 1.2-1"; "" when they are equal.
func closureChanges(before, now string) string {
	parse := func(s string) map[string]string {
		out := map[string]string{}
		for _, f := range strings.Fields(s) {
			name, version, _ := strings.Cut(f, "=")
			out[name] = version
		}
		return out
	}
	old, cur := parse(before), parse(now)
	var changes []string
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		switch o, ok := old[name]; {
		case !ok:
			changes = append(changes, name+" (added) "+cur[name])
		case o != cur[name]:
			changes = append(changes, name+" "+o+" → "+cur[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cur[name]; !ok {
			changes = append(changes, name+" "+old[name]+" (removed)")
		}
	}
	const most = 8
	if len(changes) > most {
		changes = append(changes[:most], fmt.Sprintf("and %d more", len(changes)-most))
	}
	return strings.Join(changes, ", ")
}

// checkPresent looks at the Debian recipe versions the catalog has
// (present), resolving each for every platform of its recipe without
// downloading anything: a version whose main package the archive no
// longer has is gone upstream (logged, kept); with Rebuild, a version
// whose closure differs from the one its release records gets a rebuild
// step. Errors are only logged: the check never fails a round.
//
// When neither the archive's indexes (after this round's refresh) nor the
// catalog changed since the last check that found nothing to rebuild, the
// check is skipped and its result reused: a round of a long-lived job with
// nothing new then costs the refresh alone.
func (s *Syncer) checkPresent(ctx context.Context, pub *Publisher, present []Recipe) (gone []string, rebuilds []syncStep) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		s.log().WarnContext(ctx, s.what()+": cannot look for rebuilds", "err", err)
	}
	memo := checkMemo{}
	if snap != nil {
		memo.generation = snap.Generation
		memo.fingerprint, err = pub.listsFingerprint(ctx, present)
		if err != nil {
			s.log().DebugContext(ctx, s.what()+": cannot fingerprint the package lists", "err", err)
			memo.fingerprint = ""
		}
		for _, rc := range present {
			memo.recipes += rc.Name + " " + rc.effectiveVersion() + "\n"
		}
	}
	s.mu.Lock()
	last := s.checked
	s.mu.Unlock()
	if memo.fingerprint != "" && last.fingerprint == memo.fingerprint && last.generation == memo.generation && last.recipes == memo.recipes {
		s.log().DebugContext(ctx, s.what()+": the archive's indexes and the catalog are as at the last check; not checked again")
		return slices.Clone(last.gone), nil
	}
	if !s.Rebuild {
		snap = nil // only whether each version is upstream
	}
	failed := false
	defer func() {
		if failed || len(rebuilds) > 0 || memo.fingerprint == "" {
			memo = checkMemo{}
		}
		memo.gone = slices.Clone(gone)
		s.mu.Lock()
		s.checked = memo
		s.mu.Unlock()
	}()
	for _, rc := range present {
		if rc.Source.Debian == nil || len(rc.Platforms) == 0 || ctx.Err() != nil {
			continue
		}
		id := rc.Name + " " + rc.effectiveVersion()
		platforms := rc.Platforms
		if snap == nil {
			if rc.fromRange != "" {
				continue // chosen from the archive's versions this round
			}
			platforms = platforms[:1] // only whether it is upstream
		}
		closures, err := pub.resolveAll(ctx, rc, platforms)
		var nf *debian.NotFoundError
		switch {
		case errors.As(err, &nf) && rc.fromRange == "":
			gone = append(gone, id)
			s.log().InfoContext(ctx, s.what()+": gone upstream; the catalog keeps its copy", "version", id, "detail", err.Error())
			continue
		case err != nil:
			failed = true
			s.log().DebugContext(ctx, s.what()+": could not check upstream", "version", id, "err", err)
			continue
		case snap == nil:
			continue
		}
		if step, ok := s.rebuildStep(rc, snap, closures); ok {
			rebuilds = append(rebuilds, step)
		}
	}
	return gone, rebuilds
}

// checkMemo is what the last check of present versions saw (Syncer.checked).
type checkMemo struct {
	fingerprint string // of every package list the check used
	generation  uint64 // of the catalog
	recipes     string // the present versions
	gone        []string
}

// listsFingerprint refreshes the package lists of every apt that present
// (and their bases) use, for every platform, and returns one fingerprint
// of all of them.
func (p *Publisher) listsFingerprint(ctx context.Context, present []Recipe) (string, error) {
	fps := map[string]bool{}
	for _, rc := range present {
		for r := &rc; r != nil && r.Source.Debian != nil; r = r.Source.Debian.BaseRecipe {
			for _, ps := range rc.Platforms {
				plat, err := catalog.ParsePlatform(ps)
				if err != nil {
					return "", err
				}
				arch, err := debianArch(plat)
				if err != nil {
					return "", err
				}
				a, err := p.apt(arch, r.Source.Debian)
				if err != nil {
					return "", err
				}
				if err := a.Update(ctx); err != nil {
					return "", err
				}
				fp, err := a.ListsFingerprint()
				if err != nil {
					return "", err
				}
				fps[arch+" "+strings.Join(r.Source.Debian.Sources, ",")+" "+fp] = true
			}
		}
	}
	return strings.Join(slices.Sorted(maps.Keys(fps)), "\n"), nil
}

// resolveAll resolves rc on each of platforms, concurrently (each
// architecture has its own apt).
func (p *Publisher) resolveAll(ctx context.Context, rc Recipe, platforms []string) (map[catalog.Platform][]debian.Package, error) {
	closures := map[catalog.Platform][]debian.Package{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(platforms))
	for i, ps := range platforms {
		plat, err := catalog.ParsePlatform(ps)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			_, closure, _, err := p.resolveDebian(ctx, rc, plat)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", plat, err)
				return
			}
			mu.Lock()
			closures[plat] = closure
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return closures, nil
}

// rebuildStep returns the step that rebuilds rc's release in snap when
// closures (every platform of rc) differ from what the release records.
func (s *Syncer) rebuildStep(rc Recipe, snap *catalog.Snapshot, closures map[catalog.Platform][]debian.Package) (syncStep, bool) {
	v, err := semver.StrictNewVersion(rc.effectiveVersion())
	if err != nil {
		return syncStep{}, false
	}
	var rel *catalog.Release
	for _, r := range snap.Releases(rc.Name) {
		if r.Version.Equal(v) {
			rel = &r
		}
	}
	if rel == nil || rel.Labels[LabelDebianPackages] == "" {
		return syncStep{}, false // not published by a Debian recipe
	}
	now := packageList(closures)
	reason := closureChanges(rel.Labels[LabelDebianPackages], now)
	if reason == "" {
		return syncStep{}, false
	}
	next := rebuiltVersion(rel.Version)
	out := rc
	out.Version = next.String()
	out.rebuild = &rebuildOf{reason: reason, yanked: rel.Yanked}
	return syncStep{rc: out, version: next, depth: baseDepth(rc), rebuild: true}, true
}
