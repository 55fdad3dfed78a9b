//go:build unix

package debian

import (
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on name, creating it, so that two
// processes sharing a cache do not run apt on it at the same time (apt's
// own locking is off: it would lock the machine's dpkg database).
func lockFile(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the Debian cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the Debian cache %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
