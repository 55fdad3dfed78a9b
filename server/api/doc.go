// Package api serves envreg's provisioning API under /api/v1: a control
// plane sends a requirement set with full semver ranges ("php": "^8.2"),
// gets back exact versions and a pinned, stored index reference
// (HOST/STACK@sha256:…), and is told precisely why when that is impossible.
// The routes, bodies and error codes are documented in openapi.yaml, served
// at /api/v1/openapi.yaml; a test keeps it and the routes in step.
//
// It is not the pull side (server/registry serves /v2/), and it stores
// nothing of its own: a resolve composes through manifestgen.Composer,
// which stores the configs, manifests and index before the response is
// written, exactly as a pull by tag does.
//
// # Resolve
//
//	POST /api/v1/stacks/env/resolve
//	{"requirements": {"php": "^8.2", "gm": "*", "nodejs": "^20"}, "platforms": ["linux/amd64"]}
//
// The requirements are parsed (aliases expanded), resolved, checked against
// the requested platforms and composed on ONE catalog snapshot, so a publish
// in the middle of a request cannot mix two generations; the answer carries
// that generation. The answer names the selected versions in layer order,
// the index digest and pinned reference (with the host from the request's
// Host header; no X-Forwarded-Host), per reported platform the manifest
// digest, layers and total compressed size, and a tag.
//
// The tag names every selected version exactly, base packages and
// dependencies included ("base-12.0.0_nodejs-20.12.2_php-8.2.36"), and is
// checked by parsing and resolving it on the same snapshot. Pinning every
// package is what keeps the tag meaning this index after later publishes; a
// tag of only the requested packages would float with their dependencies.
// When it would exceed 128 characters, or versions differing only in build
// metadata make it ambiguous (tags cannot carry '+'), the tag is omitted
// and tagOmitted says why.
//
// "platforms" filters what is reported, not what is pinned: every requested
// platform must be common to the selected packages (else 422
// PLATFORM_UNSUPPORTED, naming the releases that lack it), and the pinned
// index still covers all common platforms, so one reference serves a mixed
// fleet and its digest does not depend on who asked.
//
// # From and update policies
//
// "from" is an index digest this registry served before (what a customer
// runs; an OCI index or a Docker manifest list, possibly of another stack,
// which the answer names; only an index a stack composed, Composer.Serves:
// a document stored for an ordinary repository is unknown, 404
// FROM_UNKNOWN, as it is to a pull through a stack). Its
// io.envreg.package.<name> annotations are the versions running now. The answer lists every package that was upgraded, downgraded, added,
// removed or rebuilt, and per platform the layer bytes a node that has the
// from image must download: the layers of the new manifest whose digests
// the from manifest of the same platform does not have. Each layer says
// whether it is one of them (layers[].download).
//
// "policy" (only with from; default "all") narrows each requirement whose
// package from has, ANDed onto every "||" alternative of the range:
//
//	patch  >=8.2.32 <8.3.0     a newer patch of what runs
//	minor  >=8.2.32 <9.0.0     a newer minor or patch, same major
//	none   =8.2.32             what runs
//	all    (unchanged)
//
// Decisions, with their reasons:
//
//   - A requirement that from's version does not satisfy (the customer
//     changed "^8.1" to "^8.2") is an explicit change, not an update: the
//     policy is not applied to it and it resolves as written; its
//     requirements[].policy says so. Applying the policy would make every
//     deliberate change a 422, and for "none" the issue asks exactly this.
//     When from's version satisfies it, the narrowed range always contains
//     that version, so a policy alone never makes a request unsatisfiable;
//     conflicts with new requirements are still reported as 422.
//   - The stack's base packages from has are narrowed too: they are in
//     every image, so constraining them pulls in nothing else, and a
//     "patch" customer should not get a new base minor behind their back.
//   - Packages that are only dependencies of others are not narrowed: a
//     requirement on them would add them even when nothing needs them any
//     more. Name them in the request to constrain them.
//   - The policy may only move versions forward (>=): a downgrade needs an
//     explicit requirement change.
//
// The policy, the changes and the canonical tag are domain rules, written
// in resolver (ApplyPolicy, Changes, CanonicalTag); from's annotations are
// read by manifestgen.ReadComposition, next to Generate, which writes them.
// This package parses the request, calls them on one snapshot and shapes
// the JSON.
//
// # Errors
//
// Handlers return errors; one wrapper maps them with ToError (the only
// place domain errors become API codes), logs them once with the request
// id, and writes {"status","code","message","detail","requestId"}. message
// is the domain error's Error() string, the same line "envreg resolve"
// prints; detail carries the facts (package, constraint, available
// versions, requirement chains). Status codes: 400 malformed body or value
// (unknown fields, trailing data, bad range, platform, digest, policy or
// tag), 403 not allowed, 404 unknown stack, package (also in requirements),
// from digest or route, 405, 413 body over 1 MiB, 415 not JSON, 422 the
// catalog cannot satisfy a well-formed request (unsatisfiable, conflict,
// overlap, environment conflict, no common or unsupported platform,
// nothing to compose, too complex, too many layers, from not an envreg
// index), 500 anything else, with no internal detail.
//
// # Catalog pages
//
// GET / is a server-rendered page (html/template: page.html, drawing.html,
// layout.html; no JavaScript, no build step): stacks, packages, versions
// and platforms, and a GET form whose answer shows the pinned reference,
// the docker pull line, the versions and the platforms, or the
// explanation, and draws each platform's image as a stack of its layers to
// scale (drawing.go). The form also takes a platform, a previous pin (from)
// and an update policy; with from, the drawing marks the layers a node
// must download and the answer totals their bytes. GET /packages/{name}
// (package.html) shows one package: versions newest first with yanked ones
// marked, publish times, layer sizes per platform, requires, conflicts,
// aliases, PATH, env and labels. The form calls the same code as the
// resolve route and is guarded the same way (see Access). The pages are
// not part of the JSON API. Their Content-Security-Policy allows no script
// and no style but their one inline stylesheet (page.css), by its hash; the
// drawings are SVG with presentation attributes, so they need neither.
//
// # Access
//
// With authentication configured (WithAuthorizer, the registry's auth.Auth)
// the API uses the registry's users, tokens and ACL, from any host: the
// catalog routes (stacks, packages, this document, the catalog pages) need
// registry:catalog:*, reading or resolving against stack S needs
// repository:S:pull, and a resolve "from" an image of another stack needs
// pull on that stack too (the answer shows what the image runs). A resolve
// (the route and the page's form) pins what it composes for good, so it
// needs a user even while anonymous pull is on (Authorizer.AuthorizeUser);
// anonymous clients may read what they may pull anyway. Refusals
// are 401 UNAUTHORIZED with the Bearer challenge, or 403 FORBIDDEN. The
// scopes are in openapi.yaml (x-envreg-access), and a test checks them
// against the server's challenges.
//
// Without authentication the API and the page answer only clients on this
// host (LoopbackOnly): a loopback TCP peer (X-Forwarded-For is ignored, so
// a reverse proxy on the same host would make everyone local: do not put
// one in front without authentication), addressing the server as
// localhost or a loopback address (a web page that reached it through DNS
// rebinding names its own host), and not a web page of another origin
// (Origin, Sec-Fetch-Site). The operator's browser is a loopback peer;
// these checks keep the pages it shows from resolving (which stores) or
// reading through it. Only viewing the catalog page and a package page is
// allowed from a link on another site; the form is same-origin.
package api
