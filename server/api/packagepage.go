package api

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/envreg/envreg/catalog"
)

// packagePage is what package.html renders: one package of the catalog,
// the page form of GET /api/v1/packages/{name}.
type packagePage struct {
	Title      string
	Name       string
	Generation uint64
	Error      *pageError
	Latest     string
	Platforms  []string // of any version, sorted: the size columns
	Aliases    []string // "node (stack env)"
	BaseOf     []string // stacks that put it in every image
	Yanked     int
	BarMax     int // px of the largest layer's size bar
	Versions   []versionRow
}

// versionRow is one version: a row of the versions table and its details.
type versionRow struct {
	Version       string
	Yanked        bool
	PublishedISO  string
	PublishedText string
	Cells         []sizeCell // one per packagePage.Platforms
	Requires      []string
	Conflicts     []string
	Path          []string
	Layers        []ReleaseLayer
	Env, Labels   []fact
}

// sizeCell is a version's layer size on one platform, and its bar.
type sizeCell struct {
	Present bool
	Size    int64
	Bar     int // px, at most packagePage.BarMax
}

const sizeBarMax = 80

// packagePage serves GET /packages/{name}. An unknown package is a 404
// page that says so.
func (a *API) packagePage(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	name := mux.Vars(r)["name"]
	p := packagePage{Title: name + " — envreg catalog", Name: name, Generation: snap.Generation, BarMax: sizeBarMax}
	detail, err := packageDetail(snap, name)
	if err != nil {
		e := ToError(err)
		p.Error = &pageError{Title: "Unknown package", Code: e.Code, Message: e.Message, Facts: facts(e.Detail)}
		return writePage(w, r, e.Status, "package", p)
	}
	for _, st := range snap.Stacks() {
		for _, alias := range slices.Sorted(maps.Keys(st.Aliases)) {
			if st.Aliases[alias] == name {
				p.Aliases = append(p.Aliases, alias+" (stack "+st.Name+")")
			}
		}
		if slices.ContainsFunc(st.Base, func(c catalog.Constraint) bool { return c.Name == name }) {
			p.BaseOf = append(p.BaseOf, st.Name)
		}
	}
	p.Latest = newestStable(snap.Releases(name)).Version.String()
	p.Platforms, p.Versions = versionRows(detail)
	for _, v := range p.Versions {
		if v.Yanked {
			p.Yanked++
		}
	}
	return writePage(w, r, http.StatusOK, "package", p)
}

// versionRows lays out detail's versions (newest first, as given) with a
// size column per platform; the size bars share one scale, the largest
// layer taking sizeBarMax pixels.
func versionRows(detail PackageDetail) ([]string, []versionRow) {
	var (
		plats   []string
		largest int64
	)
	for _, v := range detail.Versions {
		for _, l := range v.Platforms {
			if !slices.Contains(plats, l.Platform) {
				plats = append(plats, l.Platform)
			}
			largest = max(largest, l.Size)
		}
	}
	slices.Sort(plats)
	rows := make([]versionRow, len(detail.Versions))
	for i, v := range detail.Versions {
		row := versionRow{Version: v.Version, Yanked: v.Yanked,
			PublishedISO: v.Published.UTC().Format(time.RFC3339), PublishedText: v.Published.UTC().Format("2006-01-02 15:04"),
			Requires: v.Requires, Conflicts: v.Conflicts, Path: v.Path, Layers: v.Platforms,
			Env: mapFacts(v.Env), Labels: mapFacts(v.Labels), Cells: make([]sizeCell, len(plats))}
		for _, l := range v.Platforms {
			c := sizeCell{Present: true, Size: l.Size, Bar: 1}
			if largest > 0 {
				c.Bar = max(1, int(math.Round(float64(l.Size)/float64(largest)*sizeBarMax)))
			}
			row.Cells[slices.Index(plats, l.Platform)] = c
		}
		rows[i] = row
	}
	return plats, rows
}

// mapFacts lists m sorted by key.
func mapFacts(m map[string]string) []fact {
	out := make([]fact, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fact{k, m[k]})
	}
	return out
}
