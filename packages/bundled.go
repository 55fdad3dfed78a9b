package packages

import (
	"embed"
	"io/fs"
)

// bundled holds the recipes that ship with envreg: base, php (two
// versions), nodejs and graphicsmagick, each in its directory. They have
// Debian sources only, so they need no file besides the recipes.
//
//go:embed */*.yaml
var bundled embed.FS

// BundledFS returns the bundled recipe files, the same tree as the
// packages/ directory of the source (minus Go code), for LoadRecipes.
func BundledFS() fs.FS { return bundled }

// Bundled loads the bundled recipes. Publish them with baseDir "".
func Bundled() ([]Recipe, error) { return LoadRecipes(bundled) }
