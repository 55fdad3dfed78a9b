package manifestgen_test

import (
	"testing"

	"github.com/envreg/envreg/manifestgen"
)

// BenchmarkGenerate: 5 releases on 2 platforms, the size of a typical
// php+node image with base packages.
func BenchmarkGenerate(b *testing.B) {
	for _, f := range formats {
		b.Run(f.String(), func(b *testing.B) {
			res := manyReleases(5)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := manifestgen.Generate(res, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerateMaxLayers: the default layer limit, the worst case.
func BenchmarkGenerateMaxLayers(b *testing.B) {
	res := manyReleases(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := manifestgen.Generate(res, manifestgen.FormatOCI); err != nil {
			b.Fatal(err)
		}
	}
}
