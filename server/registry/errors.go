package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/manifestgen"
	"github.com/envreg/envreg/packages"
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
	CodeBlobUnknown       = ErrorCode{"BLOB_UNKNOWN", http.StatusNotFound}
	CodeDigestInvalid     = ErrorCode{"DIGEST_INVALID", http.StatusBadRequest}
	CodeManifestUnknown   = ErrorCode{"MANIFEST_UNKNOWN", http.StatusNotFound}
	CodeNameUnknown       = ErrorCode{"NAME_UNKNOWN", http.StatusNotFound}
	CodeUnsupported       = ErrorCode{"UNSUPPORTED", http.StatusMethodNotAllowed}
	CodeBlobUploadUnknown = ErrorCode{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound}
	CodeBlobUploadInvalid = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusBadRequest}
	// CodeRangeInvalid is a chunk that does not continue the upload (416,
	// with the upload's Range).
	CodeRangeInvalid        = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable}
	CodeManifestInvalid     = ErrorCode{"MANIFEST_INVALID", http.StatusBadRequest}
	CodeManifestBlobUnknown = ErrorCode{"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest}
	CodeNameInvalid         = ErrorCode{"NAME_INVALID", http.StatusBadRequest}
	CodeTagInvalid          = ErrorCode{"TAG_INVALID", http.StatusBadRequest}
	CodeSizeInvalid         = ErrorCode{"SIZE_INVALID", http.StatusBadRequest}
	CodeTooLarge            = ErrorCode{"SIZE_INVALID", http.StatusRequestEntityTooLarge}
	CodeUnauthorized        = ErrorCode{"UNAUTHORIZED", http.StatusUnauthorized}
	CodeDenied              = ErrorCode{"DENIED", http.StatusForbidden}
	// CodeBusy is a concurrent write to one upload session.
	CodeBusy = ErrorCode{"TOOMANYREQUESTS", http.StatusTooManyRequests}
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
	// header is set on the response (WWW-Authenticate, Range).
	header http.Header
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
		authErr  *AuthError
		rangeErr *uploads.RangeError
		tooLarge *uploads.TooLargeError
		invalid  *packages.ValidationError
		refused  *packages.RefusedError
	)
	switch {
	case errors.As(err, &wire):
		return wire
	case errors.Is(err, context.Canceled):
		return nil
	case errors.As(err, &authErr):
		detail := make([]map[string]any, 0, len(authErr.Access))
		for _, a := range authErr.Access {
			detail = append(detail, map[string]any{"type": a.Type, "name": a.Name, "action": strings.Join(a.Actions, ",")})
		}
		if authErr.Status == http.StatusForbidden {
			return &Error{ErrorCode: CodeDenied, Message: authErr.Message, Detail: detail, cause: err}
		}
		e := &Error{ErrorCode: CodeUnauthorized, Message: authErr.Message, Detail: detail, cause: err}
		if authErr.Challenge != "" {
			e.header = http.Header{"Www-Authenticate": {authErr.Challenge}}
		}
		return e
	case errors.Is(err, uploads.ErrUnknown):
		return &Error{ErrorCode: CodeBlobUploadUnknown, Message: "blob upload unknown to registry", cause: err}
	case errors.Is(err, uploads.ErrInUse):
		return &Error{ErrorCode: CodeBusy, Message: err.Error(), cause: err}
	case errors.As(err, &rangeErr):
		return &Error{ErrorCode: CodeRangeInvalid, Message: rangeErr.Error(), cause: err,
			header: http.Header{"Range": {uploadRange(rangeErr.Size)}}}
	case errors.As(err, &tooLarge):
		return &Error{ErrorCode: CodeTooLarge, Message: tooLarge.Error(), cause: err}
	case errors.As(err, &invalid):
		return &Error{ErrorCode: CodeManifestInvalid, Message: "package refused: " + invalid.Error(),
			Detail: map[string]any{"problems": invalid.Problems}, cause: err}
	case errors.As(err, &refused):
		return &Error{ErrorCode: CodeManifestInvalid, Message: "package layer refused: " + refused.Error(), cause: err}
	case errors.Is(err, catalog.ErrExists):
		return &Error{ErrorCode: CodeManifestInvalid, Message: err.Error(), cause: err}
	case errors.As(err, &unsat):
		detail := map[string]any{
			"package": unsat.Package, "constraint": unsat.Constraint, "available": nonNil(unsat.Available), "chain": nonNil(unsat.Chain)}
		if len(unsat.Yanked) > 0 {
			detail["yanked"] = unsat.Yanked
		}
		return &Error{CodeManifestUnknown, unsat.Error(), detail, err, nil}
	case errors.As(err, &conflict):
		return &Error{CodeManifestUnknown, conflict.Error(), map[string]any{"package": conflict.Package, "chains": conflict.Chains}, err, nil}
	case errors.As(err, &tagErr):
		return &Error{CodeManifestUnknown, tagErr.Error(), map[string]any{"tag": tagErr.Tag, "reason": tagErr.Reason}, err, nil}
	case errors.As(err, &noPlat):
		platforms := map[string][]string{}
		for _, r := range noPlat.Releases {
			platforms[r.Release] = r.Platforms
		}
		return &Error{CodeManifestUnknown, noPlat.Error(), map[string]any{"platforms": platforms}, err, nil}
	case errors.As(err, &envErr):
		return &Error{CodeManifestUnknown, envErr.Error(), map[string]any{
			"variable": envErr.Variable, "packages": envErr.Packages, "values": envErr.Values}, err, nil}
	case errors.As(err, &overlap):
		return &Error{CodeManifestUnknown, overlap.Error(), map[string]any{
			"path": overlap.Path, "platform": overlap.Platform, "packages": overlap.Packages}, err, nil}
	case errors.As(err, &tooMany):
		return &Error{CodeManifestUnknown, tooMany.Error(), map[string]any{"layers": tooMany.Count, "limit": tooMany.Limit}, err, nil}
	case errors.Is(err, resolver.ErrUnknownPackage), errors.Is(err, resolver.ErrEmpty),
		errors.Is(err, resolver.ErrTooComplex), errors.Is(err, resolver.ErrTooManyLayers):
		return &Error{CodeManifestUnknown, err.Error(), nil, err, nil}
	case errors.As(err, &nameErr):
		return &Error{CodeNameUnknown, nameErr.Error(), map[string]string{"name": nameErr.name}, err, nil}
	case errors.As(err, &manErr):
		return &Error{CodeManifestUnknown, manErr.Error(), map[string]string{"reference": manErr.reference}, err, nil}
	case errors.Is(err, layerstore.ErrNotFound):
		return &Error{CodeBlobUnknown, "blob unknown to registry", nil, err, nil}
	case errors.Is(err, digest.ErrDigestInvalidFormat), errors.Is(err, digest.ErrDigestInvalidLength),
		errors.Is(err, digest.ErrDigestUnsupported):
		return &Error{CodeDigestInvalid, err.Error(), nil, err, nil}
	case errors.As(err, &mismatch):
		return &Error{CodeDigestInvalid, mismatch.Error(), nil, err, nil}
	default:
		// No internal details (paths, addresses) go to the client; the log
		// has the full error with the request id.
		return &Error{CodeUnknown, "internal server error", nil, err, nil}
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
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(body)))
	h.Del("Docker-Content-Digest")
	h.Del("ETag")
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
