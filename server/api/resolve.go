package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
	"github.com/envreg/envreg/server/registry"
)

// Update policies for a resolve with "from" (see the package documentation).
const (
	PolicyAll   = string(resolver.PolicyAll)   // any version the requirement allows
	PolicyMinor = string(resolver.PolicyMinor) // a newer minor or patch within from's major version
	PolicyPatch = string(resolver.PolicyPatch) // a newer patch within from's major.minor
	PolicyNone  = string(resolver.PolicyNone)  // from's version, as long as it satisfies the requirement
)

// ResolveRequest is the body of POST /api/v1/stacks/{stack}/resolve.
type ResolveRequest struct {
	// Requirements map a package name (or an alias of the stack) to a
	// Masterminds semver range: "^8.2", ">=18 <21", "*".
	Requirements map[string]string `json:"requirements,omitempty"`
	// Tag is the alternative to Requirements: a tag such as
	// "php-8.2_node-20", resolved exactly as a pull of that tag would be.
	Tag string `json:"tag,omitempty"`
	// Platforms, when given, must all be supported by the resolution; the
	// response then reports only them. The pinned index always covers
	// every platform common to the selected packages.
	Platforms []string `json:"platforms,omitempty"`
	// From is the digest of an index this registry served before (what a
	// customer runs now). The response then says what changes.
	From string `json:"from,omitempty"`
	// Policy bounds how far requirements may move from From: none, patch,
	// minor or all (the default). Only "all" is accepted without From.
	Policy string `json:"policy,omitempty"`
	// SBOM asks for each reported platform's SBOM in the answer (and
	// stores its artifact, pinned, before answering).
	SBOM bool `json:"sbom,omitempty"`
}

// ResolveResponse is the answer to a resolve: exact versions and the
// pinned, stored index.
type ResolveResponse struct {
	Stack string `json:"stack"`
	// Generation is the catalog generation everything was resolved against.
	Generation uint64 `json:"generation"`
	// Digest of the OCI index; it is stored, so Reference can be pulled
	// for as long as the registry's data is kept.
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Reference is HOST/STACK@DIGEST with the host the request was sent to.
	Reference string `json:"reference"`
	// Tag names exactly the selected versions (every package, base
	// included), so it resolves to the same index as long as nobody force-
	// publishes over a version; TagReference is HOST/STACK:TAG. When no
	// such tag exists, both are omitted and TagOmitted says why.
	Tag          string `json:"tag,omitempty"`
	TagReference string `json:"tagReference,omitempty"`
	TagOmitted   string `json:"tagOmitted,omitempty"`
	// Requirements as resolved: canonical names, the constraint asked for,
	// and the effective constraint after the update policy.
	Requirements []RequirementResult `json:"requirements"`
	// Packages are the selected versions in layer order.
	Packages []PackageVersion `json:"packages"`
	// Platforms reported: the requested ones, else all of IndexPlatforms.
	Platforms []PlatformResult `json:"platforms"`
	// IndexPlatforms are the platforms in the pinned index.
	IndexPlatforms []string `json:"indexPlatforms"`
	// From is present when the request had "from".
	From *FromResult `json:"from,omitempty"`
}

// RequirementResult is one requirement of the request, after aliases and
// the update policy.
type RequirementResult struct {
	Name string `json:"name"`
	// Constraint as requested ("*" for any version, the stack's range for
	// a base package the policy constrains).
	Constraint string `json:"constraint"`
	// Effective is what was resolved: Constraint, narrowed by the policy.
	Effective string `json:"effective"`
	// Policy explains what the update policy did to this requirement.
	Policy string `json:"policy,omitempty"`
	// Base is true for a stack base package added to carry the policy.
	Base bool `json:"base,omitempty"`
}

// PackageVersion is a package and its exact version.
type PackageVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// PlatformResult is the pinned image for one platform.
type PlatformResult struct {
	Platform string `json:"platform"`
	// Digest of the platform's manifest.
	Digest string `json:"digest"`
	// Size is the total size of the layers in the form the stack serves
	// them (compressed, unless its layerCompression is none).
	Size   int64         `json:"size"`
	Layers []LayerResult `json:"layers"`
	// Download is present with "from": what a node that has the from
	// image must fetch.
	Download *Download `json:"download,omitempty"`
	// SBOM is present with "sbom": the platform manifest's SPDX 2.3
	// document, the one its SBOM artifact (SBOMArtifact, listed by GET
	// /v2/STACK/referrers/DIGEST) carries.
	SBOM         json.RawMessage `json:"sbom,omitempty"`
	SBOMArtifact string          `json:"sbomArtifact,omitempty"`
}

// LayerResult is one layer of a manifest.
type LayerResult struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
	// Download is present with "from": true for the layers the platform's
	// Download counts (a node that has the from image fetches them),
	// false for those it already has.
	Download *bool `json:"download,omitempty"`
}

// Download is what changes on the wire between the from image and the new
// one on a platform: the layers of the new manifest whose digests the from
// manifest of the same platform does not have (all of them when from has
// no manifest for the platform). Configs and manifests, a few KiB, are not
// counted.
type Download struct {
	Size   int64 `json:"size"`
	Layers int   `json:"layers"`
	// FromManifest is the from image's manifest for this platform, empty
	// when it had none.
	FromManifest string `json:"fromManifest,omitempty"`
	// Prefetch lists the blobs counted in Layers and Size, in manifest
	// order: what a platform fetches before it switches the node, so that
	// only starting the container is left (see docs/api.md, Prefetch).
	Prefetch []PrefetchBlob `json:"prefetch"`
}

// PrefetchBlob is one layer blob a node must download.
type PrefetchBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// URL is the blob's path on this registry (/v2/STACK/blobs/DIGEST),
	// relative to the registry's address in the response's reference.
	URL string `json:"url"`
}

// prefetch lists the layers marked for download.
func prefetch(stack string, layers []LayerResult) []PrefetchBlob {
	out := []PrefetchBlob{}
	for _, l := range layers {
		if l.Download != nil && *l.Download {
			out = append(out, PrefetchBlob{Digest: l.Digest, Size: l.Size, URL: "/v2/" + stack + "/blobs/" + l.Digest})
		}
	}
	return out
}

// FromResult describes the from image and the changes.
type FromResult struct {
	Digest string `json:"digest"`
	// Stack is the stack the from image was composed for.
	Stack    string           `json:"stack,omitempty"`
	Policy   string           `json:"policy"`
	Packages []PackageVersion `json:"packages"`
	// Changes lists every package whose version differs, by name.
	Changes []Change `json:"changes"`
}

// Change is one package that differs between from and the new resolution.
type Change struct {
	Package string `json:"package"`
	// Change is "upgraded", "downgraded", "added", "removed" or "rebuilt"
	// (same version, other build metadata).
	Change string `json:"change"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	// Reason, for a rebuild, says which Debian packages of the layer
	// changed, e.g. "libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1".
	Reason string `json:"reason,omitempty"`
}

// resolve serves POST /api/v1/stacks/{stack}/resolve. One snapshot is used
// for parsing, policy, resolution, the canonical tag and composition, so a
// concurrent publish can never mix two catalog generations in one answer.
func (a *API) resolve(w http.ResponseWriter, r *http.Request) error {
	var in ResolveRequest
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	out, err := a.resolveRequest(r, mux.Vars(r)["stack"], in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// resolveRequest answers in for the named stack; r's Host goes into the
// references. The catalog page uses it too.
func (a *API) resolveRequest(r *http.Request, stackName string, in ResolveRequest) (*ResolveResponse, error) {
	ctx := r.Context()
	plats, fromDigest, policy, err := checkRequest(in)
	if err != nil {
		return nil, err
	}
	snap, st, err := a.stack(ctx, stackName)
	if err != nil {
		return nil, err
	}
	req, err := request(in, st, resolver.StackNames(snap, st))
	if err != nil {
		return nil, err
	}
	var from *fromImage
	if fromDigest != "" {
		if from, err = a.from(r, snap, st, fromDigest); err != nil {
			return nil, err
		}
	}
	eff, reqs, err := resolver.ApplyPolicy(req, snap, st, from.versions(), resolver.Policy(policy))
	if err != nil {
		return nil, err
	}
	res, err := resolver.Resolve(snap, st, eff)
	if err != nil {
		return nil, err
	}
	reported, err := selectPlatforms(res, plats)
	if err != nil {
		return nil, err
	}
	img, err := a.composePinned(ctx, snap, st, eff)
	if err != nil {
		return nil, err
	}
	out := newResponse(r.Host, snap, st, res, img, reqs)
	if out.Platforms, err = a.platforms(ctx, out.Digest, img, res, reported, from); err != nil {
		return nil, err
	}
	if err := a.addSBOMs(ctx, in.SBOM, res, img, out.Platforms); err != nil {
		return nil, err
	}
	if from != nil {
		out.From = &FromResult{Digest: from.digest.String(), Stack: from.Stack, Policy: policy,
			Packages: from.packages(), Changes: changes(from.Versions, res.Releases)}
	}
	return out, nil
}

// composePinned composes eff and pins the index. Compose stores the
// configs, manifests and index before it returns, so the reference in the
// response can be pulled at once. It resolves eff again on the same
// snapshot, which gives the caller's resolution again (Resolve is pure);
// its per-generation cache makes repeated identical requests free. A
// platform stores the reference and pulls it for as long as the
// environment lives: pinned compositions are never collected by gc.
func (a *API) composePinned(ctx context.Context, snap *catalog.Snapshot, st catalog.Stack, eff resolver.Request) (*manifestgen.Image, error) {
	img, err := a.composer.Compose(ctx, snap, st, eff, manifestgen.FormatOCI)
	if err != nil {
		return nil, err
	}
	if err := a.composer.Pin(ctx, st.Name, img); err != nil {
		return nil, err
	}
	return img, nil
}

// newResponse is the answer for res composed as img, without platforms
// and from.
func newResponse(host string, snap *catalog.Snapshot, st catalog.Stack, res *resolver.Resolution, img *manifestgen.Image, reqs []resolver.EffectiveRequirement) *ResolveResponse {
	out := &ResolveResponse{
		Stack:          st.Name,
		Generation:     snap.Generation,
		Digest:         img.Index.Descriptor.Digest.String(),
		MediaType:      img.Index.Descriptor.MediaType,
		Requirements:   make([]RequirementResult, len(reqs)),
		Packages:       make([]PackageVersion, len(res.Releases)),
		IndexPlatforms: make([]string, len(res.Platforms)),
	}
	out.Reference = reference(host, st.Name) + "@" + out.Digest
	if out.Tag, out.TagOmitted = resolver.CanonicalTag(snap, st, res); out.Tag != "" {
		out.TagReference = reference(host, st.Name) + ":" + out.Tag
	}
	for i, r := range reqs {
		out.Requirements[i] = RequirementResult{Name: r.Name, Constraint: r.Constraint, Effective: r.Effective, Policy: r.Note, Base: r.Base}
	}
	for i, rel := range res.Releases {
		out.Packages[i] = PackageVersion{rel.Name, rel.Version.String()}
	}
	for i, p := range res.Platforms {
		out.IndexPlatforms[i] = p.String()
	}
	return out
}

// platforms describes the manifest of img for each reported platform, and
// with from what a node that runs from downloads.
func (a *API) platforms(ctx context.Context, index string, img *manifestgen.Image, res *resolver.Resolution, reported []catalog.Platform, from *fromImage) ([]PlatformResult, error) {
	var out []PlatformResult
	for _, p := range reported {
		m, ok := img.Manifest(p)
		if !ok {
			return nil, fmt.Errorf("composed index %s has no manifest for %s", index, p)
		}
		pr := PlatformResult{Platform: p.String(), Digest: m.Descriptor.Digest.String(), Layers: make([]LayerResult, len(res.Releases))}
		for i, rel := range res.Releases {
			l, _ := rel.Layer(p)
			d := manifestgen.LayerDescriptor(res.Stack, l, manifestgen.FormatOCI) // the form the stack serves
			pr.Layers[i] = LayerResult{Package: rel.Name, Version: rel.Version.String(), Digest: d.Digest.String(), Size: d.Size, MediaType: d.MediaType}
			pr.Size += d.Size
		}
		if from != nil {
			var err error
			if pr.Download, err = a.download(ctx, from, p, pr.Layers); err != nil {
				return nil, err
			}
			pr.Download.Prefetch = prefetch(res.Stack.Name, pr.Layers)
		}
		out = append(out, pr)
	}
	return out, nil
}

// changes is resolver.Changes in the API's form.
func changes(running map[string]*semver.Version, rels []catalog.Release) []Change {
	cs := resolver.Changes(running, rels)
	out := make([]Change, len(cs))
	for i, c := range cs {
		out[i] = Change{Package: c.Package, Change: c.Kind, From: c.From, To: c.To, Reason: c.Reason}
	}
	return out
}

// reference is HOST/STACK, or STACK when the request named no host.
func reference(host, stack string) string {
	if host == "" {
		return stack
	}
	return host + "/" + stack
}

// stack reads one snapshot and finds the stack in it.
func (a *API) stack(ctx context.Context, name string) (*catalog.Snapshot, catalog.Stack, error) {
	snap, err := a.catalog.Snapshot(ctx)
	if err != nil {
		return nil, catalog.Stack{}, fmt.Errorf("reading catalog: %w", err)
	}
	st, ok := snap.Stack(name)
	if !ok {
		e := &stackUnknownError{name: name}
		for _, s := range snap.Stacks() {
			e.known = append(e.known, s.Name)
		}
		return nil, catalog.Stack{}, e
	}
	return snap, st, nil
}

// checkRequest validates what does not depend on the catalog.
func checkRequest(in ResolveRequest) (plats []catalog.Platform, from digest.Digest, policy string, err error) {
	if in.Tag != "" && len(in.Requirements) > 0 {
		return nil, "", "", badRequest(nil, "give either requirements or tag, not both")
	}
	for _, s := range in.Platforms {
		p, err := catalog.ParsePlatform(s)
		if err != nil {
			return nil, "", "", badRequest(err, "platforms: %v", err)
		}
		if !slices.Contains(plats, p) {
			plats = append(plats, p)
		}
	}
	if in.From != "" {
		if from, err = digest.Parse(in.From); err != nil {
			return nil, "", "", badRequest(err, "from: %q is not a digest such as sha256:<64 hex digits>: %v", in.From, err)
		}
	}
	switch policy = in.Policy; policy {
	case "":
		policy = PolicyAll
	case PolicyAll:
	case PolicyNone, PolicyPatch, PolicyMinor:
		if from == "" {
			return nil, "", "", badRequest(nil, "policy %q needs from: the digest of the index the policy is relative to", policy)
		}
	default:
		return nil, "", "", badRequest(nil, "policy %q: want none, patch, minor or all", policy)
	}
	return plats, from, policy, nil
}

// request parses the requirements (or the tag) into the canonical request.
// Unknown names are *resolver.UnknownPackageError (404); malformed input is
// a bad request.
func request(in ResolveRequest, st catalog.Stack, names resolver.Names) (resolver.Request, error) {
	if in.Tag != "" {
		return resolver.ParseTag(in.Tag, st, names)
	}
	reqs := make([]resolver.Requirement, 0, len(in.Requirements))
	for _, name := range slices.Sorted(maps.Keys(in.Requirements)) {
		rng := strings.TrimSpace(in.Requirements[name])
		if err := catalog.ValidateName(name); err != nil {
			return resolver.Request{}, badRequest(err, "requirements: %v", err)
		}
		if rng == "" {
			return resolver.Request{}, badRequest(nil, "requirements: empty version range for %s; use \"*\" for any version", name)
		}
		req, err := resolver.ParseRequirement(name+"="+rng, names)
		var unknown *resolver.UnknownPackageError
		switch {
		case errors.As(err, &unknown):
			return resolver.Request{}, err
		case err != nil:
			return resolver.Request{}, badRequest(err, "requirements: %v", err)
		}
		reqs = append(reqs, req)
	}
	req, err := resolver.NewRequest(st.Name, reqs)
	if err != nil {
		return resolver.Request{}, badRequest(err, "requirements: %v", err)
	}
	return req, nil
}

// fromImage is what a stored index says about the image a customer runs.
type fromImage struct {
	digest digest.Digest
	*manifestgen.Composition
}

// versions is what runs: package -> version, nil without from.
func (f *fromImage) versions() map[string]*semver.Version {
	if f == nil {
		return nil
	}
	return f.Versions
}

func (f *fromImage) packages() []PackageVersion {
	out := make([]PackageVersion, 0, len(f.Versions))
	for _, name := range slices.Sorted(maps.Keys(f.Versions)) {
		out = append(out, PackageVersion{name, f.Versions[name].Original()})
	}
	return out
}

// from loads the from image d for a resolve against st. Only an index a
// stack composed can be one (Composer.Serves, as for a pull by digest
// through the stack): anything else, a document pushed to an ordinary
// repository included, is unknown, so that the answer neither shows what
// another repository holds nor says whether it holds d. The answer shows
// what from runs, so with authentication the client must be allowed to
// pull the stack that composed it, as the stack asked.
func (a *API) from(r *http.Request, snap *catalog.Snapshot, st catalog.Stack, d digest.Digest) (*fromImage, error) {
	owner := ""
	for _, cand := range append([]catalog.Stack{st}, snap.Stacks()...) {
		ok, err := a.composer.Serves(r.Context(), snap, cand.Name, d)
		if err != nil {
			return nil, fmt.Errorf("looking up from index %s: %w", d, err)
		}
		if ok {
			owner = cand.Name
			break
		}
	}
	if owner == "" {
		return nil, &fromUnknownError{digest: d}
	}
	if a.auth != nil && owner != st.Name {
		if err := a.auth.AuthorizeUser(r, []registry.Access{pullAccess(owner)}); err != nil {
			return nil, err
		}
	}
	return a.loadFrom(r.Context(), d)
}

// loadFrom reads a stored index and what its annotations say it runs.
func (a *API) loadFrom(ctx context.Context, d digest.Digest) (*fromImage, error) {
	doc, err := a.docs.Document(ctx, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, &fromUnknownError{digest: d}
	}
	if err != nil {
		return nil, fmt.Errorf("reading from index %s: %w", d, err)
	}
	c, err := manifestgen.ReadComposition(doc.Data, doc.MediaType)
	var notComposed *manifestgen.NotComposedError
	if errors.As(err, &notComposed) {
		return nil, &fromInvalidError{digest: d, reason: notComposed.Reason}
	}
	if err != nil {
		return nil, err
	}
	return &fromImage{digest: d, Composition: c}, nil
}

// selectPlatforms checks that every requested platform is in the
// resolution and returns the platforms to report, sorted.
func selectPlatforms(res *resolver.Resolution, requested []catalog.Platform) ([]catalog.Platform, error) {
	if len(requested) == 0 {
		return res.Platforms, nil
	}
	for _, p := range requested {
		if slices.Contains(res.Platforms, p) {
			continue
		}
		e := &PlatformError{Platform: p.String()}
		for _, q := range res.Platforms {
			e.Available = append(e.Available, q.String())
		}
		for _, rel := range res.Releases {
			if _, ok := rel.Layer(p); !ok {
				e.Missing = append(e.Missing, rel.ID())
			}
		}
		return nil, e
	}
	out := slices.Clone(requested)
	slices.SortFunc(out, func(a, b catalog.Platform) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// download computes what a node with the from image fetches on p, and
// marks each of layers as fetched or not.
func (a *API) download(ctx context.Context, from *fromImage, p catalog.Platform, layers []LayerResult) (*Download, error) {
	have := map[string]bool{}
	d := &Download{}
	if md, ok := from.Manifests[p]; ok {
		d.FromManifest = md.String()
		doc, err := a.docs.Document(ctx, md)
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s of from index %s: %w", md, from.digest, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(doc.Data, &m); err != nil {
			return nil, fmt.Errorf("parsing manifest %s of from index %s: %w", md, from.digest, err)
		}
		for _, l := range m.Layers {
			have[l.Digest.String()] = true
		}
	}
	for i, l := range layers {
		fetch := !have[l.Digest]
		if fetch {
			have[l.Digest] = true // a blob is fetched once
			d.Size += l.Size
			d.Layers++
		}
		layers[i].Download = &fetch
	}
	return d, nil
}
