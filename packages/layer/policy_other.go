//go:build !unix

package layer

import "io/fs"

// fileID reports no identity where the system does not give one: hard
// links cannot be told from copies there.
func fileID(fs.FileInfo) (id [2]uint64, nlink uint64, ok bool) { return id, 0, false }
