// Package test holds envreg's end-to-end tests: they build the real
// binary, publish generated fixture packages with "envreg publish", run
// "envreg serve" on a loopback port and pull with real clients
// (go-containerregistry's remote package, crane, skopeo and the Docker
// engine). Deterministic fixture packages live in test/fixtures.
package test
