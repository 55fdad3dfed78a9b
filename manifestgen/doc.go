// Package manifestgen synthesises the image documents envreg serves for a
// resolved requirement set: one image config and one image manifest per
// platform, and the image index (or Docker manifest list) that ties them
// together. It does not build or read layers; a layer is a catalog.Layer
// (digest, diff ID, size, media type) that was published earlier.
//
// Generate is pure: no clock, no I/O, no randomness. Equal resolutions give
// byte-identical documents, so every replica of the registry serves the
// same digests for the same tag, and a client that pulled a tag yesterday
// sees the same digest today unless the catalog changed. Persisting the
// documents (config blobs before the manifests that reference them,
// manifests before they are returned) is the Composer's job, not Generate's.
//
// # What goes into an image
//
// For a resolution of stack "env" to base 12.0.0, nodejs 20.11.1 and
// php 8.2.36 (layer order) on linux/amd64 and linux/arm64/v8:
//
//	index        mediaType, one descriptor per platform (in Resolution.Platforms order),
//	             annotations io.envreg.stack=env, io.envreg.package.php=8.2.36, …
//	manifest     per platform: config descriptor, layers base, nodejs, php, each in
//	             the stack's layer form (LayerDescriptor: gzip as published, or with
//	             layerCompression none the stored tar, digest = diff ID)
//	config       architecture/os/variant of the platform
//	             created      = newest Published of the releases (UTC, seconds)
//	             rootfs       = diff IDs in layer order
//	             history      = one entry per layer: "envreg: php 8.2.36" at its Published time
//	             Env          = PATH first, then the other variables sorted by name
//	             Labels       = stack labels < release labels (layer order) < io.envreg.* labels
//	             User, WorkingDir, Entrypoint, Cmd from the stack
//
// # PATH
//
// PATH is composed as: the Env.Path entries of the releases, the release
// LAST in layer order first (each release's own entries keep their order),
// then the entries of the stack's PATH (catalog.DefaultPath when the stack
// sets none or an empty one). Duplicates keep their first occurrence and
// empty entries (which would mean "the current directory") are dropped.
// For the example above, with base /usr/local/base/bin, nodejs
// /opt/nodejs/bin and php /opt/php/bin:/opt/php/sbin:
//
//	PATH=/opt/php/bin:/opt/php/sbin:/opt/nodejs/bin:/usr/local/base/bin:/usr/local/sbin:…
//
// Later-first mirrors the filesystem: a layer higher in the stack overrides
// the files of the layers below it, so its directories also win the PATH
// lookup, and a requested package shadows a same-named tool of the base.
//
// Other variables are the stack's Env (without PATH) overridden by the
// releases' Env.Vars in layer order (the resolver refuses two releases that
// set one variable differently, so the override order rarely matters), and
// are emitted as "KEY=VALUE" sorted by key.
//
// # Determinism rules
//
// Documents are built from the ocispec structs (fixed field order) and
// marshalled by one helper with json.Marshal (never a json.Encoder, which
// appends a newline). encoding/json sorts map keys; everything else that
// comes from a map (Env) is sorted here. Times are converted to UTC and
// truncated to the second, because time.Time marshals with its location and
// a replica in another zone would otherwise produce other bytes. A zero
// Published time is omitted rather than written as year 1. Nothing from the
// request (the tag spelling) enters a document: php-8.2_node-20 and
// node-20_php-8.2.36 resolving to the same releases give the same bytes.
//
// # Docker format
//
// FormatDocker produces a Docker manifest list and Docker schema 2
// manifests. The JSON shapes are the same as the OCI index and manifest;
// only media types differ: the config descriptor uses the Docker config
// type (the config JSON itself is identical) and OCI tar and tar+gzip
// layers are described with their Docker equivalents; other layer types are
// kept as stored. The manifest list carries the same io.envreg.* annotations
// as the OCI index although the Docker schema has no such field: Docker,
// distribution, containerd and containers/image ignore unknown fields (the
// last one only rejects config, layers, fsLayers and history in a list), and
// the annotations are the one place a client can see what a tag resolved to.
//
// # SBOMs
//
// Each platform manifest a stack composed also has an SBOM, an OCI
// artifact whose subject is the manifest (package sbom renders it): the
// Composer composes and stores it when the referrers API is asked about
// the manifest (Referrers) or the provisioning API asks for it
// (StoreSBOM). sbom.go says why it is not stored on the pull path.
package manifestgen
