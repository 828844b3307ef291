package docblock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestABlockIsComparedAndReplacedBetweenItsMarkersOnly(t *testing.T) {
	begin, end := Markers("table")
	doc := "# Title\n\nprose\n" + begin + "| a |\n" + end + "after\n"
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, block, content string
		want                 error // nil, ErrDiffers, or any error (errAny)
	}{
		{name: "same content", block: "table", content: "| a |\n"},
		{name: "a row more", block: "table", content: "| a |\n| b |\n", want: ErrDiffers},
		{name: "a row less", block: "table", content: "", want: ErrDiffers},
		{name: "no such block", block: "other", content: "| a |\n", want: errAny},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Compare(path, c.block, []byte(c.content))
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("Compare = %v, want nil", err)
			case c.want == errAny && err == nil, c.want == ErrDiffers && !errors.Is(err, ErrDiffers):
				t.Fatalf("Compare = %v, want %v", err, c.want)
			}
		})
	}
	out, err := Replace([]byte(doc), "table", []byte("| b |\n| c |\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Title\n\nprose\n" + begin + "| b |\n| c |\n" + end + "after\n"; string(out) != want {
		t.Fatalf("Replace =\n%s\nwant\n%s", out, want)
	}
}

var errAny = errors.New("any error")
