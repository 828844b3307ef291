package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderWritesMarkdownAndHTML(t *testing.T) {
	dir := t.TempDir()
	golden, err := os.ReadFile(filepath.Join("..", "..", "testdata", "report.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), golden, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"render", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, f := range []string{"report.md", "report.html"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	out.Reset()
	if code := run([]string{"compare", "-md", dir, filepath.Join(dir, "report.json")}, &out, &errb); code != 0 {
		t.Fatalf("compare exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "### API latency p99 (ms)") {
		t.Errorf("compare output lacks the API p99 table:\n%s", out.String())
	}
}

func TestUsageErrorsExitWith2(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{nil, {"frobnicate"}, {"render"}, {"compare"}} {
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// -help goes to stdout with exit 0; a bad command line to stderr with exit 2.
func TestHelpGoesToStdoutWithExit0(t *testing.T) {
	cases := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"-help"}, 0, "reports compare [-md]", ""},
		{[]string{"-h"}, 0, "Exit codes:", ""},
		{[]string{"compare", "-help"}, 0, "usage: reports compare", ""},
		{[]string{"compare", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.wantCode || !strings.Contains(out.String(), tc.wantStdout) || !strings.Contains(errb.String(), tc.wantStderr) ||
			(tc.wantStdout == "" && out.Len() > 0) || (tc.wantStderr == "" && errb.Len() > 0) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out.String(), errb.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
		}
	}
}
