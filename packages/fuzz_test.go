package packages_test

import (
	"bytes"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/envreg/envreg/packages"
)

// FuzzRecipeYAML's seeds are in testdata/fuzz/FuzzRecipeYAML; CI runs it
// for a bounded time (.ci/run):
//
//	go test -run '^$' -fuzz '^FuzzRecipeYAML$' -fuzztime 15s ./packages

// FuzzRecipeYAML loads arbitrary bytes as a recipe file. It must not
// panic; an accepted recipe must validate, and written back as YAML it
// must load as a recipe that writes the same YAML.
func FuzzRecipeYAML(f *testing.F) {
	f.Add([]byte(phpRecipe))
	f.Fuzz(func(t *testing.T, data []byte) {
		rcs, err := packages.LoadRecipes(fstest.MapFS{"r.yaml": {Data: data}})
		if err != nil {
			return
		}
		if len(rcs) != 1 {
			t.Fatalf("one file gave %d recipes", len(rcs))
		}
		rc := rcs[0]
		if err := rc.Validate(); err != nil {
			t.Fatalf("loaded recipe does not validate: %v", err)
		}
		out, err := yaml.Marshal(rc)
		if err != nil {
			t.Fatalf("marshalling the recipe: %v", err)
		}
		again, err := packages.LoadRecipes(fstest.MapFS{"r.yaml": {Data: out}})
		if err != nil {
			t.Fatalf("the recipe written back does not load: %v\n%s", err, out)
		}
		// Empty lists and maps are left out when written (omitempty), so
		// compare what the two recipes write, not the structs.
		out2, err := yaml.Marshal(again[0])
		if err != nil {
			t.Fatalf("marshalling the recipe again: %v", err)
		}
		if !bytes.Equal(out, out2) || again[0].Name != rc.Name || again[0].Version != rc.Version {
			t.Fatalf("round trip changed the recipe:\n%s\nthen\n%s", out, out2)
		}
	})
}
