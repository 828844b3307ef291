package logtail

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLastReturnsTheFinalLinesOfAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Last(path, 2); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("Last(2) = %q; want [c d]", got)
	}
	if got := Last(path, 10); len(got) != 4 {
		t.Fatalf("Last(10) = %q; want all 4 lines", got)
	}
	if got := Last(filepath.Join(t.TempDir(), "missing"), 3); got != nil {
		t.Fatalf("Last(missing) = %q; want nil", got)
	}
}
