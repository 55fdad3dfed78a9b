// Package maintenance holds the algorithms that keep a store sound over
// time, outside of serving: gc collects what nothing references any more,
// Verify rechecks everything stored, Purge removes a package version for
// good, Migrate copies an embedded store into other backends, and Adopt
// gives compositions stored before stacks kept marks their marks.
//
// It works on the storage ports (catalog.Store, layerstore.Store) plus the
// optional capabilities that enumerating and deleting need, discovered by
// type assertion (see capabilities.go): listing blobs and documents,
// deleting them, telling when they were stored, walking the stacks' marks.
// A backend that lacks one is refused with a *MissingCapabilityError that
// names it. No concrete backend is imported here: cmd/envreg opens them.
//
// It is not a command line: it parses no flags and prints nothing. Each
// algorithm returns a report and hands what it does, item by item, to a
// callback of its options; cmd/envreg formats both. Nor is it part of
// serving: the registry never imports it, and envreg serve calls only Adopt,
// once, at start.
package maintenance
