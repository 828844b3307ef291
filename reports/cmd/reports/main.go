// Command reports renders and compares wagate simulation reports.
//
//	reports render DIR                     re-render DIR/report.md and DIR/report.html from the
//	                                       report.json files in DIR (a bench folder or a run folder)
//	reports compare [-md] A B [C...]       one table per figure: median ± 95% CI per configuration
//	                                       and the change against A with a Mann-Whitney p-value
//
// Compare's arguments are report.json files, run folders, folders of repeats (run1, run2, ...) or
// bench folders (one configuration per entry).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"wagate/internal/buildinfo"
	"wagate/reports"
)

const usage = `usage:
  reports render DIR               re-render DIR/report.md and DIR/report.html from report.json
  reports compare [-md] A B [C...] compare configurations (report.json, run folder, folder of
                                   repeats, or bench folder) against the first
  reports -version`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, buildinfo.String("reports"))
		return 0
	case "render":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: reports render DIR")
			return 2
		}
		if err := reports.RenderDir(args[1]); err != nil {
			fmt.Fprintln(stderr, "reports render:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s/report.md and %s/report.html\n", args[1], args[1])
		return 0
	case "compare":
		fs := flag.NewFlagSet("compare", flag.ContinueOnError)
		fs.SetOutput(stderr)
		md := fs.Bool("md", false, "write Markdown instead of aligned text")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() < 1 {
			fmt.Fprintln(stderr, "usage: reports compare [-md] A B [C...]")
			return 2
		}
		cols, err := reports.ColumnsFrom(fs.Args())
		if err != nil {
			fmt.Fprintln(stderr, "reports compare:", err)
			if errors.Is(err, reports.ErrSchema) {
				return 2
			}
			return 1
		}
		tables := reports.Compare(cols, reports.CompareFigures)
		write := reports.WriteCompareText
		if *md {
			write = reports.WriteCompareMarkdown
		}
		if err := write(stdout, tables); err != nil {
			fmt.Fprintln(stderr, "reports compare:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}
