package catalog_test

import (
	"testing"

	"github.com/envreg/envreg/catalog"
)

// The fuzz targets of the catalog's small grammars. Seeds are in
// testdata/fuzz/<target>; CI runs each for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzParseConstraint$' -fuzztime 15s ./catalog
//	go test -run '^$' -fuzz '^FuzzParsePlatform$' -fuzztime 15s ./catalog

// FuzzParseConstraint checks that ParseConstraint never panics, that an
// accepted constraint validates and parses its range, and that its
// String form parses back to the same constraint (what the stores write
// is what they read).
func FuzzParseConstraint(f *testing.F) {
	f.Add("base ^12")
	f.Add("php >=8.1 <8.4")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := catalog.ParseConstraint(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConstraint(%q) = %+v, which does not validate: %v", s, c, err)
		}
		if rng, err := c.Constraints(); err != nil || rng == nil {
			t.Fatalf("ParseConstraint(%q) = %+v: range does not parse: %v", s, c, err)
		}
		again, err := catalog.ParseConstraint(c.String())
		if err != nil {
			t.Fatalf("ParseConstraint(%q) = %q, which does not parse: %v", s, c.String(), err)
		}
		if again != c {
			t.Fatalf("round trip of %q: %+v, then %+v", s, c, again)
		}
	})
}

// FuzzParsePlatform checks that ParsePlatform never panics and that an
// accepted platform's String parses back to it.
func FuzzParsePlatform(f *testing.F) {
	f.Add("linux/amd64")
	f.Add("linux/arm/v7")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := catalog.ParsePlatform(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePlatform(%q).String() = %q", s, p.String())
		}
		again, err := catalog.ParsePlatform(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %+v, then %+v (%v)", s, p, again, err)
		}
	})
}
