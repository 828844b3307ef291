// Package goldentest compares a test's output with a golden file in the package's testdata
// folder, and rewrites the file instead when the test runs with -update (then review the diff).
// It is test support: only _test files import it, and it registers the -update flag for them.
package goldentest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the tests produce")

// Check compares got with testdata/name: a difference fails the test (it goes on) and shows
// got; a missing file fails it at once. With -update it writes got to testdata/name instead.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("rewrite golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -run '^%s$' -update creates it): %v", t.Name(), err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; go test -run '^%s$' -update rewrites it (review the diff).\n--- got ---\n%s", path, t.Name(), got)
	}
}
