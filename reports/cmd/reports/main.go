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
	"wagate/internal/cli"
	"wagate/reports"
)

const usage = `usage:
  reports render DIR               re-render DIR/report.md and DIR/report.html from report.json
  reports compare [-md] A B [C...] compare configurations (report.json, run folder, folder of
                                   repeats, or bench folder) against the first
  reports -version
  reports -help

Exit codes: 0 done, 1 failed (unreadable reports, write errors), 2 bad command line or a report
of an unknown schema version.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
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
		md := fs.Bool("md", false, "write Markdown instead of aligned text")
		compareUsage := cli.Defaults(fs, "usage: reports compare [-md] A B [C...]\n\n")
		if code, done := cli.Parse(fs, args[1:], stdout, stderr, compareUsage); done {
			return code
		}
		if fs.NArg() < 1 {
			return cli.Usagef(stderr, compareUsage, "reports compare: at least one configuration is needed")
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
	fmt.Fprintf(stderr, "reports: unknown command %q\n\n%s", args[0], usage)
	return cli.ExitUsage
}
