package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadInputIsAUsageErrorOrAnUnreadableTraceWithAMessage(t *testing.T) {
	notATrace := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notATrace, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		exit     int
		inStderr string
	}{
		{"no trace", nil, 2, "usage: schedwait"},
		{"two traces", []string{"a", "b"}, 2, "usage: schedwait"},
		{"a long wait of zero", []string{"-long-wait=0", notATrace}, 2, "long wait 0s: must be positive"},
		{"no such file", []string{filepath.Join(t.TempDir(), "missing.trace")}, 1, "no such file"},
		{"not a trace", []string{notATrace}, 1, notATrace + ": read trace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tc.args, &stdout, &stderr); got != tc.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got, tc.exit, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout on failure: %q", stdout.String())
			}
		})
	}
}
