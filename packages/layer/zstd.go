package layer

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// CompressZstd writes the tar stream r to w compressed with zstd, the
// form a stack with layerCompression "zstd" serves. One encoder goroutine
// at the default level: the same tar gives the same bytes with the same
// library version (klauspost/compress, which containerd and
// go-containerregistry read zstd layers with too). The frames carry a
// checksum and the content size is not required by readers.
func CompressZstd(w io.Writer, r io.Reader) error {
	enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true))
	if err != nil {
		return err
	}
	if _, err := io.Copy(enc, r); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}
