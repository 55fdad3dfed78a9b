package resolver

import (
	"github.com/Masterminds/semver/v3"

	"github.com/envreg/envreg/catalog"
)

// Requirement is one requested package: a canonical package name and a
// semver range. Spelling is how the range was written ("8.2" in a tag,
// "^8.2" in the API); it is what Key and error messages show.
type Requirement struct {
	Name     string
	Range    *semver.Constraints
	Spelling string
}

// Request is a requirement set for one stack, canonical: aliases expanded,
// sorted by name, each package at most once.
type Request struct {
	Stack        string
	Requirements []Requirement
	// Latest is true for the tag "latest" (the stack's Latest requirements).
	Latest bool
}

// Resolution is the outcome of Resolve: exact releases in layer order.
type Resolution struct {
	Stack   catalog.Stack
	Request Request
	// Releases in layer order: the stack's base packages first (in stack
	// order), then the others in dependency order (a package after the
	// packages it requires), ties broken by name.
	Releases []catalog.Release
	// Platforms that every selected release has a layer for, sorted by
	// Platform.String(). Never empty.
	Platforms []catalog.Platform
}
