// Package ingest registers packages pushed to the registry: an image or
// index pushed to the repository packages/<name> with the tag
// <version> becomes package version <name> <version>: its single layer per
// platform is registered as it is, byte for byte (the pushed blob is the
// catalog's layer). What the recipe fields say for a published package,
// labels say for a pushed one. They are read from the image config's labels
// (Dockerfile LABEL) and from the manifest's and the index's annotations
// (crane, oras, buildx --annotation); all of them together must give every
// platform the same values:
//
//	io.envreg.package.name       the package name; must match the repository (optional)
//	io.envreg.package.version    the version; must match the tag (optional)
//	io.envreg.package.env.path   directories to prepend to PATH, ':'-separated
//	                             (absolute and clean; no empty entry)
//	io.envreg.package.env.<VAR>  the environment variable VAR (not PATH); no
//	                             control characters, valid UTF-8
//	io.envreg.package.requires   constraints, ';'-separated: "base ^12; openssl >=3"
//	io.envreg.package.conflicts  constraints, ';'-separated
//	io.envreg.package.aliases    short names, ';'-separated (Release.Aliases): usable in
//	                             every stack that does not map them itself
//	io.envreg.package.label.<K>  the release label K (shown by the catalog API)
//
// Any other io.envreg.package.* key is refused (a typo must not silently
// drop a requirement). Labels outside that namespace are ignored.
//
// Ingestor.Ingest checks a Push (labels, platforms, one gzip layer per
// platform whose content passes layer.Policy.Inspect) and records the
// release with catalog.Publisher; anything wrong is refused with a
// *catalog.ValidationError or a refusal wrapping layer.ErrRefused, and
// nothing is registered. ReleaseLabels is the other direction: the labels
// that describe a release, for `envreg publish --registry`.
//
// It is not the publishing job (package packages builds layers from
// directories, tars and recipes) and imports neither it nor apt: the
// registry's push path (server/registry) links only this package, layer,
// catalog and layerstore.
package ingest
