package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"wagate/benchmarks"
)

// TestK6CostCommandLine: a bench entry of kind k6-cost calls `simulator k6-cost` with the
// orchestrator's arguments; a missing script or output folder is a usage error naming what is
// needed, and a script that names no world fails before starting anything.
func TestK6CostCommandLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		exit   int
		stderr string
	}{
		{"no output folder", []string{"k6-cost", "script.js"}, exitUsage, "one script and -out are needed"},
		{"no script", []string{"k6-cost", "-out", dir}, exitUsage, "one script and -out are needed"},
		{"a script without a world", benchmarks.CommandArgs(benchmarks.KindK6Cost, filepath.Join("..", "..", "k6", "testrun", "testdata", "conformance", "crypto.js"), dir, "x", nil),
			exitError, "names no world in options.ext.wagate.world"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.exit || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.exit, tc.stderr, stderr.String())
			}
		})
	}
}
