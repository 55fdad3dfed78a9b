package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/resolver"
)

// ErrorCode is an error code of the OCI distribution-spec
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes)
// together with the HTTP status it is sent with, so that the two cannot
// disagree (distribution's errcode descriptors).
type ErrorCode struct {
	Code   string
	Status int
}

// The codes envreg sends.
var (
	CodeBlobUnknown     = ErrorCode{"BLOB_UNKNOWN", http.StatusNotFound}
	CodeDigestInvalid   = ErrorCode{"DIGEST_INVALID", http.StatusBadRequest}
	CodeManifestUnknown = ErrorCode{"MANIFEST_UNKNOWN", http.StatusNotFound}
	CodeNameUnknown     = ErrorCode{"NAME_UNKNOWN", http.StatusNotFound}
	CodeUnsupported     = ErrorCode{"UNSUPPORTED", http.StatusMethodNotAllowed}
	// CodeBadRequest is a malformed query (an invalid n): the spec lists no
	// code for it, and its codes are a closed set, so UNSUPPORTED with 400.
	CodeBadRequest = ErrorCode{"UNSUPPORTED", http.StatusBadRequest}
	CodeUnknown    = ErrorCode{"UNKNOWN", http.StatusInternalServerError}
)

// Error is an error on the wire: code, message and optional detail.
type Error struct {
	ErrorCode
	Message string
	Detail  any
	// cause is the error that led here; logged, never sent.
	cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.cause }

// newError builds a wire error explicitly (for conditions found by the
// handler itself rather than returned by the domain).
func newError(c ErrorCode, msg string, detail any) *Error {
	return &Error{ErrorCode: c, Message: msg, Detail: detail}
}

// Domain errors that carry a lookup target. Handlers wrap catalog.ErrNotFound
// or layerstore.ErrNotFound in these so the mapping knows what was not found.
type (
	nameUnknownError     struct{ name string }
	manifestUnknownError struct{ reference string }
)

func (e *nameUnknownError) Error() string { return "repository name not known to registry: " + e.name }
func (e *nameUnknownError) Unwrap() error { return catalog.ErrNotFound }
func (e *manifestUnknownError) Error() string {
	return "manifest unknown: " + e.reference
}
func (e *manifestUnknownError) Unwrap() error { return catalog.ErrNotFound }

// ToError maps any error a handler returns to the wire error the client
// gets. It is the only place where domain errors become OCI codes. A nil
// result means "send nothing" (the client went away).
func ToError(err error) *Error {
	var (
		wire     *Error
		unsat    *resolver.UnsatisfiableError
		conflict *resolver.ConflictError
		tagErr   *resolver.TagError
		noPlat   *resolver.NoPlatformError
		envErr   *resolver.EnvConflictError
		tooMany  *manifestgen.TooManyLayersError
		overlap  *resolver.OverlapError
		nameErr  *nameUnknownError
		manErr   *manifestUnknownError
		mismatch *layerstore.DigestMismatchError
	)
	switch {
	case errors.As(err, &wire):
		return wire
	case errors.Is(err, context.Canceled):
		return nil
	case errors.As(err, &unsat):
		return &Error{CodeManifestUnknown, unsat.Error(), map[string]any{
			"package": unsat.Package, "constraint": unsat.Constraint, "available": nonNil(unsat.Available), "chain": nonNil(unsat.Chain)}, err}
	case errors.As(err, &conflict):
		return &Error{CodeManifestUnknown, conflict.Error(), map[string]any{"package": conflict.Package, "chains": conflict.Chains}, err}
	case errors.As(err, &tagErr):
		return &Error{CodeManifestUnknown, tagErr.Error(), map[string]any{"tag": tagErr.Tag, "reason": tagErr.Reason}, err}
	case errors.As(err, &noPlat):
		platforms := map[string][]string{}
		for _, r := range noPlat.Releases {
			platforms[r.Release] = r.Platforms
		}
		return &Error{CodeManifestUnknown, noPlat.Error(), map[string]any{"platforms": platforms}, err}
	case errors.As(err, &envErr):
		return &Error{CodeManifestUnknown, envErr.Error(), map[string]any{
			"variable": envErr.Variable, "packages": envErr.Packages, "values": envErr.Values}, err}
	case errors.As(err, &overlap):
		return &Error{CodeManifestUnknown, overlap.Error(), map[string]any{
			"path": overlap.Path, "platform": overlap.Platform, "packages": overlap.Packages}, err}
	case errors.As(err, &tooMany):
		return &Error{CodeManifestUnknown, tooMany.Error(), map[string]any{"layers": tooMany.Count, "limit": tooMany.Limit}, err}
	case errors.Is(err, resolver.ErrUnknownPackage), errors.Is(err, resolver.ErrEmpty),
		errors.Is(err, resolver.ErrTooComplex), errors.Is(err, resolver.ErrTooManyLayers):
		return &Error{CodeManifestUnknown, err.Error(), nil, err}
	case errors.As(err, &nameErr):
		return &Error{CodeNameUnknown, nameErr.Error(), map[string]string{"name": nameErr.name}, err}
	case errors.As(err, &manErr):
		return &Error{CodeManifestUnknown, manErr.Error(), map[string]string{"reference": manErr.reference}, err}
	case errors.Is(err, layerstore.ErrNotFound):
		return &Error{CodeBlobUnknown, "blob unknown to registry", nil, err}
	case errors.Is(err, digest.ErrDigestInvalidFormat), errors.Is(err, digest.ErrDigestInvalidLength),
		errors.Is(err, digest.ErrDigestUnsupported):
		return &Error{CodeDigestInvalid, err.Error(), nil, err}
	case errors.As(err, &mismatch):
		return &Error{CodeDigestInvalid, mismatch.Error(), nil, err}
	default:
		// No internal details (paths, addresses) go to the client; the log
		// has the full error with the request id.
		return &Error{CodeUnknown, "internal server error", nil, err}
	}
}

// errorBody is the distribution-spec error document.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes e as the spec's JSON error body. HEAD requests get the
// status and headers only.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	body, err := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	if err != nil {
		body = []byte(`{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(body)))
	h.Del("Docker-Content-Digest")
	h.Del("ETag")
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
