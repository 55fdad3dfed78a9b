package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// listen turns change notifications into observed generations until the
// subscription is closed. go-redis reconnects and resubscribes by itself;
// a resubscription asks the poller for a check, because whatever was
// published while the connection was down is lost.
func (s *Store) listen(msgs <-chan any) {
	for msg := range msgs {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.log.Info("redis catalog: change notifications resubscribed", "channel", m.Channel)
				select {
				case s.kick <- struct{}{}:
				default:
				}
			}
		case *redis.Message:
			if s.dropNotifications.Load() {
				continue
			}
			gen, err := strconv.ParseUint(m.Payload, 10, 64)
			if err != nil {
				s.log.Warn("redis catalog: ignoring a change notification that is not a generation",
					"channel", m.Channel, "payload", m.Payload)
				continue
			}
			s.observe(gen)
		}
	}
}

// watch checks the generation every poll interval and when kicked, until
// ctx ends. It logs when Redis stops and starts answering, not every
// failure.
func (s *Store) watch(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := s.check(cctx, s.state.Load())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			s.log.Warn("redis catalog: cannot check for changes", "redis", s.where, "err", err)
		case err == nil && failing:
			failing = false
			s.log.Info("redis catalog: checking for changes again", "redis", s.where)
		}
	}
}
