// Package maintenance holds the algorithms that keep a store sound over
// time, outside of serving: GC collects what nothing keeps any more, Verify
// rechecks everything stored, Purge removes a package version for good,
// Migrate copies an embedded store into other backends, and Adopt gives
// compositions stored before stacks kept marks their marks.
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
//
// # Collecting compositions
//
// Every pull of a tag stores the composition it serves (index, manifests,
// configs), so that its digest stays pullable, and its stack marks each of
// those digests with when it was last served (manifestgen.Composer). The
// marks are what says a composition is alive: gc removes the marks neither
// pinned nor served within the retention, and then collects the documents
// that no mark and no repository keeps, as it collects pushed manifests
// deleted from their repositories. For example, with a retention of 90
// days:
//
//	day 0    GET env:php-8.2        composes, stores and marks I, M1, M2, C1, C2
//	day 10   GET env@I              refreshes I's mark only (once an hour at most)
//	day 95   gc                     I was served on day 10: I, M1, M2, C1, C2 stay
//	day 105  gc                     I, M1, M2, C1, C2 unmarked, I, M1, M2 deleted,
//	                                then C1, C2 with the unreferenced blobs
//
// On day 95, M1's mark is 95 days old, but I names it: a fresh index keeps
// what it names, so a stack never serves an index whose manifests it
// stopped serving. A pinned mark (the provisioning API's) is never removed
// by gc; envreg purge removes it with the compositions that use a purged
// version.
package maintenance
