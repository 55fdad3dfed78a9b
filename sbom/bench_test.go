package sbom_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/envreg/envreg/sbom"
)

// BenchmarkScan measures the extra read publishing makes of a layer: 2,000
// files of 16 KiB (incompressible, 32 MiB of tar) and 100 dpkg records
// with their copyright files.
func BenchmarkScan(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var files [][2]string
	for i := range 100 {
		files = append(files, [2]string{fmt.Sprintf("var/lib/dpkg/status.d/pkg%d", i), fmt.Sprintf("Package: pkg%d\nVersion: 1.%d-1\nArchitecture: amd64\n", i, i)},
			[2]string{fmt.Sprintf("usr/share/doc/pkg%d/copyright", i), "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n"})
	}
	buf := make([]byte, 16<<10)
	for i := range 2000 {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		files = append(files, [2]string{fmt.Sprintf("usr/lib/f%d", i), string(buf)})
	}
	layer := layerTar(b, files)
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for b.Loop() {
		c, err := sbom.Scan(b.Context(), bytes.NewReader(layer))
		if err != nil || len(c.Components) != 100 {
			b.Fatal(err, len(c.Components))
		}
	}
}
