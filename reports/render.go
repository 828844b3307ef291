package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"wagate/reports/document"
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

// WriteMarkdown renders report.md: the report's Outline laid out as Markdown.
func WriteMarkdown(w io.Writer, res *Results) error {
	return document.WriteMarkdown(w, Outline(res, nil))
}

// WriteHTML renders report.html: the report's Outline, charts included, laid out as one
// self-contained page (inline CSS and SVG charts, no scripts, no external resources).
func WriteHTML(w io.Writer, res *Results) error {
	charts, err := Charts(res)
	if err != nil {
		return err
	}
	if err := document.WriteHTML(w, Outline(res, charts)); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same folder renamed over it,
// so readers never see a half-written file. The file is 0644 like every report file (it holds
// measurements, no secrets; CreateTemp's 0600 would hide it from a web server or another user).
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
