// Command faults-report writes faults.md, the per-fault table of `make bench-faults`, into a bench
// folder (or one run folder) and prints it.
package main

import (
	"flag"
	"fmt"
	"os"

	"wagate/benchmarks/faultreport"
	"wagate/internal/buildinfo"
)

func main() {
	fs := flag.NewFlagSet("faults-report", flag.ExitOnError)
	command := fs.String("command", "", "command line recorded in the report")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: faults-report [-command CMD] DIR\n\nWrites DIR/faults.md: one row per fault of every run under DIR (runs with a faults.json).")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *version {
		fmt.Println(buildinfo.String("faults-report"))
		return
	}
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	rows, err := faultreport.WriteFile(fs.Arg(0), *command)
	if err == nil {
		err = faultreport.Markdown(os.Stdout, rows, *command)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults-report:", err)
		os.Exit(1)
	}
}
