package fsstore

// SetHook installs a crash-injection hook: h is called at named points of a
// write ("temp-written" with the temp file, "file-written" with the release
// or stack file) and an error from it aborts the write there. Set it before
// using s.
func SetHook(s *Store, h func(point, path string) error) { s.hook = h }
