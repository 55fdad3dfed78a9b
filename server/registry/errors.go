package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore/uploads"
	"github.com/envreg/envreg/server/errcode"
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
	// CodeUnavailable is a storage backend that cannot answer now
	// (distribution's errcode UNAVAILABLE), sent with Retry-After.
	CodeUnavailable = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable}
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
// gets: the registry's own errors (authentication, upload sessions,
// repositories and manifests it looked up) here, every domain error through
// errcode.Classify and ociCodes. A nil result means "send nothing" (the
// client went away).
func ToError(err error) *Error {
	var (
		wire     *Error
		nameErr  *nameUnknownError
		manErr   *manifestUnknownError
		authErr  *AuthError
		rangeErr *uploads.RangeError
		tooLarge *uploads.TooLargeError
		chunks   *uploads.ChunkLimitError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &wire):
		return wire
	case errors.Is(err, context.Canceled):
		return nil
	case errors.As(err, &authErr):
		return authError(authErr, err)
	case errors.Is(err, uploads.ErrUnknown):
		return &Error{ErrorCode: CodeBlobUploadUnknown, Message: "blob upload unknown to registry", cause: err}
	case errors.Is(err, uploads.ErrInUse):
		return &Error{ErrorCode: CodeBusy, Message: err.Error(), cause: err}
	case errors.As(err, &rangeErr):
		return &Error{ErrorCode: CodeRangeInvalid, Message: rangeErr.Error(), cause: err,
			header: http.Header{"Range": {uploadRange(rangeErr.Size)}}}
	case errors.As(err, &tooLarge):
		return &Error{ErrorCode: CodeTooLarge, Message: tooLarge.Error(), cause: err}
	case errors.As(err, &chunks):
		return &Error{ErrorCode: CodeBlobUploadInvalid, Message: chunks.Error(), cause: err}
	case errors.As(err, &nameErr):
		return &Error{CodeNameUnknown, nameErr.Error(), map[string]string{"name": nameErr.name}, err, nil}
	case errors.As(err, &manErr):
		return &Error{CodeManifestUnknown, manErr.Error(), map[string]string{"reference": manErr.reference}, err, nil}
	}
	f, _ := errcode.Classify(err)
	e := &Error{ErrorCode: ociCodes[f.Kind], Message: f.Message, cause: err}
	if f.Detail != nil {
		e.Detail = f.Detail
	}
	switch f.Kind {
	case errcode.KindPackageInvalid:
		e.Message = "package refused: " + f.Message
	case errcode.KindLayerRefused:
		e.Message = "package layer refused: " + f.Message
	case errcode.KindUnavailable:
		e.header = http.Header{"Retry-After": {errcode.RetryAfter}}
	}
	return e
}

// ociCodes is the registry's column of the shared table (errcode): the
// OCI code and status of each kind of domain error. A requirement set that
// cannot be composed is a manifest that does not exist (404
// MANIFEST_UNKNOWN, with the explanation); a package push the registry
// refuses is an invalid manifest (400).
var ociCodes = map[errcode.Kind]ErrorCode{
	errcode.KindUnsatisfiable:  CodeManifestUnknown,
	errcode.KindConflict:       CodeManifestUnknown,
	errcode.KindOverlap:        CodeManifestUnknown,
	errcode.KindEnvConflict:    CodeManifestUnknown,
	errcode.KindNoPlatform:     CodeManifestUnknown,
	errcode.KindTooManyLayers:  CodeManifestUnknown,
	errcode.KindEmpty:          CodeManifestUnknown,
	errcode.KindTooComplex:     CodeManifestUnknown,
	errcode.KindUnknownPackage: CodeManifestUnknown,
	errcode.KindInvalidTag:     CodeManifestUnknown,
	errcode.KindPackageInvalid: CodeManifestInvalid,
	errcode.KindLayerRefused:   CodeManifestInvalid,
	errcode.KindExists:         CodeManifestInvalid,
	errcode.KindBlobUnknown:    CodeBlobUnknown,
	errcode.KindDigestInvalid:  CodeDigestInvalid,
	errcode.KindUnavailable:    CodeUnavailable,
	errcode.KindInternal:       CodeUnknown,
}

// authError is the wire form of a refused request: 401 with its challenge,
// or 403.
func authError(a *AuthError, err error) *Error {
	detail := a.Detail()
	if a.Status == http.StatusForbidden {
		return &Error{ErrorCode: CodeDenied, Message: a.Message, Detail: detail, cause: err}
	}
	e := &Error{ErrorCode: CodeUnauthorized, Message: a.Message, Detail: detail, cause: err}
	if a.Challenge != "" {
		e.header = http.Header{"Www-Authenticate": {a.Challenge}}
	}
	return e
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
