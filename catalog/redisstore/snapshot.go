package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

const (
	// loadAttempts bounds how often a reload starts over because the
	// catalog changed while it was read.
	loadAttempts = 20
	// mgetChunk is how many releases one MGET reads.
	mgetChunk = 500
)

// state is what Snapshot serves.
type state struct {
	snap   *catalog.Snapshot // last good snapshot; never nil
	epoch  string            // the epoch snap was read under
	resets uint64            // Store.resets when the load of snap started
	err    error             // non-nil: the last check or reload failed
	failed time.Time         // when err happened
	// observed and resets of the Store when err happened: until one moves
	// or a poll interval passes, Snapshot repeats err without I/O.
	failedObserved, failedResets uint64
}

// Snapshot returns the current snapshot; see the package doc for when it
// talks to Redis.
func (s *Store) Snapshot(ctx context.Context) (*catalog.Snapshot, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if st := s.state.Load(); s.current(st) {
		return st.snap, nil
	}
	select {
	case s.loading <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.loading }()

	st := s.state.Load()
	if s.current(st) {
		return st.snap, nil // another goroutine reloaded meanwhile
	}
	if st.err != nil && time.Since(st.failed) < s.poll &&
		s.observed.Load() == st.failedObserved && s.resets.Load() == st.failedResets {
		return nil, st.err // neither hammer a Redis that just failed nor reread bad data
	}
	if !s.changed(st) {
		if err := s.check(ctx, st); err != nil {
			return nil, s.fail(ctx, st, err)
		}
		if st.err == nil && !s.changed(st) {
			return st.snap, nil
		}
	}

	resets := s.resets.Load()
	base := st.snap
	if resets != st.resets {
		base = nil // Redis lost data: read everything
	}
	started := time.Now()
	snap, epoch, err := s.load(ctx, base, st.epoch)
	if err != nil {
		return nil, s.fail(ctx, st, err)
	}
	s.obs.Reloaded(started)
	if snap.Generation < st.snap.Generation || epoch != st.epoch {
		// Redis went back. What was observed before belongs to the lost
		// data; forget it (a change after this load is announced or
		// polled again).
		s.observed.Store(snap.Generation)
	}
	s.confirmed.Store(started.UnixNano())
	s.state.Store(&state{snap: snap, epoch: epoch, resets: resets})
	return snap, nil
}

// current reports whether st may be served without asking Redis.
func (s *Store) current(st *state) bool {
	return st.err == nil && !s.changed(st) &&
		time.Since(time.Unix(0, s.confirmed.Load())) <= s.maxStale
}

// changed reports whether Redis is known to hold something newer than st.
func (s *Store) changed(st *state) bool {
	return s.observed.Load() > st.snap.Generation || s.resets.Load() != st.resets
}

// fail records err as the state's error, unless it is the caller's
// cancellation, which says nothing about the catalog.
func (s *Store) fail(ctx context.Context, st *state, err error) error {
	if ctx.Err() != nil {
		return err
	}
	s.state.Store(&state{snap: st.snap, epoch: st.epoch, resets: st.resets, err: err, failed: time.Now(),
		failedObserved: s.observed.Load(), failedResets: s.resets.Load()})
	return err
}

// observe records that generation gen exists in Redis.
func (s *Store) observe(gen uint64) {
	for {
		cur := s.observed.Load()
		if gen <= cur || s.observed.CompareAndSwap(cur, gen) {
			return
		}
	}
}

// check reads the generation and epoch and records what they say about
// the state st that was current before the read.
func (s *Store) check(ctx context.Context, st *state) error {
	started := time.Now()
	vals, err := s.client.MGet(ctx, s.keys.generation, s.keys.epoch).Result()
	if err != nil {
		return fmt.Errorf("reading the catalog generation from %s: %w", s.where, err)
	}
	gen, err := parseGeneration(vals[0])
	if err != nil {
		return err
	}
	epoch, _ := vals[1].(string)
	if gen < st.snap.Generation || epoch != st.epoch {
		s.resets.Add(1)
	} else {
		s.observe(gen)
	}
	s.confirmed.Store(started.UnixNano())
	return nil
}

func parseGeneration(v any) (uint64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, nil // no key yet: generation 0
	}
	gen, err := strconv.ParseUint(str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("catalog generation %q is not a number: %w", str, err)
	}
	return gen, nil
}

// load reads the catalog. With a base snapshot (read under epoch) it reads
// only the releases changed since base and keeps the others; it reads
// everything when there is no base, or when Redis's epoch or generation
// shows that Redis lost data since base was read.
func (s *Store) load(ctx context.Context, base *catalog.Snapshot, epoch string) (*catalog.Snapshot, string, error) {
	for attempt := range loadAttempts {
		if attempt > 0 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, "", err
			}
		}
		since := "-inf"
		if base != nil {
			since = "(" + strconv.FormatUint(base.Generation, 10)
		}
		var (
			head    *redis.SliceCmd
			members *redis.StringSliceCmd
			stacks  *redis.MapStringStringCmd
		)
		_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			head = p.MGet(ctx, s.keys.generation, s.keys.epoch)
			members = p.ZRangeByScore(ctx, s.keys.releases, &redis.ZRangeBy{Min: since, Max: "+inf"})
			stacks = p.HGetAll(ctx, s.keys.stacks)
			return nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("reading the catalog from %s: %w", s.where, err)
		}
		gen, err := parseGeneration(head.Val()[0])
		if err != nil {
			return nil, "", err
		}
		curEpoch, _ := head.Val()[1].(string)
		if base != nil && (gen < base.Generation || curEpoch != epoch) {
			base = nil // Redis lost data: start over with a full read
			continue
		}
		if base != nil && gen == base.Generation {
			return base, epoch, nil
		}

		values, err := s.readReleases(ctx, members.Val())
		if err != nil {
			return nil, "", err
		}
		// Only if nothing changed meanwhile is what we read the catalog at
		// gen: every change INCRs the generation in the same atomic step.
		tail, err := s.client.MGet(ctx, s.keys.generation, s.keys.epoch).Result()
		if err != nil {
			return nil, "", fmt.Errorf("reading the catalog from %s: %w", s.where, err)
		}
		if g, err := parseGeneration(tail[0]); err != nil || g != gen || tail[1] != head.Val()[1] {
			continue
		}

		changed, err := s.decodeReleases(members.Val(), values)
		if err != nil {
			return nil, "", err
		}
		sts, err := decodeStacks(s.keys.stacks, stacks.Val())
		if err != nil {
			return nil, "", err
		}
		releases := changed
		if base != nil {
			releases = patch(base.AllReleases(), changed)
		}
		return catalog.NewSnapshot(gen, releases, sts), curEpoch, nil
	}
	return nil, "", fmt.Errorf("reading the catalog from %s: it changed during %d consecutive reads", s.where, loadAttempts)
}

// readReleases MGETs the values of the index members, in order.
func (s *Store) readReleases(ctx context.Context, members []string) ([]any, error) {
	if len(members) == 0 {
		return nil, nil
	}
	p := s.client.Pipeline()
	var cmds []*redis.SliceCmd
	for i := 0; i < len(members); i += mgetChunk {
		chunk := members[i:min(i+mgetChunk, len(members))]
		ks := make([]string, len(chunk))
		for j, m := range chunk {
			ks[j] = s.keys.release + m
		}
		cmds = append(cmds, p.MGet(ctx, ks...))
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading releases from %s: %w", s.where, err)
	}
	values := make([]any, 0, len(members))
	for _, c := range cmds {
		values = append(values, c.Val()...)
	}
	return values, nil
}

// decodeReleases decodes and checks the values readReleases read.
func (s *Store) decodeReleases(members []string, values []any) ([]catalog.Release, error) {
	releases := make([]catalog.Release, 0, len(members))
	for i, v := range values {
		key := s.keys.release + members[i]
		data, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("release key %s is listed in %s but missing", key, s.keys.releases)
		}
		r, err := catalog.DecodeRelease([]byte(data))
		if err != nil {
			return nil, fmt.Errorf("release key %s: %w", key, err)
		}
		if want := s.keys.release + member(r.Name, r.Version); want != key {
			return nil, fmt.Errorf("release key %s holds %s, which belongs in %s", key, r.ID(), want)
		}
		releases = append(releases, r)
	}
	return releases, nil
}

// patch replaces or adds the changed releases in all (a fresh slice).
func patch(all, changed []catalog.Release) []catalog.Release {
	at := make(map[string]int, len(all))
	for i, r := range all {
		at[member(r.Name, r.Version)] = i
	}
	for _, r := range changed {
		if i, ok := at[member(r.Name, r.Version)]; ok {
			all[i] = r
		} else {
			all = append(all, r)
		}
	}
	return all
}

// versionKey is a version without build metadata.
func versionKey(v *semver.Version) string {
	bare, _ := v.SetMetadata("") // cannot fail for empty metadata
	return bare.String()
}

// member is a release's index member and key suffix: "<name>:<version>".
// Names never contain ':' (catalog.ValidateName), nor do versions.
func member(name string, v *semver.Version) string { return name + ":" + versionKey(v) }

func decodeStacks(key string, fields map[string]string) ([]catalog.Stack, error) {
	stacks := make([]catalog.Stack, 0, len(fields))
	for name, data := range fields {
		var st catalog.Stack
		// Unknown fields are ignored, as in releases: during a rolling
		// upgrade an older replica reads what a newer one wrote.
		if err := json.Unmarshal([]byte(data), &st); err != nil {
			return nil, fmt.Errorf("stack %s in %s: %w", name, key, err)
		}
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("stack %s in %s: %w", name, key, err)
		}
		if st.Name != name {
			return nil, fmt.Errorf("stack %s in %s: holds stack %q", name, key, st.Name)
		}
		stacks = append(stacks, st)
	}
	return stacks, nil
}

// backoff is the pause before retry attempt (1, 2, ...): 1ms doubling to
// 32ms.
func backoff(attempt int) time.Duration {
	return time.Millisecond << min(attempt-1, 5)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
