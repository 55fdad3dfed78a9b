package fsstore

// SetHook installs a crash-injection hook: h is called at named points of a
// write ("temp-written" with the temp file, "file-written" with the release
// or stack file) and an error from it aborts the write there. Set it before
// using s.
func SetHook(s *Store, h func(point, path string) error) { s.hook = h }

// SetDocCacheBytes sets the document cache's budget. Set it before using s.
func SetDocCacheBytes(s *Store, n int) { s.docs.max = n }

// DocCacheBytes is how many bytes of document data s caches.
func DocCacheBytes(s *Store) int {
	s.docs.mu.Lock()
	defer s.docs.mu.Unlock()
	return s.docs.bytes
}
