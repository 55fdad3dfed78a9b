// Package resolver turns what a client asks for — a tag such as
// "php-8.2_node-20", or API requirements such as "php=^8.2" — into exact
// package versions from an immutable catalog snapshot, and explains with
// typed errors when that is impossible.
//
// It is pure: no I/O, no clock, no context, no logging, no package state.
// The same snapshot, stack and request always give the same Resolution or
// the same error, byte for byte. It does not build images (manifestgen
// does), know HTTP status codes (server/registry and server/api map the
// errors below), or cache (the caller keys its cache on the snapshot
// generation and Request.Key).
//
// # Tags
//
// A tag is a set of components separated by '_':
//
//	tag       := component ("_" component)*      at most 128 characters, OCI [a-zA-Z0-9_][a-zA-Z0-9._-]*
//	component := name ["-" version]
//	version   := MAJOR ["." MINOR ["." PATCH ["-" PRERELEASE]]]
//
// A version is a prefix and means "the newest stable version with that
// prefix": php-8 is >=8.0.0 <9.0.0, php-8.2 is 8.2.x, php-8.2.36 is exactly
// 8.2.36. A full version may name a pre-release (php-8.3.0-rc1), and only
// then is a pre-release selected. These are plain Masterminds/semver
// ranges ("8.2" ≡ "~8.2"); a tag only refuses the range syntax that does
// not spell a version ("8.x", "^8", "v8"). A bare name means any stable
// version.
//
// Package names may contain '-' (and '.'), so where the version starts is
// decided by the names that exist: ParseTag tries the splits at each '-'
// from the right, and the first whose left part is a known name (see
// StackNames: published packages plus the stack's aliases) and whose right
// part is a version wins; failing that, the whole component is a bare
// name. With packages "foo-bar" and "foo", "foo-bar-1.2" is foo-bar 1.2.x.
// (A published package literally named "php-8" could only be requested
// with a version; the split wins because otherwise "php-8" could never
// mean php 8.)
//
// Components are unordered and aliases are expanded, so
// "node-20_php-8.2", "php-8.2_node-20" and "php-8.2_nodejs-20" are one
// Request, with one Key: "env:nodejs@20,php@8.2". The tag "latest" stands
// for the stack's Latest requirements (a package named latest can only be
// requested with a version).
//
// # Resolution
//
// Resolve chooses one release per package. The packages to decide form an
// agenda: the stack's published base packages (in stack order), then the
// requested ones (by name), then each package the first time a selected
// release requires it. Packages are decided in agenda order, each at its
// newest version that satisfies every requirement on it so far, is not
// excluded by a selected release's conflicts, and whose own conflicts and
// requirements agree with what is already selected. A requirement that no
// published version satisfies on its own rules its release out at once.
//
// When a package has no acceptable version, the search backtracks to an
// older version of an earlier choice — but only of a choice that took part
// in the failure (conflict-directed backjumping): each failure carries the
// set of decisions that caused it (those that added the refusing
// requirements or conflicts, or brought the package in), and a decision
// outside that set returns immediately instead of trying its other
// versions. A release whose failure involved no decision at all (only the
// request, the stack, or what does not exist) is dead: no answer contains
// it, and it is never tried again in this call. Together these find
// exactly the answer plain newest-first backtracking would — the tests
// check that against a reference implementation and a brute-force search
// on thousands of random catalogs — without revisiting unrelated packages
// or re-deriving the same dead end: a tag that names twenty packages and
// one impossible pair fails after a few steps, not 2^20, and a conflict at
// the end of a five-package requires chain with a hundred versions per
// package fails after a few hundred, not 100^4. The search still stops
// after MaxSteps tentative selections (ErrTooComplex).
//
// Cost: when the newest release of each package satisfies every
// requirement on it — the common case — each package costs a few range
// checks and one selection, so resolution time depends on the packages
// involved, never on the size of the catalog. Otherwise the allowed
// releases of a package are computed once per distinct set of ranges on
// it, from per-range match masks (each range checked against each release
// at most once per call). All caches live in the call.
//
// # Example
//
// With base 12.0.0; php 8.1.27, 8.2.32, 8.2.36 and 8.3.4; nodejs 18.20.4,
// 20.17.0 and 22.8.0; composer 2.7.0 (requires php >=8.1) and 2.8.0
// (requires php >=8.3), the tag "composer_node-20_php-8.2" on the default
// stack (base package "base", alias node -> nodejs) is the request
// "env:composer@*,nodejs@20,php@8.2" and resolves as follows:
//
//	level 0  base      12.0.0
//	level 1  composer  2.8.0, which requires php >=8.3
//	level 2  nodejs    20.17.0
//	level 3  php       8.2 (requested) and >=8.3 (composer 2.8.0) have no
//	                   common version; the conflict set is {1}
//	level 2  nodejs    not in {1}: jump over it
//	level 1  composer  2.7.0, which requires php >=8.1
//	level 2  nodejs    20.17.0
//	level 3  php       8.2.36
//
// The layers are base 12.0.0, nodejs 20.17.0, php 8.2.36, composer 2.7.0
// (composer after php, which it requires). Had every composer required
// php >=8.3, the error would be
//
//	conflicting requirements for php: (1) requested php 8.2; (2) requested composer -> composer 2.8.0 requires php >=8.3
//
// # Layer order, platforms, environment
//
// Resolution.Releases is the image's layer order: base packages first, in
// stack order (even if they require others: base packages are meant to be
// self-contained), then the rest so that a package comes after the
// packages it requires, the smallest name first among those that are
// ready. A requires-cycle is allowed: its packages (a strongly connected
// component) are layered together, by name, once everything the cycle
// requires is in place. The order is a function of the selected set only, so
// equal resolutions give equal images.
//
// Platforms are the intersection of the selected releases' platforms. The
// resolver does not pick older versions to find a common platform: a tag
// means the same versions on every platform, and adding a package that
// lacks arm64 should fail (NoPlatformError) rather than silently
// downgrade others. Likewise two releases that set one environment
// variable to different values are an EnvConflictError, not a reason to
// backtrack; PATH entries are prepended, never conflict.
//
// Unless the stack allows overlaps, two selected layers of one platform
// may not disagree about a path (OverlapError): write it with different
// content, or one write it as a file or symbolic link where the other
// writes entries beneath it. The second rule keeps a package from
// replacing another's directory, or base's /etc, with a link: the upper
// layer would hide the lower one's files, or an extractor would write
// them through the lower one's link. Like a conflicting variable, an
// overlap is an error rather than a reason to backtrack.
//
// # Updates of what runs
//
// ApplyPolicy narrows a request relative to the versions an image runs now
// (Policy none, patch, minor or all; PolicyRange gives the bound), Changes
// lists what a resolution changes in it, and CanonicalTag spells a
// resolution as the tag that selects exactly it. The provisioning API
// (server/api) documents the decisions behind the policy.
//
// # Errors
//
// The Error strings are what users see, in the CLI and in the registry's
// MANIFEST_UNKNOWN message; the fields are the facts the HTTP layers put in
// structured details. All are returned unwrapped by this package, and
// callers may wrap them: use errors.As and errors.Is.
//
//   - *TagError: the tag breaks the grammar (length, characters, empty
//     component, malformed version, a package twice, also via an alias).
//   - *UnknownPackageError (errors.Is ErrUnknownPackage): a name that is
//     neither published nor an alias.
//   - *UnsatisfiableError: no published version satisfies a requirement:
//     "no version of php satisfies 9 (available: 8.1.27, 8.2.32, 8.2.36)",
//     with "; required by app 1.0.0" when the requirement is transitive.
//   - *ConflictError: two requirement chains on one package that cannot
//     both hold, or a declared conflict.
//   - *NoPlatformError, *EnvConflictError, *OverlapError: see above.
//   - ErrEmpty (nothing requested, no base package published),
//     ErrTooComplex, ErrTooManyLayers (more packages than Stack.Limit).
//
// When the search fails there may be many reasons, one per branch. Resolve
// reports the first requirement met that no published version satisfies
// at all, because that is a fact the user can act on ("php 9 does not
// exist"); failing that, the first conflict met. Branches are explored in
// a fixed order, so the explanation is deterministic too.
package resolver
