// Package errcode is the one table from envreg's domain errors to what its
// HTTP faces send. Domain errors carry their facts (the package, the
// constraint, the versions there are, the platforms, the path); Classify
// turns any error into a Fact: its Kind, the one-line message (the same
// Error() string the CLI prints) and the JSON detail. The registry
// (server/registry) and the provisioning API (server/api) each choose only
// a code and a status per Kind from their own small table, so the same fact
// has the same detail on both, and a client fault is never a 500.
//
// It is not an HTTP package: it knows no status codes. The faces' own
// errors (authentication, upload sessions, request bodies, routes) stay in
// the faces, which handle them before they ask Classify.
package errcode

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages/layer"
	"github.com/envreg/envreg/resolver"
)

// Kind is what went wrong, whichever face reports it. Its values are
// stable (metrics label them by it).
type Kind string

// The kinds. Those before KindUnavailable are the client's to fix (4xx);
// KindUnavailable is a backend that may answer later (503 with
// Retry-After); KindInternal is a fault of envreg (500).
const (
	KindUnsatisfiable  Kind = "unsatisfiable"   // *resolver.UnsatisfiableError
	KindConflict       Kind = "conflict"        // *resolver.ConflictError
	KindOverlap        Kind = "overlap"         // *resolver.OverlapError
	KindEnvConflict    Kind = "env_conflict"    // *resolver.EnvConflictError
	KindNoPlatform     Kind = "no_platform"     // *resolver.NoPlatformError
	KindTooManyLayers  Kind = "too_many_layers" // *manifestgen.TooManyLayersError, resolver.ErrTooManyLayers
	KindEmpty          Kind = "empty"           // resolver.ErrEmpty
	KindTooComplex     Kind = "too_complex"     // resolver.ErrTooComplex
	KindUnknownPackage Kind = "unknown_package" // *resolver.UnknownPackageError, resolver.ErrUnknownPackage
	KindInvalidTag     Kind = "invalid_tag"     // *resolver.TagError
	KindPackageInvalid Kind = "package_invalid" // *catalog.ValidationError: a package's metadata
	KindLayerRefused   Kind = "layer_refused"   // layer.ErrRefused: a layer's content
	KindExists         Kind = "exists"          // catalog.ErrExists
	KindBlobUnknown    Kind = "blob_unknown"    // layerstore.ErrNotFound
	KindDigestInvalid  Kind = "digest_invalid"  // a malformed digest, *layerstore.DigestMismatchError
	KindUnavailable    Kind = "unavailable"     // catalog.ErrUnavailable, context.DeadlineExceeded
	KindInternal       Kind = "internal"        // anything else
)

// RetryAfter is the Retry-After (seconds) sent with KindUnavailable.
const RetryAfter = "5"

// Fact is what a face sends for an error.
type Fact struct {
	Kind Kind
	// Message is one line for the client: the domain error's own
	// Error(), except for KindUnavailable and KindInternal, whose
	// messages never carry internal details (addresses, paths).
	Message string
	// Detail is nil or a JSON object of the error's facts; lists are
	// never null.
	Detail map[string]any
}

// Classify returns the fact err is. ok is false when there is nothing to
// send: err is nil, or the client went away (context.Canceled).
func Classify(err error) (f Fact, ok bool) {
	if err == nil || errors.Is(err, context.Canceled) {
		return Fact{}, false
	}
	for _, c := range table {
		if f, ok := c(err); ok {
			return f, true
		}
	}
	return Fact{Kind: KindInternal, Message: "internal server error"}, true
}

// table is tried in order: the first classifier that recognises err wins.
// Typed errors come before the sentinels they may wrap.
var table = []func(error) (Fact, bool){
	as(KindUnsatisfiable, func(e *resolver.UnsatisfiableError) map[string]any {
		d := map[string]any{"package": e.Package, "constraint": e.Constraint,
			"available": nonNil(e.Available), "chain": nonNil(e.Chain)}
		if len(e.Yanked) > 0 {
			d["yanked"] = e.Yanked
		}
		return d
	}),
	as(KindConflict, func(e *resolver.ConflictError) map[string]any {
		return map[string]any{"package": e.Package, "chains": [2][]string{nonNil(e.Chains[0]), nonNil(e.Chains[1])}}
	}),
	as(KindOverlap, func(e *resolver.OverlapError) map[string]any {
		return map[string]any{"path": e.Path, "platform": e.Platform, "packages": e.Packages, "entries": e.Entries}
	}),
	as(KindEnvConflict, func(e *resolver.EnvConflictError) map[string]any {
		return map[string]any{"variable": e.Variable, "packages": e.Packages, "values": e.Values}
	}),
	as(KindNoPlatform, func(e *resolver.NoPlatformError) map[string]any {
		rels := make([]map[string]any, len(e.Releases))
		for i, r := range e.Releases {
			rels[i] = map[string]any{"release": r.Release, "platforms": nonNil(r.Platforms)}
		}
		return map[string]any{"releases": rels}
	}),
	as(KindTooManyLayers, func(e *manifestgen.TooManyLayersError) map[string]any {
		return map[string]any{"layers": e.Count, "limit": e.Limit, "stack": e.Stack}
	}),
	as(KindUnknownPackage, func(e *resolver.UnknownPackageError) map[string]any {
		d := map[string]any{"package": e.Package, "known": nonNil(e.Known)}
		if e.Tag != "" {
			d["tag"], d["component"] = e.Tag, e.Component
		}
		return d
	}),
	as(KindInvalidTag, func(e *resolver.TagError) map[string]any {
		return map[string]any{"tag": e.Tag, "reason": e.Reason}
	}),
	as(KindPackageInvalid, func(e *catalog.ValidationError) map[string]any {
		return map[string]any{"problems": nonNil(e.Problems)}
	}),
	as(KindLayerRefused, func(e *layer.RefusedError) map[string]any {
		return map[string]any{"entry": e.Path, "rule": string(e.Rule)}
	}),
	as(KindLayerRefused, func(e *layer.UnsupportedFileError) map[string]any {
		return map[string]any{"entry": e.Path, "kind": e.Kind}
	}),
	as(KindDigestInvalid, func(e *layerstore.DigestMismatchError) map[string]any { return nil }),
	is(KindTooManyLayers, resolver.ErrTooManyLayers),
	is(KindEmpty, resolver.ErrEmpty),
	is(KindTooComplex, resolver.ErrTooComplex),
	is(KindUnknownPackage, resolver.ErrUnknownPackage),
	is(KindLayerRefused, layer.ErrRefused),
	is(KindExists, catalog.ErrExists),
	func(err error) (Fact, bool) {
		if errors.Is(err, layerstore.ErrNotFound) {
			return Fact{Kind: KindBlobUnknown, Message: "blob unknown to registry"}, true
		}
		return Fact{}, false
	},
	is(KindDigestInvalid, digest.ErrDigestInvalidFormat, digest.ErrDigestInvalidLength, digest.ErrDigestUnsupported),
	func(err error) (Fact, bool) {
		if errors.Is(err, catalog.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return Fact{Kind: KindUnavailable, Message: "a storage backend of the registry is unavailable; retry later"}, true
		}
		return Fact{}, false
	},
}

// as classifies errors of type E as kind, with detail from E's facts.
func as[E error](kind Kind, detail func(E) map[string]any) func(error) (Fact, bool) {
	return func(err error) (Fact, bool) {
		var e E
		if !errors.As(err, &e) {
			return Fact{}, false
		}
		return Fact{Kind: kind, Message: e.Error(), Detail: detail(e)}, true
	}
}

// is classifies errors wrapping one of targets as kind; the message is
// err's own.
func is(kind Kind, targets ...error) func(error) (Fact, bool) {
	return func(err error) (Fact, bool) {
		for _, t := range targets {
			if errors.Is(err, t) {
				return Fact{Kind: kind, Message: err.Error()}, true
			}
		}
		return Fact{}, false
	}
}

// nonNil makes empty lists marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
