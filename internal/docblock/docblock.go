// Package docblock keeps a generated block of a Markdown document equal to what the code it
// documents says (the settings table from gateway/config's settings, the metric table from the
// registered metrics). A block sits between two HTML comments that Markdown does not show:
//
//	<!-- BEGIN generated: NAME -->
//	...
//	<!-- END generated: NAME -->
//
// Check fails a test when the block differs, and rewrites it instead under -update-docs. It is
// test support: only _test files import it, and it registers the -update-docs flag for them.
package docblock

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
)

var update = flag.Bool("update-docs", false, "rewrite the generated blocks of the documents with what the code says")

// Markers returns the comment lines that open and close the block called name.
func Markers(name string) (begin, end string) {
	return "<!-- BEGIN generated: " + name + " -->\n", "<!-- END generated: " + name + " -->\n"
}

// Extract returns the block called name in doc (without its markers).
func Extract(doc []byte, name string) ([]byte, error) {
	begin, end := Markers(name)
	i := bytes.Index(doc, []byte(begin))
	if i < 0 {
		return nil, fmt.Errorf("no line %q", begin)
	}
	rest := doc[i+len(begin):]
	j := bytes.Index(rest, []byte(end))
	if j < 0 {
		return nil, fmt.Errorf("no line %q after %q", end, begin)
	}
	return rest[:j], nil
}

// Replace returns doc with the block called name holding content.
func Replace(doc []byte, name string, content []byte) ([]byte, error) {
	old, err := Extract(doc, name)
	if err != nil {
		return nil, err
	}
	begin, _ := Markers(name)
	start := bytes.Index(doc, []byte(begin)) + len(begin)
	out := append([]byte{}, doc[:start]...)
	out = append(out, content...)
	return append(out, doc[start+len(old):]...), nil
}

// ErrDiffers is what Compare returns when the block is not content.
var ErrDiffers = errors.New("the generated block differs from what the code says")

// Compare reports whether the block called name in the file at path holds content.
func Compare(path, name string, content []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("docblock: %w", err)
	}
	got, err := Extract(doc, name)
	if err != nil {
		return fmt.Errorf("docblock: %s: %w", path, err)
	}
	if !bytes.Equal(got, content) {
		return fmt.Errorf("docblock: %s, block %q: %w", path, name, ErrDiffers)
	}
	return nil
}

// Check fails t when the block called name in the file at path is not content; with
// -update-docs it rewrites the block instead (review the diff).
func Check(t testing.TB, path, name string, content []byte) {
	t.Helper()
	if *update {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("docblock: %v", err)
		}
		out, err := Replace(doc, name, content)
		if err != nil {
			t.Fatalf("docblock: %s: %v", path, err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatalf("docblock: %v", err)
		}
		return
	}
	if err := Compare(path, name, content); err != nil {
		t.Errorf("%v; go test -run '^%s$' -update-docs rewrites it (review the diff).\n--- what the code says ---\n%s", err, t.Name(), content)
	}
}
