package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/server/errcode"
	"github.com/envreg/envreg/server/registry"
)

// ErrorCode is an API error code together with the HTTP status it is sent
// with, so that the two cannot disagree (distribution's errcode
// descriptors).
type ErrorCode struct {
	Code   string
	Status int
}

// The codes the API sends. 4xx codes describe the request; 422 codes say
// that a well-formed request cannot be satisfied by the catalog as it is.
var (
	CodeBadRequest           = ErrorCode{"BAD_REQUEST", http.StatusBadRequest}
	CodeUnauthorized         = ErrorCode{"UNAUTHORIZED", http.StatusUnauthorized}
	CodeForbidden            = ErrorCode{"FORBIDDEN", http.StatusForbidden}
	CodeNotFound             = ErrorCode{"NOT_FOUND", http.StatusNotFound}
	CodeStackUnknown         = ErrorCode{"STACK_UNKNOWN", http.StatusNotFound}
	CodePackageUnknown       = ErrorCode{"PACKAGE_UNKNOWN", http.StatusNotFound}
	CodeFromUnknown          = ErrorCode{"FROM_UNKNOWN", http.StatusNotFound}
	CodeMethodNotAllowed     = ErrorCode{"METHOD_NOT_ALLOWED", http.StatusMethodNotAllowed}
	CodeBodyTooLarge         = ErrorCode{"BODY_TOO_LARGE", http.StatusRequestEntityTooLarge}
	CodeUnsupportedMediaType = ErrorCode{"UNSUPPORTED_MEDIA_TYPE", http.StatusUnsupportedMediaType}
	CodeUnsatisfiable        = ErrorCode{"UNSATISFIABLE", http.StatusUnprocessableEntity}
	CodeConflict             = ErrorCode{"CONFLICT", http.StatusUnprocessableEntity}
	CodeOverlap              = ErrorCode{"OVERLAP", http.StatusUnprocessableEntity}
	CodeEnvConflict          = ErrorCode{"ENV_CONFLICT", http.StatusUnprocessableEntity}
	CodeNoPlatform           = ErrorCode{"NO_PLATFORM", http.StatusUnprocessableEntity}
	CodePlatformUnsupported  = ErrorCode{"PLATFORM_UNSUPPORTED", http.StatusUnprocessableEntity}
	CodeEmpty                = ErrorCode{"EMPTY", http.StatusUnprocessableEntity}
	CodeTooComplex           = ErrorCode{"TOO_COMPLEX", http.StatusUnprocessableEntity}
	CodeTooManyLayers        = ErrorCode{"TOO_MANY_LAYERS", http.StatusUnprocessableEntity}
	CodeFromInvalid          = ErrorCode{"FROM_INVALID", http.StatusUnprocessableEntity}
	CodeInternal             = ErrorCode{"INTERNAL", http.StatusInternalServerError}
	CodeUnavailable          = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable}
)

// Error is the body of every error response:
//
//	{"status":422,"code":"UNSATISFIABLE","message":"no version of php satisfies ^9 (available: 8.1.27, 8.2.32, 8.2.36)",
//	 "detail":{"package":"php","constraint":"^9","available":["8.1.27","8.2.32","8.2.36"],"chain":[]},"requestId":"5f0c…"}
//
// Message is one line, the same Error() string the CLI prints; Detail
// carries the facts (its shape depends on Code; see openapi.yaml).
type Error struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Detail    any    `json:"detail,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// cause is the error that led here; logged, never sent.
	cause error
	// header is set on the response (the WWW-Authenticate challenge).
	header http.Header
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.cause }

func newError(c ErrorCode, msg string, detail any, cause error) *Error {
	return &Error{Status: c.Status, Code: c.Code, Message: msg, Detail: detail, cause: cause}
}

// Errors found by the handlers themselves, carrying their facts. ToError
// turns them into codes.
type (
	// badRequestError: the request body or a parameter is malformed.
	badRequestError struct {
		msg string
		err error
	}
	// stackUnknownError: no stack of that name.
	stackUnknownError struct {
		name  string
		known []string
	}
	// fromUnknownError: "from" names a digest no stack composed (it may be
	// stored for an ordinary repository: that is not said).
	fromUnknownError struct{ digest digest.Digest }
	// fromInvalidError: "from" names a stored document that is not an
	// envreg index.
	fromInvalidError struct {
		digest digest.Digest
		reason string
	}
)

func badRequest(err error, format string, a ...any) error {
	return &badRequestError{msg: fmt.Sprintf(format, a...), err: err}
}

func (e *badRequestError) Error() string { return e.msg }
func (e *badRequestError) Unwrap() error { return e.err }
func (e *stackUnknownError) Error() string {
	return fmt.Sprintf("unknown stack %q", e.name)
}
func (e *fromUnknownError) Error() string {
	return fmt.Sprintf("from: no stack of this registry composed an index %s (use a reference this registry returned)", e.digest)
}
func (e *fromInvalidError) Error() string {
	return fmt.Sprintf("from: %s is not an index composed by envreg: %s", e.digest, e.reason)
}

// PlatformError reports requested platforms that the resolution does not
// support on all of its packages.
type PlatformError struct {
	Platform string
	// Available are the platforms common to every selected package.
	Available []string
	// Missing lists the selected releases without a layer for Platform.
	Missing []string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("platform %s is not supported by %s (platforms common to all selected packages: %s)",
		e.Platform, strings.Join(e.Missing, ", "), strings.Join(e.Available, ", "))
}

// ToError maps any error a handler returns to the error the client gets:
// the API's own errors (request bodies, stacks, "from", platforms,
// authentication) here, every domain error through errcode.Classify and
// apiCodes. A nil result means "send nothing" (the client went away).
func ToError(err error) *Error {
	var (
		wire     *Error
		tooLarge *http.MaxBytesError
		bad      *badRequestError
		platErr  *PlatformError
		stackErr *stackUnknownError
		fromErr  *fromUnknownError
		fromBad  *fromInvalidError
		authErr  *registry.AuthError
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
	case errors.As(err, &tooLarge):
		return newError(CodeBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit),
			map[string]any{"limit": tooLarge.Limit}, err)
	case errors.As(err, &bad):
		return newError(CodeBadRequest, bad.Error(), nil, err)
	case errors.As(err, &platErr):
		return newError(CodePlatformUnsupported, platErr.Error(), map[string]any{
			"platform": platErr.Platform, "available": nonNil(platErr.Available), "missing": nonNil(platErr.Missing)}, err)
	case errors.As(err, &stackErr):
		return newError(CodeStackUnknown, stackErr.Error(), map[string]any{"stack": stackErr.name, "known": nonNil(stackErr.known)}, err)
	case errors.As(err, &fromErr):
		return newError(CodeFromUnknown, fromErr.Error(), map[string]any{"digest": fromErr.digest}, err)
	case errors.As(err, &fromBad):
		return newError(CodeFromInvalid, fromBad.Error(), map[string]any{"digest": fromBad.digest, "reason": fromBad.reason}, err)
	}
	f, _ := errcode.Classify(err)
	e := newError(apiCodes[f.Kind], f.Message, nil, err)
	if f.Detail != nil {
		e.Detail = f.Detail
	}
	if f.Kind == errcode.KindUnavailable {
		e.header = http.Header{"Retry-After": {errcode.RetryAfter}}
	}
	return e
}

// apiCodes is the API's column of the shared table (errcode): a
// well-formed request the catalog cannot satisfy is 422 with the
// explanation; a malformed one 400.
var apiCodes = map[errcode.Kind]ErrorCode{
	errcode.KindUnsatisfiable:  CodeUnsatisfiable,
	errcode.KindConflict:       CodeConflict,
	errcode.KindOverlap:        CodeOverlap,
	errcode.KindEnvConflict:    CodeEnvConflict,
	errcode.KindNoPlatform:     CodeNoPlatform,
	errcode.KindTooManyLayers:  CodeTooManyLayers,
	errcode.KindEmpty:          CodeEmpty,
	errcode.KindTooComplex:     CodeTooComplex,
	errcode.KindUnknownPackage: CodePackageUnknown,
	errcode.KindInvalidTag:     CodeBadRequest,
	errcode.KindPackageInvalid: CodeBadRequest,
	errcode.KindLayerRefused:   CodeBadRequest,
	errcode.KindExists:         CodeBadRequest,
	errcode.KindBlobUnknown:    CodeNotFound,
	errcode.KindDigestInvalid:  CodeBadRequest,
	errcode.KindUnavailable:    CodeUnavailable,
	errcode.KindInternal:       CodeInternal,
}

// authError is the API's form of a refused request: 401 with the
// registry's challenge, or 403.
func authError(a *registry.AuthError, err error) *Error {
	detail := a.Detail()
	if a.Status != http.StatusUnauthorized {
		return newError(CodeForbidden, a.Message, detail, err)
	}
	e := newError(CodeUnauthorized, a.Message, detail, err)
	if a.Challenge != "" {
		e.header = http.Header{"Www-Authenticate": {a.Challenge}}
	}
	return e
}

// nonNil makes empty lists marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
