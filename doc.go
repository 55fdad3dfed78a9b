// Package envreg is a virtual-image registry: it composes OCI images from
// prebuilt, independently published package layers on every manifest GET.
// See README.md; the command is cmd/envreg.
package envreg
