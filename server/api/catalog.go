package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// StackList is the answer to GET /api/v1/stacks.
type StackList struct {
	Generation uint64      `json:"generation"`
	Stacks     []StackInfo `json:"stacks"`
}

// StackInfo describes a stack (a virtual repository).
type StackInfo struct {
	Name string `json:"name"`
	// Base packages are in every image of the stack ("base *").
	Base []string `json:"base"`
	// Latest are the requirements the tag "latest" stands for.
	Latest  []string              `json:"latest"`
	Aliases map[string]string     `json:"aliases"`
	Image   catalog.ImageDefaults `json:"image"`
	// MaxLayers is the effective layer limit.
	MaxLayers    int  `json:"maxLayers"`
	AllowOverlap bool `json:"allowOverlap"`
}

// PackageList is the answer to GET /api/v1/packages.
type PackageList struct {
	Generation uint64           `json:"generation"`
	Packages   []PackageSummary `json:"packages"`
}

// PackageSummary is one package: its versions, newest first, and the
// platforms any of them has.
type PackageSummary struct {
	Name      string   `json:"name"`
	Latest    string   `json:"latest"`
	Versions  []string `json:"versions"`
	Platforms []string `json:"platforms"`
}

// PackageDetail is the answer to GET /api/v1/packages/{name}.
type PackageDetail struct {
	Generation uint64        `json:"generation"`
	Name       string        `json:"name"`
	Versions   []ReleaseInfo `json:"versions"` // newest first
}

// ReleaseInfo is one published version.
type ReleaseInfo struct {
	Version   string            `json:"version"`
	Published time.Time         `json:"published"`
	Platforms []ReleaseLayer    `json:"platforms"`
	Requires  []string          `json:"requires"`
	Conflicts []string          `json:"conflicts"`
	Path      []string          `json:"path"`
	Env       map[string]string `json:"env"`
	Labels    map[string]string `json:"labels"`
	// Yanked: never chosen by a new resolution (see envreg yank).
	Yanked bool `json:"yanked,omitempty"`
}

// ReleaseLayer is a version's layer for one platform.
type ReleaseLayer struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

func (a *API) listStacks(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	out := StackList{Generation: snap.Generation, Stacks: []StackInfo{}}
	for _, st := range snap.Stacks() {
		out.Stacks = append(out.Stacks, stackInfo(st))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getStack(w http.ResponseWriter, r *http.Request) error {
	snap, st, err := a.stack(r.Context(), mux.Vars(r)["stack"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Generation uint64 `json:"generation"`
		StackInfo
	}{snap.Generation, stackInfo(st)})
	return nil
}

func stackInfo(st catalog.Stack) StackInfo {
	info := StackInfo{Name: st.Name, Base: constraints(st.Base), Latest: constraints(st.Latest),
		Aliases: st.Aliases, Image: st.Image, MaxLayers: st.Limit(), AllowOverlap: st.AllowOverlap}
	if info.Aliases == nil {
		info.Aliases = map[string]string{}
	}
	return info
}

func constraints(cs []catalog.Constraint) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = strings.TrimSpace(c.String())
	}
	return out
}

func (a *API) listPackages(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PackageList{Generation: snap.Generation, Packages: packageSummaries(snap)})
	return nil
}

func packageSummaries(snap *catalog.Snapshot) []PackageSummary {
	out := []PackageSummary{}
	for _, name := range snap.Names() {
		rels := snap.Releases(name)
		ps := PackageSummary{Name: name, Versions: make([]string, len(rels)), Platforms: []string{}}
		for i, rel := range rels {
			ps.Versions[i] = rel.Version.String()
			for _, p := range rel.Platforms() {
				if s := p.String(); !slices.Contains(ps.Platforms, s) {
					ps.Platforms = append(ps.Platforms, s)
				}
			}
		}
		if len(rels) > 0 {
			ps.Latest = newestStable(rels).Version.String()
		}
		slices.Sort(ps.Platforms)
		out = append(out, ps)
	}
	return out
}

// newestStable is the newest release that is not a pre-release (what a
// bare name resolves to), else the newest.
func newestStable(rels []catalog.Release) catalog.Release {
	for _, r := range rels {
		if r.Version.Prerelease() == "" {
			return r
		}
	}
	return rels[0]
}

func (a *API) getPackage(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	out, err := packageDetail(snap, mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// packageDetail describes every version of the package name; an unknown
// name is a *resolver.UnknownPackageError.
func packageDetail(snap *catalog.Snapshot, name string) (PackageDetail, error) {
	rels := snap.Releases(name)
	if len(rels) == 0 {
		e := &resolver.UnknownPackageError{Package: name}
		if names := snap.Names(); len(names) <= 20 {
			e.Known = names
		}
		return PackageDetail{}, e
	}
	out := PackageDetail{Generation: snap.Generation, Name: name, Versions: make([]ReleaseInfo, len(rels))}
	for i, rel := range rels {
		info := ReleaseInfo{
			Version: rel.Version.String(), Published: rel.Published.UTC(),
			Platforms: make([]ReleaseLayer, len(rel.Layers)),
			Requires:  constraints(rel.Requires), Conflicts: constraints(rel.Conflicts),
			Path: nonNil(rel.Env.Path), Env: rel.Env.Vars, Labels: rel.Labels, Yanked: rel.Yanked,
		}
		for j, l := range rel.Layers {
			info.Platforms[j] = ReleaseLayer{Platform: l.Platform.String(), Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType}
		}
		if info.Env == nil {
			info.Env = map[string]string{}
		}
		if info.Labels == nil {
			info.Labels = map[string]string{}
		}
		out.Versions[i] = info
	}
	return out, nil
}
