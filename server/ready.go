package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
)

// readyTimeout bounds each readiness check: a backend slower than this is
// not ready.
const readyTimeout = 2 * time.Second

// probeDigest names a blob no store holds; asking for it is a read that
// every blob backend answers with ErrNotFound when it answers at all.
var probeDigest = digest.FromString("envreg readiness probe")

// readiness serves /readyz: 200 when the catalog snapshot loads and every
// backend answers, else 503 naming what does not; with what background
// work is under way (a seed still publishing: ready all the same). The
// body is JSON; errors are reported by kind, with the details in the log
// (the endpoint is often public).
func (s *Server) readiness(deps Deps) http.Handler {
	type report struct {
		Ready    bool              `json:"ready"`
		Checks   map[string]string `json:"checks"`
		Progress string            `json:"progress,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		rep := report{Ready: true, Checks: map[string]string{}}
		check := func(name string, err error) {
			state := "ok"
			switch {
			case err == nil:
			case errors.Is(err, catalog.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
				state = "unavailable"
			default:
				state = "failing"
			}
			if err != nil {
				rep.Ready = false
				s.log.Warn("not ready", "check", name, "err", err)
			}
			rep.Checks[name] = state
		}
		_, err := deps.Catalog.Snapshot(ctx)
		check("catalog", err)
		_, err = deps.Blobs.Stat(ctx, probeDigest)
		if errors.Is(err, layerstore.ErrNotFound) {
			err = nil // the store answered
		}
		if err == nil {
			if w, ok := deps.Blobs.(interface{ Writable() error }); ok {
				err = w.Writable()
			}
		}
		check("blobs", err)
		if deps.Progress != nil {
			rep.Progress = deps.Progress()
		}
		body, _ := json.Marshal(rep)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method != http.MethodHead {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
