package manifestgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/layerstore"
	"github.com/envreg/envreg/resolver"
)

// Composer turns a request into a pinned image: resolve → generate → store
// the config blobs → store the manifests and the index as documents. Only
// then does it return, so a client that sees the response can fetch every
// digest it names (Nixery: "clients may start to fetch it by digest as soon
// as they see a response"). Results are cached per catalog generation, so a
// warm GET costs a map lookup.
type Composer struct {
	docs  Store
	blobs layerstore.Writer
	// touch is how often a composition's marks are refreshed while it is
	// served (catalog.ComposedMark.Served), and how long a cached
	// composition is trusted before it is stored again: gc may have
	// collected a composition nobody asked for during its retention.
	touch time.Duration
	now   func() time.Time

	mu         sync.Mutex
	generation uint64
	cache      map[cacheKey]*entry
	maxEntries int
	// marked remembers marks read or written recently (stack and digest
	// → when the mark was last refreshed), so that a pull by digest costs
	// no storage read while the mark is younger than the touch interval.
	// Marks only ever move forward between gc runs, and what gc unmarks
	// it also deletes, so a remembered mark serves nothing gc collected.
	marked map[markKey]time.Time
	// sboms remembers the SBOM artifacts stored for platform manifests
	// (Referrers), for the touch interval.
	sboms map[markKey]sbomEntry

	// Counters for Stats.
	cached, composed, failed atomic.Uint64
	composeNanos             atomic.Int64
	// observe, when set, hears of every request (WithObserver).
	observe func(cached bool, d time.Duration, err error)
}

// Stats are a Composer's counters since it was made.
type Stats struct {
	// Cached counts requests answered with a composition of the current
	// generation that was already stored (or being stored by another
	// request, which they waited for).
	Cached uint64
	// Composed counts compositions resolved, synthesized and stored, and
	// ComposeTime is the time they took.
	Composed    uint64
	ComposeTime time.Duration
	// Failed counts requests that got an error: a requirement set that
	// cannot be resolved, or a storage failure.
	Failed uint64
}

// Stats returns the counters.
func (c *Composer) Stats() Stats {
	return Stats{Cached: c.cached.Load(), Composed: c.composed.Load(),
		ComposeTime: time.Duration(c.composeNanos.Load()), Failed: c.failed.Load()}
}

type markKey struct {
	stack string
	d     digest.Digest
}

type cacheKey struct {
	stack  string
	req    string
	format Format
}

// entry is one composition, possibly still in progress (done not closed).
// Concurrent requests for the same key wait for the first one.
type entry struct {
	done   chan struct{}
	img    *Image
	err    error
	stored time.Time // when the composition was stored (marked served)
}

// ComposerOption configures a Composer.
type ComposerOption func(*Composer)

// WithCacheSize bounds the number of cached compositions (default 10,000).
// When full, the cache is emptied; recomposing is cheap and deterministic.
func WithCacheSize(n int) ComposerOption { return func(c *Composer) { c.maxEntries = n } }

// DefaultTouchInterval is how often a served composition's marks are
// refreshed (WithTouchInterval).
const DefaultTouchInterval = time.Hour

// WithTouchInterval sets how often the marks of a composition that is being
// served are refreshed (default DefaultTouchInterval). A warm GET writes
// nothing; the first GET after the interval stores the composition again
// (writing only what is missing) and refreshes its marks. gc's retention
// must be far longer.
func WithTouchInterval(d time.Duration) ComposerOption { return func(c *Composer) { c.touch = d } }

// WithObserver calls observe for every Compose: answered from the cache
// (cached), composed now (with the time it took), or failed (with the
// error). It runs on the request's goroutine and must be quick (metrics).
func WithObserver(observe func(cached bool, d time.Duration, err error)) ComposerOption {
	return func(c *Composer) { c.observe = observe }
}

// WithClock sets the clock marks are dated with (tests).
func WithClock(now func() time.Time) ComposerOption { return func(c *Composer) { c.now = now } }

// Store is where a Composer keeps what it composed: the documents, and the
// stack's marks on every digest it composed.
type Store interface {
	catalog.Documents
	catalog.Compositions
}

// NewComposer stores documents and marks in docs and config blobs in blobs.
func NewComposer(docs Store, blobs layerstore.Writer, opts ...ComposerOption) *Composer {
	c := &Composer{docs: docs, blobs: blobs, cache: map[cacheKey]*entry{}, marked: map[markKey]time.Time{}, sboms: map[markKey]sbomEntry{}, maxEntries: 10000,
		touch: DefaultTouchInterval, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Compose resolves req against snap (the same snapshot the request was
// parsed with) and returns the stored image. Errors from the resolver and
// from Generate are returned wrapped, so callers can inspect them with
// errors.As.
func (c *Composer) Compose(ctx context.Context, snap *catalog.Snapshot, st catalog.Stack, req resolver.Request, f Format) (*Image, error) {
	key := cacheKey{stack: st.Name, req: req.Key(), format: f}

	c.mu.Lock()
	if snap.Generation != c.generation {
		if snap.Generation < c.generation {
			// A snapshot older than the cache: compose without caching.
			c.mu.Unlock()
			return c.composeCounted(ctx, snap, st, req, f)
		}
		c.generation = snap.Generation
		c.cache = map[cacheKey]*entry{}
	}
	if e, ok := c.cache[key]; ok && !c.stale(e) {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			c.failed.Add(1)
		} else {
			c.cached.Add(1)
		}
		if c.observe != nil {
			c.observe(true, 0, e.err)
		}
		return e.img, e.err
	}
	if len(c.cache) >= c.maxEntries {
		c.cache = map[cacheKey]*entry{}
	}
	e := &entry{done: make(chan struct{})}
	c.cache[key] = e
	c.mu.Unlock()

	// The composition must not be cut short by the first client leaving:
	// others may be waiting for it.
	e.stored = c.now()
	e.img, e.err = c.composeCounted(context.WithoutCancel(ctx), snap, st, req, f)
	close(e.done)
	if e.err != nil {
		// Never cache a failure: storage errors are transient, and resolution
		// errors are cheap to recompute.
		c.mu.Lock()
		if c.cache[key] == e {
			delete(c.cache, key)
		}
		c.mu.Unlock()
	}
	return e.img, e.err
}

// stale reports whether a finished cache entry is older than the touch
// interval (c.mu held): it is composed and stored again.
func (c *Composer) stale(e *entry) bool {
	select {
	case <-e.done:
		return c.now().Sub(e.stored) >= c.touch
	default:
		return false // in progress
	}
}

// Cached reports whether a Compose of the same arguments would be answered
// from the cache, without storing anything. The registry uses it to charge
// only new compositions to a client's budget.
func (c *Composer) Cached(snap *catalog.Snapshot, st catalog.Stack, req resolver.Request, f Format) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[cacheKey{stack: st.Name, req: req.Key(), format: f}]
	return ok && snap.Generation == c.generation && !c.stale(e)
}

// composeCounted composes and counts the outcome.
func (c *Composer) composeCounted(ctx context.Context, snap *catalog.Snapshot, st catalog.Stack, req resolver.Request, f Format) (*Image, error) {
	start := time.Now()
	img, err := c.composeSafely(ctx, snap, st, req, f)
	d := time.Since(start)
	if c.observe != nil {
		c.observe(false, d, err)
	}
	if err != nil {
		c.failed.Add(1)
		return nil, err
	}
	c.composed.Add(1)
	c.composeNanos.Add(int64(d))
	return img, nil
}

// composeSafely turns a panic into an error, so that requests waiting on
// the same entry are released instead of hanging for the whole generation.
func (c *Composer) composeSafely(ctx context.Context, snap *catalog.Snapshot, st catalog.Stack, req resolver.Request, f Format) (img *Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("composing %s: panic: %v", req.Key(), p)
		}
	}()
	return c.compose(ctx, snap, st, req, f)
}

func (c *Composer) compose(ctx context.Context, snap *catalog.Snapshot, st catalog.Stack, req resolver.Request, f Format) (*Image, error) {
	res, err := resolver.Resolve(snap, st, req)
	if err != nil {
		return nil, err
	}
	img, err := Generate(res, f)
	if err != nil {
		return nil, err
	}
	if err := c.admit(ctx, img); err != nil {
		return nil, err
	}
	if err := c.Store(ctx, st.Name, img, false); err != nil {
		return nil, err
	}
	return img, nil
}

// admissionKey is the context key of WithAdmission.
type admissionKey struct{}

// WithAdmission returns a context in which a composition that would store
// something new (its index is not stored yet) is first admitted by admit;
// its error is returned, and nothing is stored. Compositions already
// stored, and requests answered from the cache, are never charged. The
// registry uses it to bound what one client can make the server store.
func WithAdmission(ctx context.Context, admit func() error) context.Context {
	return context.WithValue(ctx, admissionKey{}, admit)
}

// admit applies ctx's admission to a composition whose index is new.
func (c *Composer) admit(ctx context.Context, img *Image) error {
	admit, ok := ctx.Value(admissionKey{}).(func() error)
	if !ok {
		return nil
	}
	switch _, err := c.docs.Document(ctx, img.Index.Descriptor.Digest); {
	case err == nil:
		return nil
	case !errors.Is(err, catalog.ErrNotFound):
		return fmt.Errorf("looking up %s: %w", img.Index.Descriptor.Digest, err)
	}
	return admit()
}

// Pin stores img (composed by stack) and pins it, so that gc keeps it
// whatever its age: the provisioning API pins every reference it returns.
func (c *Composer) Pin(ctx context.Context, stack string, img *Image) error {
	return c.Store(ctx, stack, img, true)
}

// Serves reports whether stack serves digest d, as a blob or a document by
// digest (and lets other repositories mount it): a layer of a release in
// snap, or something the stack composed (its marks): the configs,
// manifests and indexes of its compositions, and the SBOM artifacts of its
// platform manifests with their SPDX documents and empty configs
// (Referrers marks them before it names them). This is the one place
// that says what a stack may hand out; a new kind is added by marking it
// where it is composed. A stack never serves what another repository
// holds. A mark not refreshed for the touch interval is
// refreshed, so that compositions pulled by digest stay collected only when
// nobody pulls them.
func (c *Composer) Serves(ctx context.Context, snap *catalog.Snapshot, stack string, d digest.Digest) (bool, error) {
	if snap.HasLayer(d) {
		return true, nil
	}
	now := c.now()
	key := markKey{stack, d}
	c.mu.Lock()
	served, ok := c.marked[key]
	c.mu.Unlock()
	if ok && now.Sub(served) < c.touch {
		return true, nil
	}
	m, err := c.docs.Composed(ctx, stack, d)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up %s in stack %s: %w", d, stack, err)
	}
	if served = m.Served; now.Sub(served) >= c.touch {
		if err := c.docs.MarkComposed(ctx, stack, now, false, d); err != nil {
			return false, fmt.Errorf("refreshing the mark of %s in %s: %w", d, stack, err)
		}
		served = now
	}
	c.remember(stack, served, d)
	return true, nil
}

// remember records fresh marks in c.marked, emptying it when full.
func (c *Composer) remember(stack string, served time.Time, ds ...digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.marked)+len(ds) > c.maxEntries*4 {
		clear(c.marked)
	}
	for _, d := range ds {
		c.marked[markKey{stack, d}] = served
	}
}

// Store persists img: config blobs first, then the manifests, then the index,
// so that nothing stored ever references something that is not. Within a
// step the writes run concurrently: each is durable (fsync) before it
// returns, and a first GET of a new combination spends most of its time
// waiting for those syncs, which the file system can overlap.
//
// The stack's marks on every digest of img (catalog.Compositions) are
// written in the first step, beside the configs: a mark on something not
// stored yet serves nothing, and everything is marked before the index
// makes the composition visible. pinned pins the marks.
func (c *Composer) Store(ctx context.Context, stack string, img *Image, pinned bool) error {
	err := concurrently(len(img.Configs)+1, func(i int) error {
		if i == len(img.Configs) {
			now, ds := c.now(), img.Digests()
			if err := c.docs.MarkComposed(ctx, stack, now, pinned, ds...); err != nil {
				return fmt.Errorf("marking %s as composed by %s: %w", img.Index.Descriptor.Digest, stack, err)
			}
			c.remember(stack, now, ds...)
			return nil
		}
		b := img.Configs[i]
		if err := c.blobs.Put(ctx, b.Descriptor.Digest, b.Descriptor.Size, bytes.NewReader(b.Data)); err != nil {
			return fmt.Errorf("storing config %s: %w", b.Descriptor.Digest, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	put := func(b Blob) error {
		d := catalog.Document{MediaType: b.Descriptor.MediaType, Digest: b.Descriptor.Digest, Data: b.Data}
		if err := c.docs.PutDocument(ctx, d); err != nil {
			return fmt.Errorf("storing manifest %s: %w", b.Descriptor.Digest, err)
		}
		return nil
	}
	if err := concurrently(len(img.Manifests), func(i int) error { return put(img.Manifests[i]) }); err != nil {
		return err
	}
	return put(img.Index)
}

// concurrently runs fn(0) … fn(n-1) at once and returns the error of the
// lowest i that failed (deterministic, whatever the timing).
func concurrently(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
