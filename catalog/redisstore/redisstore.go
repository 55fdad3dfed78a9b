// Package redisstore implements catalog.Store on Redis (go-redis v9), for
// several envreg replicas that share one catalog: publishes are atomic,
// every replica sees a change within a second, and synthesized manifests
// are stored once for all of them. It is not a cache in front of another
// store: Redis is the catalog's only copy, so it must persist (AOF or RDB).
//
// # URLs
//
// Open takes one URL. The plain forms are go-redis's own (redis.ParseURL);
// Sentinel and Cluster addresses list their nodes in the host part:
//
//	redis://[USER:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]           one server (port 6379, DB 0 by default)
//	rediss://...                                                  the same over TLS
//	unix://[USER:PASSWORD@]/PATH/redis.sock[?db=DB&OPTIONS]       one server on a Unix socket
//	redis+sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB][?OPTIONS]
//	                                                              Sentinels (port 26379 by default) and the
//	                                                              name of the master they watch
//	redis+cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?OPTIONS]
//	                                                              seed nodes of a Redis Cluster (DB 0 only)
//	rediss+sentinel://..., rediss+cluster://...                   the same over TLS
//
// USER and PASSWORD always authenticate to the Redis servers that hold the
// data; Sentinels that require their own credentials get them from the
// sentinel_username and sentinel_password options. OPTIONS are go-redis's
// URL options (dial_timeout=3s, read_timeout=2s, pool_size=20,
// client_name=..., skip_verify=true, ...); an unknown option is an error.
// Where failing fast matters, envreg's defaults differ from go-redis's
// (the URL can set each): context_timeout_enabled=true, so that a cancelled
// request stops waiting for Redis; dial_timeout=2s, dialer_retries=1 and
// max_retries=1, so that a Redis that is down is reported in milliseconds
// rather than after go-redis's retries (about two seconds a command); and
// client_name=envreg, for CLIENT LIST. Examples:
//
//	redis://127.0.0.1:6379/0
//	rediss://envreg:s3cret@redis.internal:6380/2?dial_timeout=2s
//	redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0
//	redis+cluster://10.0.1.1:7000,10.0.1.2:7000,10.0.1.3:7000
//
// # Keys
//
// Every key starts with the key prefix (WithKeyPrefix, default "envreg:"),
// so several installations and test runs can share one Redis. The catalog
// keys put the prefix in braces, a Redis Cluster hash tag: they all live in
// one slot, which is what lets one transaction or script touch several of
// them. Documents do not need that and spread over the cluster. With the
// default prefix:
//
//	{envreg:}generation                 string  decimal uint64, INCRed by every change
//	{envreg:}epoch                      string  random id, set when missing; a new value means
//	                                            the data was lost (FLUSHDB, restart without persistence)
//	{envreg:}releases                   zset    index: member "<name>:<version>", score = the
//	                                            generation of the release's last change
//	{envreg:}rel:<name>:<version>       string  one catalog.Release as JSON
//	{envreg:}stacks                     hash    field <stack name> -> catalog.Stack as JSON
//	envreg:doc:<algorithm>:<hex>        hash    mediaType -> media type, data -> raw bytes
//	envreg:upload:<id>                  string  a blob upload session's record (uploads.go), expiring
//	                                            after the maximum idle age
//	envreg:changes                      channel (pub/sub, not a key): new generation, decimal
//
// <version> is the version without build metadata (8.2.36 for 8.2.36+deb12):
// semver ignores build metadata for precedence, so 8.2.36+a and 8.2.36+b are
// one version whose metadata differs (catalog.SameContent), as in fsstore.
// The value records the full version.
//
// # Changes
//
// Publish reads the stored release, merges the new one into it in Go (the
// rules of catalog.Publisher, the same as fsstore) and commits with a Lua
// script that is a compare-and-set: if the release key still holds what was
// read, the script writes the merged release, INCRs the generation, records
// it as the release's score in the index and PUBLISHes it, all in one
// atomic step; otherwise nothing is written and Publish reads again. So a
// reader never sees a release without its index entry or generation, and
// two replicas publishing platforms of one version concurrently both land.
// The merge stays in Go (a copy of fsstore's, so rules and error messages
// agree); the script only decides whether what Go saw is still true.
// PutStack and PutDocument are single scripts (no merge to compute). A
// change that changes nothing neither writes nor bumps the generation.
//
// # Snapshots
//
// Snapshot returns the cached *catalog.Snapshot while it is known to be
// current, without I/O. Two things tell a Store that it is not:
//
//   - a message on the changes channel (immediate), and
//   - a GET of the generation every poll interval (WithPollInterval, default
//     500ms), the fallback for a lost message: a subscription that
//     reconnected, a proxy that drops pub/sub. A resubscription also triggers
//     a check at once, since messages sent while it was down are lost.
//
// The first Snapshot call after either reloads. A reload reads the
// generation, the epoch, the index entries newer than the cached generation
// and the stacks in one MULTI/EXEC, then MGETs those releases, then reads
// the generation again: if it moved, something was written in between and
// the reload starts over. What a snapshot holds is therefore exactly the
// catalog at the generation it reports. Only the releases that changed are
// read (the index score is the generation of a release's last change); a
// generation lower than the cached one or a new epoch means Redis lost data,
// and the whole catalog is read again. A change made through this Store is
// visible to its next Snapshot call.
//
// If the generation could not be confirmed for longer than the maximum
// staleness (WithMaxStaleness, default three poll intervals), because Redis
// is unreachable, Snapshot asks Redis itself and fails fast with that error
// rather than serving a catalog that might be stale; it retries at most once
// per poll interval, and serves again as soon as Redis answers. Set a long
// maximum staleness to keep serving the cached catalog through an outage.
//
// # Limits
//
// Lost data is detected by the generation going backwards or by a new
// epoch. A Sentinel failover can lose the last acknowledged writes (Redis
// replication is asynchronous) without either: if the new master then takes
// as many changes as were lost before a replica polls, that replica cannot
// tell its cache from the new history, keeps the lost release and misses the
// changes that reused its generation numbers, until it restarts. Run Redis
// with persistence and, with Sentinel, min-replicas-to-write.
//
// Commands used (for ACLs): GET, MGET, SET, INCR, ZADD, ZREM, ZRANGEBYSCORE,
// HGET, HSET, HSETNX, HDEL, HKEYS, HGETALL, HMGET, SADD, SREM, SMEMBERS,
// SISMEMBER, EXISTS, DEL, SCAN (envreg verify, gc and purge), MULTI, EXEC,
// EVAL, EVALSHA, PUBLISH, SUBSCRIBE, PING, and go-redis's connection setup
// (HELLO, CLIENT SETNAME/SETINFO). Ordinary repositories (repos.go),
// purging (purge.go) and upload session records (uploads.go) document their
// keys and scripts there.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/envreg/envreg/catalog"
)

const (
	// DefaultKeyPrefix starts every key and the channel name.
	DefaultKeyPrefix = "envreg:"
	// DefaultPollInterval is how often a Store reads the generation as the
	// fallback for lost change notifications.
	DefaultPollInterval = 500 * time.Millisecond
	// checkTimeout bounds one background generation check.
	checkTimeout = 5 * time.Second
)

// Option configures Open.
type Option func(*Store)

// WithKeyPrefix sets the prefix of every key and of the channel name
// (default "envreg:"). Stores with the same Redis and prefix share one
// catalog. The prefix must not be empty or contain '{' or '}'.
func WithKeyPrefix(p string) Option {
	return func(s *Store) { s.prefix = p }
}

// WithPollInterval sets how often the Store reads the generation in the
// background, to catch changes whose notification was lost (default 500ms).
// 0 reads it on every Snapshot call instead.
func WithPollInterval(d time.Duration) Option {
	return func(s *Store) { s.poll = max(d, 0) }
}

// WithMaxStaleness sets how long Snapshot serves the cached catalog after
// the last successful read of the generation (default three poll
// intervals). When Redis has been unreachable for longer, Snapshot fails
// instead; a long duration keeps serving the cached catalog through an
// outage, at the price of missing changes made meanwhile.
func WithMaxStaleness(d time.Duration) Option {
	return func(s *Store) { s.maxStale = max(d, 0) }
}

// WithObservers reports every Redis command (op: the command name, lower
// case, or "pipeline"; err nil for redis.Nil, a missing key is an answer)
// and each reload, for metrics.
func WithObservers(o catalog.Observers) Option {
	return func(s *Store) { s.obs = o }
}

// WithLogger sets the logger for connection trouble and recovery (warn,
// info) and reloads (debug). The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// Store is a catalog.Store on Redis. It is safe for concurrent use, and any
// number of Stores (in any number of processes) may share one Redis and key
// prefix.
type Store struct {
	// RepositoryStore is catalog.Repositories over this store's keys
	// (repos.go).
	*catalog.RepositoryStore

	client   redis.UniversalClient
	where    string // the URL without password, for messages
	prefix   string
	keys     keys
	poll     time.Duration
	maxStale time.Duration // -1 until Open applies the default
	log      *slog.Logger

	state     atomic.Pointer[state]
	observed  atomic.Uint64 // highest generation known to exist in Redis
	resets    atomic.Uint64 // incremented when Redis turns out to have lost data
	confirmed atomic.Int64  // UnixNano when a read of the generation that succeeded started
	loading   chan struct{} // one reload or check at a time; a channel so waiting honours ctx

	pubsub *redis.PubSub
	kick   chan struct{} // asks the poller for a check now
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	dropNotifications atomic.Bool // tests: lose every change message

	obs catalog.Observers
}

var _ catalog.Store = (*Store)(nil)

var errClosed = fmt.Errorf("redisstore: store is closed: %w", catalog.ErrUnavailable)

// keys are the names of a Store's keys and channel; see the package doc.
type keys struct {
	generation, epoch, releases, stacks string
	release                             string // + "<name>:<version>"
	document                            string // + digest
	channel                             string
}

func newKeys(prefix string) keys {
	tag := "{" + prefix + "}"
	return keys{
		generation: tag + "generation",
		epoch:      tag + "epoch",
		releases:   tag + "releases",
		stacks:     tag + "stacks",
		release:    tag + "rel:",
		document:   prefix + "doc:",
		channel:    prefix + "changes",
	}
}

func validatePrefix(p string) error {
	if p == "" || strings.ContainsAny(p, "{}") {
		return fmt.Errorf("invalid key prefix %q: must be non-empty and without '{' or '}' (it becomes a cluster hash tag)", p)
	}
	return nil
}

// Open connects to the Redis that url names (see the package doc for the
// forms), subscribes to change notifications and loads the catalog. A
// release or stack that does not parse or validate is an error naming its
// key. ctx bounds Open only; Close stops what Open started.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s := &Store{
		prefix:   DefaultKeyPrefix,
		poll:     DefaultPollInterval,
		maxStale: -1,
		log:      slog.New(slog.DiscardHandler),
		loading:  make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		where:    redact(url),
	}
	for _, o := range opts {
		o(s)
	}
	s.RepositoryStore = catalog.NewRepositoryStore(repoDriver{s}, s.usable)
	if s.maxStale < 0 {
		s.maxStale = 3 * s.poll
	}
	if err := validatePrefix(s.prefix); err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", s.where, err)
	}
	s.keys = newKeys(s.prefix)

	client, err := newClient(url)
	if err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", s.where, err)
	}
	client.AddHook(unavailableHook{})
	if s.obs.Op != nil {
		client.AddHook(observeHook(s.obs.Op))
	}
	s.client = client
	if err := s.start(ctx); err != nil {
		if s.pubsub != nil {
			s.pubsub.Close()
		}
		client.Close()
		return nil, fmt.Errorf("opening catalog %s: %w", s.where, err)
	}
	return s, nil
}

// start checks the connection, subscribes, loads, and starts the
// background goroutines.
func (s *Store) start(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return err
	}
	if err := s.client.SetNX(ctx, s.keys.epoch, newEpoch(), 0).Err(); err != nil {
		return err
	}
	// Subscribe before loading, so that no change falls between the two.
	s.pubsub = s.client.Subscribe(ctx, s.keys.channel)
	msg, err := s.pubsub.Receive(ctx)
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", s.keys.channel, err)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return fmt.Errorf("subscribing to %s: unexpected reply %v", s.keys.channel, msg)
	}
	started := time.Now()
	snap, epoch, err := s.load(ctx, nil, "")
	if err != nil {
		return err
	}
	s.obs.Reloaded(started)
	s.state.Store(&state{snap: snap, epoch: epoch})
	s.observed.Store(snap.Generation)
	s.confirmed.Store(started.UnixNano())

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	msgs := s.pubsub.ChannelWithSubscriptions()
	s.wg.Go(func() { s.listen(msgs) })
	if s.poll > 0 {
		s.wg.Go(func() { s.watch(bg) })
	}
	return nil
}

// Close stops the subscriber and the poller and closes the connections.
// Calls after the first do nothing.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	s.pubsub.Close()
	s.wg.Wait()
	return s.client.Close()
}

// newEpoch returns a random epoch, to be stored if the epoch key is
// missing: fresh for every change, so that the first change after the data
// was lost always starts a new epoch.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// usable is what every method checks after validating its arguments.
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// wrap names the Redis in an error from it (nil stays nil).
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", s.where, err)
}
