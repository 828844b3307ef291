// Package cli gives every wagate binary the same command-line conventions:
//
//   - `-help` (or -h) writes the usage to standard output and exits 0;
//   - a bad flag or argument writes the problem and the usage to standard error and exits 2
//     (ExitUsage);
//   - otherwise the binary documents its own exit codes in its usage (0 success, 1 failure, and
//     for the harness 99 when a threshold failed, like k6).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes shared by every wagate binary.
const (
	// ExitOK: the command did what was asked (also after -help and -version).
	ExitOK = 0
	// ExitFailure: the command ran and failed.
	ExitFailure = 1
	// ExitUsage: the command line was wrong (unknown flag, bad value, missing argument).
	ExitUsage = 2
)

// Parse parses args into fs. usage writes the full usage text to the writer it is given. It
// returns done == false when the caller should go on; otherwise the process should exit with
// code: ExitOK after -help (usage on stdout), ExitUsage after a bad command line (the flag
// package's message, then the usage, on stderr).
func Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usage func(w io.Writer)) (code int, done bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to the stream that fits
	err := fs.Parse(args)
	switch {
	case err == nil:
		return ExitOK, false
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return ExitOK, true
	default:
		fmt.Fprintln(stderr)
		usage(stderr)
		return ExitUsage, true
	}
}

// Usagef reports a command-line problem the flag package cannot see (a missing or extra
// argument): the message and the usage on stderr. It returns ExitUsage.
func Usagef(stderr io.Writer, usage func(w io.Writer), format string, args ...any) int {
	fmt.Fprintf(stderr, format+"\n\n", args...)
	usage(stderr)
	return ExitUsage
}

// Defaults returns a usage function: head, then fs's flags with their defaults.
func Defaults(fs *flag.FlagSet, head string) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprint(w, head)
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}
