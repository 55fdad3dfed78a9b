//go:build unix

package layer

import (
	"io/fs"
	"syscall"
)

// fileID identifies the file behind a directory entry, and how many names
// (hard links) it has, where the system tells.
func fileID(info fs.FileInfo) (id [2]uint64, nlink uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return id, 0, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink), true
}
