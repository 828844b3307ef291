package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// RenderDir reads the results in dir (a bench folder or a single run folder) and writes
// dir/report.md and dir/report.html. It returns ErrNoReports when no run wrote a report.json.
func RenderDir(dir string) error {
	res, err := LoadResults(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range res.Entries {
		n += len(e.Reports)
	}
	if n == 0 {
		return fmt.Errorf("render %s: %w", dir, ErrNoReports)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		return fmt.Errorf("render report.md: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "report.md"), md.Bytes()); err != nil {
		return err
	}
	var html bytes.Buffer
	if err := WriteHTML(&html, res); err != nil {
		return fmt.Errorf("render report.html: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "report.html"), html.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
