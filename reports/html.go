package reports

import (
	"fmt"
	"io"

	"wagate/reports/document"
)

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
