package fsstore

import (
	"os"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/envreg/envreg/catalog"
)

// docCache keeps the documents this process read or wrote, by digest, each
// with the identity of its data file (device, inode, size, modification
// time). Document stats the file on every call and answers from the cache
// only while the file is still the one the entry was read from, so a
// document that another process deleted (envreg purge, gc) or deleted and
// stored again is seen at once. A hit costs one stat(2) instead of reading
// two files, hashing and parsing: a manifest GET by digest, which every
// pull makes, was spending most of its server time there.
type docCache struct {
	mu      sync.Mutex
	entries map[digest.Digest]docEntry
	bytes   int
	max     int
}

type docEntry struct {
	doc catalog.Document
	id  fileID
}

// fileID identifies one version of a file.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    syscall.Timespec
}

// defaultDocCacheBytes bounds the cached documents' data (about 20,000
// composed manifests).
const defaultDocCacheBytes = 32 << 20

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim}, true
}

// get returns the cached document if its file is still id.
func (c *docCache) get(d digest.Digest, id fileID) (catalog.Document, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok || e.id != id {
		return catalog.Document{}, false
	}
	return e.doc, true
}

// put caches doc, read from the file id. When the cache is full it starts
// over: rereading a document is cheap.
func (c *docCache) put(doc catalog.Document, id fileID) {
	if len(doc.Data) > c.max/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || c.bytes+len(doc.Data) > c.max {
		c.entries, c.bytes = map[digest.Digest]docEntry{}, 0
	}
	if old, ok := c.entries[doc.Digest]; ok {
		c.bytes -= len(old.doc.Data)
	}
	c.entries[doc.Digest] = docEntry{doc: doc, id: id}
	c.bytes += len(doc.Data)
}

// drop forgets d.
func (c *docCache) drop(d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[d]; ok {
		c.bytes -= len(old.doc.Data)
		delete(c.entries, d)
	}
}
