package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every command: -help on stdout with exit 0, a bad command line on stderr with exit 2.
func TestHelpAndBadFlagsOfEveryCommand(t *testing.T) {
	cases := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"-help"}, 0, "simulator <command>", ""},
		{[]string{"run", "-help"}, 0, "-out", ""},
		{[]string{"merge", "-help"}, 0, "-out", ""},
		{[]string{"chaos", "-help"}, 0, "-schedules", ""},
		{[]string{"fakewa", "-help"}, 0, "usage: simulator fakewa", ""},
		{[]string{"fakewa-load", "-help"}, 0, "usage: simulator fakewa-load", ""},
		{[]string{"run", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"merge", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"chaos", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"fakewa", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"fakewa-load", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"merge"}, 2, "", "-out and at least one run folder are needed"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.wantCode || !strings.Contains(stdout.String(), tc.wantStdout) || !strings.Contains(stderr.String(), tc.wantStderr) ||
			(tc.wantStdout == "" && stdout.Len() > 0) || (tc.wantStderr == "" && stderr.Len() > 0) {
			t.Errorf("%v: exit %d, stdout %.80q, stderr %.200q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
		}
	}
}
