// Command schedwait reads a Go execution trace of the gateway and says how long the goroutines
// serving API requests waited for a processor and what ran meanwhile (package
// wagate/benchmarks/schedwait; docs/deploy.md, "Where a latency tail comes from"):
//
//	curl -so gw.trace "http://127.0.0.1:6061/debug/pprof/trace?seconds=5"
//	go run ./benchmarks/cmd/schedwait gw.trace
//
// Exit code: 0, 1 when the trace cannot be read, 2 on a usage error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"wagate/benchmarks/schedwait"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts := schedwait.DefaultOptions()
	fs := flag.NewFlagSet("schedwait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: schedwait [flags] TRACE\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.Root, "root", opts.Root, "the function(s) the measured goroutines were started with, separated by commas")
	fs.DurationVar(&opts.LongWait, "long-wait", opts.LongWait, "waits from this long are examined: what ran during them")
	fs.DurationVar(&opts.LongSlice, "long-run", opts.LongSlice, "uninterrupted runs from this long are listed")
	rows := fs.Int("rows", 20, "rows of each table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *rows < 1 {
		fs.Usage()
		return 2
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(stderr, "schedwait:", err)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "schedwait:", err)
		return 1
	}
	defer f.Close()
	rep, err := schedwait.Analyze(f, opts)
	if err != nil {
		fmt.Fprintf(stderr, "schedwait: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	rep.Write(stdout, opts, *rows)
	return 0
}
