package registry

import (
	"sync"

	"github.com/envreg/envreg/catalog"
	"github.com/envreg/envreg/resolver"
)

// tagCache memoises tag → parsed request for one catalog generation.
// Parsing a tag compiles a semver constraint per component, which was about
// a quarter of a warm manifest GET's CPU although the composition itself is
// cached. The parse depends only on the tag and the snapshot (known names,
// aliases, the stack's defaults), so it is reused until the generation
// changes. Failed parses are not kept: a client can send endless bad tags.
type tagCache struct {
	mu         sync.Mutex
	generation uint64
	requests   map[tagKey]resolver.Request
}

type tagKey struct{ stack, tag string }

// maxCachedTags bounds the cache; when full it starts over.
const maxCachedTags = 10000

// parse returns the request for tag in st, parsed against snap.
func (c *tagCache) parse(snap *catalog.Snapshot, st catalog.Stack, tag string) (resolver.Request, error) {
	key := tagKey{st.Name, tag}
	c.mu.Lock()
	if c.generation == snap.Generation && c.requests != nil {
		if req, ok := c.requests[key]; ok {
			c.mu.Unlock()
			return req, nil
		}
	}
	c.mu.Unlock()

	req, err := resolver.ParseTag(tag, st, resolver.StackNames(snap, st))
	if err != nil {
		return req, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case snap.Generation > c.generation || c.requests == nil:
		c.generation, c.requests = snap.Generation, map[tagKey]resolver.Request{}
	case snap.Generation < c.generation:
		return req, nil // an older snapshot: do not mix it into the cache
	}
	if len(c.requests) >= maxCachedTags {
		c.requests = map[tagKey]resolver.Request{}
	}
	c.requests[key] = req
	return req, nil
}
