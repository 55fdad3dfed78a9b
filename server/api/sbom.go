package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/sbom"
)

// addSBOMs adds each platform's SBOM to prs when the request asked for
// it ("sbom": true): the SPDX document of img's manifest, composed from
// res, and the digest of its artifact, stored and pinned like the
// composition before the answer names it.
func (a *API) addSBOMs(ctx context.Context, want bool, res *resolver.Resolution, img *manifestgen.Image, prs []PlatformResult) error {
	if !want {
		return nil
	}
	for i := range prs {
		p, err := catalog.ParsePlatform(prs[i].Platform)
		if err != nil {
			return err
		}
		art, err := a.composer.StoreSBOM(ctx, res, img, p, true)
		if err != nil {
			return err
		}
		prs[i].SBOM, prs[i].SBOMArtifact = json.RawMessage(art.SBOMData), art.Manifest.Digest.String()
	}
	return nil
}

// getPackageSBOM serves GET /api/v1/packages/{name}/{version}/sbom: the
// SPDX 2.3 document of one package version's layer for one platform (the
// platform query parameter, which may be left out when the version has
// one platform), rendered from what the catalog recorded at publish time.
func (a *API) getPackageSBOM(w http.ResponseWriter, r *http.Request) error {
	snap, err := a.catalog.Snapshot(r.Context())
	if err != nil {
		return err
	}
	name, version := mux.Vars(r)["name"], mux.Vars(r)["version"]
	if _, err := packageDetail(snap, name); err != nil {
		return err // an unknown package, with the known names
	}
	rel, ok := findRelease(snap, name, version)
	if !ok {
		return newError(CodeNotFound, fmt.Sprintf("package %s has no version %q", name, version), nil, nil)
	}
	l, err := layerFor(rel, r.URL.Query().Get("platform"))
	if err != nil {
		return err
	}
	if l.Distro == "" {
		l.Distro = requiredDistro(snap, rel, l.Platform)
	}
	data, err := sbom.Layer(rel, l)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", sbom.MediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

// findRelease finds name's release whose version is version, exactly or
// without build metadata when that is unambiguous.
func findRelease(snap *catalog.Snapshot, name, version string) (catalog.Release, bool) {
	var found []catalog.Release
	for _, rel := range snap.Releases(name) {
		v, _ := rel.Version.SetMetadata("")
		switch version {
		case rel.Version.String():
			return rel, true
		case v.String():
			found = append(found, rel)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return catalog.Release{}, false
}

// layerFor returns rel's layer for the platform p names ("" when rel has
// one platform).
func layerFor(rel catalog.Release, p string) (catalog.Layer, error) {
	var plats []string
	for _, l := range rel.Layers {
		plats = append(plats, l.Platform.String())
		if l.Platform.String() == p || p == "" && len(rel.Layers) == 1 {
			return l, nil
		}
	}
	msg := fmt.Sprintf("%s has no layer for platform %q; its platforms: %s", rel.ID(), p, strings.Join(plats, ", "))
	if p == "" {
		msg = fmt.Sprintf("%s has layers for %s: name one with ?platform=", rel.ID(), strings.Join(plats, ", "))
	}
	return catalog.Layer{}, newError(CodeNotFound, msg, map[string]any{"platforms": plats}, nil)
}

// requiredDistro is the distribution of the newest version of a package
// rel requires whose layer for p names one (its base's os-release): the
// distro of the purls of a layer that has no os-release of its own.
func requiredDistro(snap *catalog.Snapshot, rel catalog.Release, p catalog.Platform) string {
	for _, c := range rel.Requires {
		cs, err := c.Constraints()
		if err != nil {
			continue
		}
		for _, r := range snap.Releases(c.Name) { // newest first
			if l, ok := r.Layer(p); ok && l.Distro != "" && cs.Check(r.Version) {
				return l.Distro
			}
		}
	}
	return ""
}
