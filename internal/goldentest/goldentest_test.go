package goldentest

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records whether Check failed, and how.
type recorder struct {
	testing.TB
	errored, fatal bool
}

func (r *recorder) Helper()               { r.TB.Helper() }
func (r *recorder) Name() string          { return r.TB.Name() }
func (r *recorder) Errorf(string, ...any) { r.errored = true }
func (r *recorder) Fatalf(string, ...any) { r.fatal = true }

func TestCheckPassesOnlyTheSameBytesAndRewritesUnderUpdate(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "out.golden"), []byte("pinned\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		file           string
		got            string
		update         bool
		errored, fatal bool
		after          string // the golden file's content afterwards
	}{
		{name: "same bytes", file: "out.golden", got: "pinned\n", after: "pinned\n"},
		{name: "other bytes", file: "out.golden", got: "pinned", errored: true, after: "pinned\n"},
		{name: "no golden file", file: "absent.golden", got: "x", fatal: true},
		{name: "update rewrites", file: "out.golden", got: "new\n", update: true, after: "new\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			*update = c.update
			defer func() { *update = false }()
			r := &recorder{TB: t}
			Check(r, c.file, []byte(c.got))
			if r.errored != c.errored || r.fatal != c.fatal {
				t.Errorf("failed the test: errored %v fatal %v, want %v %v", r.errored, r.fatal, c.errored, c.fatal)
			}
			if c.after != "" {
				b, _ := os.ReadFile(filepath.Join("testdata", c.file))
				if string(b) != c.after {
					t.Errorf("golden file afterwards %q, want %q", b, c.after)
				}
			}
		})
	}
}
