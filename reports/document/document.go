// Package document is the ordered model of a report page and its two layouts. A report's content
// (which sections exist, in which order, with which headings, tables and notes) is decided once,
// by the function that builds its Document; Markdown and HTML only lay the blocks out and never
// decide content, so report.md and report.html cannot drift apart.
//
// Text in a Document (headings, meta lines, paragraphs, notes, list items, table cells) is
// Markdown inline text limited to `code` spans and **strong** runs: Markdown writes it as it is,
// HTML escapes it and turns those two into <code> and <strong>.
package document

// Document is one report: a title, lines about the report itself, then blocks and sections in
// reading order.
type Document struct {
	// Title is the report's heading (and the page's title).
	Title string
	// Meta are lines about the report itself (when, where, what ran), shown as a list under the title.
	Meta []string
	// Intro are the blocks between the title and the first section.
	Intro []Block
	// Sections follow in order.
	Sections []Section
}

// Section is a heading with its blocks, then its subsections (one heading level down).
type Section struct {
	// ID is the section's anchor on the page ("" for none).
	ID string
	// Heading is the section's title; a section without one is a run of blocks at its place
	// (its subsections are still one level down).
	Heading string
	// Nav is the section's label in the page's navigation line ("" to leave it out).
	Nav string
	// PageOnly sections hold what only the page can show (SVG charts): Markdown leaves them out.
	PageOnly bool
	// Blocks come first, then Sections.
	Blocks   []Block
	Sections []Section
}

// Block is one of Paragraph, Note, List, Table and Chart.
type Block interface{ block() }

// Paragraph is body text; its lines are broken where they end.
type Paragraph struct{ Lines []string }

// Note is an aside: how to read a table, what a run was.
type Note string

// List is a bulleted list.
type List []string

// Table is a table. A cell that reads as a verdict is marked good or bad on the page: pass, PASS,
// ✓ and all held are good; FAIL, FAILED, ✗ and no report are bad, alone or followed by a space
// and more ("FAIL (recovery)").
type Table struct {
	Header []string
	// Right marks right-aligned (numeric) columns.
	Right []bool
	Rows  [][]string
}

// Chart is an inline SVG chart: only the page shows it.
type Chart struct {
	// ID is a stable anchor, e.g. "laravel-rpm".
	ID string
	// Title is the chart's caption heading; Note explains how to read it.
	Title, Note string
	// SVG is the inline <svg> element.
	SVG string
}

func (Paragraph) block() {}
func (Note) block()      {}
func (List) block()      {}
func (Table) block()     {}
func (Chart) block()     {}

// Text is a one-line paragraph.
func Text(s string) Paragraph { return Paragraph{Lines: []string{s}} }

// verdict says whether a table cell reads as a good or a bad verdict (see Table).
func verdict(cell string) (good, bad bool) {
	word := cell
	for i, r := range cell {
		if r == ' ' {
			word = cell[:i]
			break
		}
	}
	switch {
	case cell == "all held" || word == "pass" || word == "PASS" || word == "✓":
		return true, false
	case cell == "no report" || word == "FAIL" || word == "FAILED" || word == "✗":
		return false, true
	}
	return false, false
}
