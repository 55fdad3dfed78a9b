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
	PolicyAll   = "all"   // any version the requirement allows
	PolicyMinor = "minor" // a newer minor or patch within from's major version
	PolicyPatch = "patch" // a newer patch within from's major.minor
	PolicyNone  = "none"  // from's version, as long as it satisfies the requirement
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
	// Size is the total compressed size of the layers.
	Size   int64         `json:"size"`
	Layers []LayerResult `json:"layers"`
	// Download is present with "from": what a node that has the from
	// image must fetch.
	Download *Download `json:"download,omitempty"`
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
	ctx, host := r.Context(), r.Host
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
	eff, reqs, err := applyPolicy(req, snap, st, from, policy)
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
	// Compose stores the configs, manifests and index before it returns, so
	// the reference in the response can be pulled at once. It resolves eff
	// again on the same snapshot, which gives res again (Resolve is pure);
	// its per-generation cache makes repeated identical requests free.
	img, err := a.composer.Compose(ctx, snap, st, eff, manifestgen.FormatOCI)
	if err != nil {
		return nil, err
	}
	// A platform stores the reference and pulls it for as long as the
	// environment lives: pinned compositions are never collected by gc.
	if err := a.composer.Pin(ctx, st.Name, img); err != nil {
		return nil, err
	}

	out := &ResolveResponse{
		Stack:          st.Name,
		Generation:     snap.Generation,
		Digest:         img.Index.Descriptor.Digest.String(),
		MediaType:      img.Index.Descriptor.MediaType,
		Requirements:   reqs,
		Packages:       make([]PackageVersion, len(res.Releases)),
		IndexPlatforms: make([]string, len(res.Platforms)),
	}
	out.Reference = reference(host, st.Name) + "@" + out.Digest
	if out.Tag, out.TagOmitted = canonicalTag(snap, st, res); out.Tag != "" {
		out.TagReference = reference(host, st.Name) + ":" + out.Tag
	}
	for i, rel := range res.Releases {
		out.Packages[i] = PackageVersion{rel.Name, rel.Version.String()}
	}
	for i, p := range res.Platforms {
		out.IndexPlatforms[i] = p.String()
	}
	for _, p := range reported {
		m, ok := img.Manifest(p)
		if !ok {
			return nil, fmt.Errorf("composed index %s has no manifest for %s", out.Digest, p)
		}
		pr := PlatformResult{Platform: p.String(), Digest: m.Descriptor.Digest.String(), Layers: make([]LayerResult, len(res.Releases))}
		for i, rel := range res.Releases {
			l, _ := rel.Layer(p)
			pr.Layers[i] = LayerResult{Package: rel.Name, Version: rel.Version.String(), Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType}
			pr.Size += l.Size
		}
		if from != nil {
			if pr.Download, err = a.download(ctx, from, p, pr.Layers); err != nil {
				return nil, err
			}
		}
		out.Platforms = append(out.Platforms, pr)
	}
	if from != nil {
		out.From = &FromResult{Digest: from.digest.String(), Stack: from.stack, Policy: policy,
			Packages: from.packages(), Changes: changes(from, res.Releases)}
	}
	return out, nil
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
	digest    digest.Digest
	stack     string
	versions  map[string]*semver.Version // package -> version
	manifests map[string]digest.Digest   // platform -> manifest digest
}

func (f *fromImage) packages() []PackageVersion {
	out := make([]PackageVersion, 0, len(f.versions))
	for _, name := range slices.Sorted(maps.Keys(f.versions)) {
		out = append(out, PackageVersion{name, f.versions[name].Original()})
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

// loadFrom reads a stored index and its io.envreg.package.* annotations.
func (a *API) loadFrom(ctx context.Context, d digest.Digest) (*fromImage, error) {
	doc, err := a.docs.Document(ctx, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, &fromUnknownError{digest: d}
	}
	if err != nil {
		return nil, fmt.Errorf("reading from index %s: %w", d, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(doc.Data, &idx); err != nil {
		return nil, &fromInvalidError{digest: d, reason: "it is not JSON"}
	}
	mt := idx.MediaType
	if mt == "" {
		mt = doc.MediaType
	}
	if mt != ocispec.MediaTypeImageIndex && mt != manifestgen.MediaTypeDockerManifestList {
		return nil, &fromInvalidError{digest: d, reason: fmt.Sprintf("it is a %s, not an image index (use the index digest, the one a pinned reference names)", mt)}
	}
	f := &fromImage{digest: d, stack: idx.Annotations[manifestgen.KeyStack],
		versions: map[string]*semver.Version{}, manifests: map[string]digest.Digest{}}
	for k, v := range idx.Annotations {
		name, ok := strings.CutPrefix(k, manifestgen.KeyPackagePrefix)
		if !ok {
			continue
		}
		ver, err := semver.StrictNewVersion(v)
		if err != nil {
			return nil, &fromInvalidError{digest: d, reason: fmt.Sprintf("annotation %s=%q is not a version", k, v)}
		}
		f.versions[name] = ver
	}
	if len(f.versions) == 0 {
		return nil, &fromInvalidError{digest: d, reason: "it has no " + manifestgen.KeyPackagePrefix + "* annotations"}
	}
	for _, m := range idx.Manifests {
		if p := m.Platform; p != nil {
			f.manifests[catalog.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}.String()] = m.Digest
		}
	}
	return f, nil
}

// applyPolicy narrows each requirement of req whose package from has to
// the versions the policy allows, as long as from's version satisfies the
// requirement: the policy governs updates of what runs, and a requirement
// that excludes what runs is an explicit change, resolved as asked. The
// stack's base packages from has are constrained the same way (they are in
// every image, so a requirement on them adds nothing else). Packages that
// are only pulled in by others' requirements are not constrained.
func applyPolicy(req resolver.Request, snap *catalog.Snapshot, st catalog.Stack, from *fromImage, policy string) (resolver.Request, []RequirementResult, error) {
	var (
		reqs  = make([]resolver.Requirement, 0, len(req.Requirements))
		views = make([]RequirementResult, 0, len(req.Requirements))
	)
	narrow := func(r resolver.Requirement, base bool) error {
		view := RequirementResult{Name: r.Name, Constraint: r.Spelling, Effective: r.Spelling, Base: base}
		if v, ok := from.version(r.Name); ok && policy != PolicyAll {
			if !r.Range.Check(v) {
				if base {
					return nil
				}
				view.Policy = fmt.Sprintf("%s not applied: %s %s (from) does not satisfy %s, so the requirement was changed on purpose", policy, r.Name, v.Original(), r.Spelling)
			} else {
				bound := policyRange(policy, v)
				spelling := and(r.Spelling, bound)
				rng, err := semver.NewConstraint(spelling)
				if err != nil {
					return fmt.Errorf("policy %s for %s: range %q: %w", policy, r.Name, spelling, err)
				}
				r = resolver.Requirement{Name: r.Name, Range: rng, Spelling: spelling}
				view.Effective = spelling
				view.Policy = fmt.Sprintf("%s from %s: %s", policy, v.Original(), bound)
			}
		} else if base {
			return nil
		}
		reqs = append(reqs, r)
		views = append(views, view)
		return nil
	}
	for _, r := range req.Requirements {
		if err := narrow(r, false); err != nil {
			return resolver.Request{}, nil, err
		}
	}
	if from != nil && policy != PolicyAll {
		for _, c := range st.Base {
			if len(snap.Releases(c.Name)) == 0 || slices.ContainsFunc(reqs, func(r resolver.Requirement) bool { return r.Name == c.Name }) {
				continue
			}
			rng, err := semver.NewConstraint(c.Range)
			if err != nil {
				continue // Resolve reports the stack's broken range
			}
			if err := narrow(resolver.Requirement{Name: c.Name, Range: rng, Spelling: c.Range}, true); err != nil {
				return resolver.Request{}, nil, err
			}
		}
	}
	if len(reqs) == len(req.Requirements) && policy == PolicyAll {
		return req, views, nil
	}
	eff, err := resolver.NewRequest(st.Name, reqs)
	if err != nil {
		return resolver.Request{}, nil, err
	}
	slices.SortFunc(views, func(a, b RequirementResult) int { return strings.Compare(a.Name, b.Name) })
	return eff, views, nil
}

func (f *fromImage) version(name string) (*semver.Version, bool) {
	if f == nil {
		return nil, false
	}
	v, ok := f.versions[name]
	return v, ok
}

// policyRange is the range policy allows relative to v:
//
//	none   =8.2.32
//	patch  >=8.2.32 <8.3.0
//	minor  >=8.2.32 <9.0.0
func policyRange(policy string, v *semver.Version) string {
	core, _ := v.SetMetadata("")
	switch policy {
	case PolicyNone:
		return "=" + core.String()
	case PolicyPatch:
		return fmt.Sprintf(">=%s <%d.%d.0", core.String(), v.Major(), v.Minor()+1)
	case PolicyMinor:
		return fmt.Sprintf(">=%s <%d.0.0", core.String(), v.Major()+1)
	}
	return "*"
}

// and intersects a Masterminds range with bound (an AND of comparisons):
// bound is appended to every "||" alternative, so "^7 || ^8" and
// ">=8.2.32 <8.3.0" give "^7, >=8.2.32 <8.3.0 || ^8, >=8.2.32 <8.3.0".
func and(rng, bound string) string {
	if s := strings.TrimSpace(rng); s == "*" || s == "" {
		return bound
	}
	alts := strings.Split(rng, "||")
	for i, alt := range alts {
		alts[i] = strings.TrimSpace(alt) + ", " + bound
	}
	return strings.Join(alts, " || ")
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

// canonicalTag returns the tag that names every selected version exactly
// (build metadata dropped: tags cannot carry '+'), checked by parsing and
// resolving it against the same snapshot. Pinning every package, base and
// dependencies included, is what makes the tag keep meaning this index
// after later publishes. When there is no such tag it returns the reason.
func canonicalTag(snap *catalog.Snapshot, st catalog.Stack, res *resolver.Resolution) (tag, omitted string) {
	rels := slices.Clone(res.Releases)
	slices.SortFunc(rels, func(a, b catalog.Release) int { return strings.Compare(a.Name, b.Name) })
	comps := make([]string, len(rels))
	for i, rel := range rels {
		v, _ := rel.Version.SetMetadata("")
		comps[i] = rel.Name + "-" + v.String()
	}
	tag = strings.Join(comps, "_")
	if len(tag) > resolver.MaxTagLength {
		return "", fmt.Sprintf("a tag naming the %d selected versions would be %d characters long; tags are limited to %d", len(rels), len(tag), resolver.MaxTagLength)
	}
	req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
	if err != nil {
		return "", fmt.Sprintf("the versions cannot be spelled as a tag: %v", err)
	}
	again, err := resolver.Resolve(snap, st, req)
	if err != nil {
		return "", fmt.Sprintf("tag %s does not resolve: %v", tag, err)
	}
	if !slices.EqualFunc(again.Releases, res.Releases, func(a, b catalog.Release) bool {
		return a.Name == b.Name && a.Version.String() == b.Version.String()
	}) {
		ids := make([]string, len(again.Releases))
		for i, rel := range again.Releases {
			ids[i] = rel.ID()
		}
		return "", fmt.Sprintf("tag %s would select %s (versions that differ only in build metadata cannot be told apart in a tag)", tag, strings.Join(ids, ", "))
	}
	return tag, ""
}

// download computes what a node with the from image fetches on p, and
// marks each of layers as fetched or not.
func (a *API) download(ctx context.Context, from *fromImage, p catalog.Platform, layers []LayerResult) (*Download, error) {
	have := map[string]bool{}
	d := &Download{}
	if md, ok := from.manifests[p.String()]; ok {
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

// changes lists the packages whose versions differ, by name.
func changes(from *fromImage, rels []catalog.Release) []Change {
	now := make(map[string]*semver.Version, len(rels))
	for _, r := range rels {
		now[r.Name] = r.Version
	}
	names := slices.Sorted(maps.Keys(now))
	for name := range from.versions {
		if _, ok := now[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := []Change{}
	for _, name := range names {
		old, hadOld := from.versions[name]
		cur, hasCur := now[name]
		c := Change{Package: name}
		if hadOld {
			c.From = old.Original()
		}
		if hasCur {
			c.To = cur.String()
		}
		switch {
		case !hadOld:
			c.Change = "added"
		case !hasCur:
			c.Change = "removed"
		case old.Compare(cur) < 0:
			c.Change = "upgraded"
		case old.Compare(cur) > 0:
			c.Change = "downgraded"
		case c.From != c.To:
			c.Change = "rebuilt"
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}
