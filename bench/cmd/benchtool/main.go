// Command benchtool is the Go half of bench/run.sh, envreg's side-by-side
// benchmark against CNCF Distribution. It is not part of envreg and not run
// by "go test ./...": run.sh builds it and calls its subcommands.
//
//	benchtool publish   write the fixture trees and publish them with "envreg publish --from-dir"
//	benchtool static    the physical limit: a bare http.ServeContent server over the same files
//	benchtool firstget  time the first GET of never-seen tags, one at a time, on one connection
//	benchtool freeport  print a free TCP port on 127.0.0.1 (for servers without --addr-file)
//	benchtool report    aggregate the run's results, print ratios, write docs/benchmarks.md
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool publish|static|firstget|freeport|report [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"publish":  runPublish,
		"static":   runStatic,
		"firstget": runFirstGet,
		"freeport": runFreePort,
		"report":   runReport,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchtool: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
