package api

import (
	"context"
	"encoding/json"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
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

