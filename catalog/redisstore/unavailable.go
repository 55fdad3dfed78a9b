package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/layerstore"
)

// unavailableHook marks the errors that mean "Redis cannot answer now" with
// catalog.ErrUnavailable (the registry answers them 503 with Retry-After):
// a connection that cannot be made or broke, a pool that timed out, and the
// server's own "not now" replies (LOADING, MASTERDOWN, CLUSTERDOWN,
// TRYAGAIN, READONLY on a replica that lost its master). redis.Nil, a failed
// transaction and other server replies (a script error, WRONGTYPE) are
// answers, not outages, and stay as they are; so do context errors, which
// the caller classifies.
type unavailableHook struct{}

func (unavailableHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			err = layerstore.Unavailable(err)
		}
		return c, err
	}
}

func (unavailableHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if outage(ctx, err) {
			err = layerstore.Unavailable(err)
			cmd.SetErr(err)
		}
		return err
	}
}

func (unavailableHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if e := cmd.Err(); outage(ctx, e) {
				cmd.SetErr(layerstore.Unavailable(e))
			}
		}
		if outage(ctx, err) {
			err = layerstore.Unavailable(err)
		}
		return err
	}
}

// outage reports whether err means Redis cannot answer now.
func outage(ctx context.Context, err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, redis.TxFailedErr),
		errors.Is(err, layerstore.ErrUnavailable), ctx.Err() != nil,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // a network or pool error
}

// observeHook reports every command and pipeline to an observer
// (WithObservers), after unavailableHook marked outages.
type observeHook func(op string, d time.Duration, err error)

func (h observeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h observeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h(strings.ToLower(cmd.Name()), time.Since(start), answer(err))
		return err
	}
}

func (h observeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h("pipeline", time.Since(start), answer(err))
		return err
	}
}

// answer is err, except that a missing key is an answer.
func answer(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
