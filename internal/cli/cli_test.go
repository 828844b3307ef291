package cli

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseRoutesHelpAndErrorsByConvention(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantDone   bool
		wantStdout string
		wantStderr []string
	}{
		{"flags parse", []string{"-n", "3"}, ExitOK, false, "", nil},
		{"-help", []string{"-help"}, ExitOK, true, "usage: tool", nil},
		{"-h", []string{"-h"}, ExitOK, true, "usage: tool", nil},
		{"--help", []string{"--help"}, ExitOK, true, "usage: tool", nil},
		{"unknown flag", []string{"-nope"}, ExitUsage, true, "", []string{"flag provided but not defined: -nope", "usage: tool", "-n int"}},
		{"bad value", []string{"-n", "x"}, ExitUsage, true, "", []string{`invalid value "x" for flag -n`, "usage: tool"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("tool", flag.ContinueOnError)
			n := fs.Int("n", 1, "a number")
			var stdout, stderr bytes.Buffer
			code, done := Parse(fs, tc.args, &stdout, &stderr, Defaults(fs, "usage: tool [flags]\n"))
			if code != tc.wantCode || done != tc.wantDone {
				t.Fatalf("code %d done %v, want %d %v", code, done, tc.wantCode, tc.wantDone)
			}
			if tc.wantStdout == "" && stdout.Len() > 0 || !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.wantStdout)
			}
			if tc.wantStderr == nil && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if tc.name == "flags parse" && *n != 3 {
				t.Errorf("n = %d", *n)
			}
		})
	}
}

func TestUsagefWritesTheProblemAndTheUsageToStderr(t *testing.T) {
	var stderr bytes.Buffer
	code := Usagef(&stderr, func(w io.Writer) { io.WriteString(w, "usage: tool DIR\n") }, "missing %s", "DIR")
	if code != ExitUsage || stderr.String() != "missing DIR\n\nusage: tool DIR\n" {
		t.Fatalf("%d %q", code, stderr.String())
	}
}
