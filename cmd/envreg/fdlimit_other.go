//go:build !unix

package main

// openFileLimit is unknown on this system.
func openFileLimit() (uint64, bool) { return 0, false }
