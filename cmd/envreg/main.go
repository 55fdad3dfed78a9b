// Command envreg is the envreg registry: one binary with subcommands to
// serve the registry, publish package versions, resolve requirement sets,
// manage stacks and maintain the stores (gc, verify, yank, purge,
// migrate). Run "envreg help" for the list.
//
// It is flags, wiring and output: the only package that names concrete
// backends (chosen by URL scheme in backends.go). What a command does
// lives in the packages it calls: publishing in packages, the maintenance
// algorithms in maintenance, serving in server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// CA roots for TLS to Redis and S3 when the system has none (the
	// container image is FROM scratch); a system bundle takes precedence.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
