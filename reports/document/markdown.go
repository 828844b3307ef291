package document

import (
	"io"
	"strings"
)

// WriteMarkdown writes d as Markdown: headings by depth (# for the title, ## for a section, ###
// for its subsections), one blank line between blocks; charts and page-only sections are left out.
func WriteMarkdown(w io.Writer, d Document) error {
	_, err := io.WriteString(w, Markdown(d))
	return err
}

// Markdown returns d as Markdown (see WriteMarkdown).
func Markdown(d Document) string {
	var chunks []string
	if d.Title != "" {
		chunks = append(chunks, "# "+d.Title)
	}
	if len(d.Meta) > 0 {
		chunks = append(chunks, markdownList(d.Meta))
	}
	chunks = appendMarkdownBlocks(chunks, d.Intro)
	for _, s := range d.Sections {
		chunks = appendMarkdownSection(chunks, s, 2)
	}
	return strings.Join(chunks, "\n\n") + "\n"
}

func appendMarkdownSection(chunks []string, s Section, level int) []string {
	if s.PageOnly {
		return chunks
	}
	if s.Heading != "" {
		chunks = append(chunks, strings.Repeat("#", level)+" "+s.Heading)
	}
	chunks = appendMarkdownBlocks(chunks, s.Blocks)
	for _, sub := range s.Sections {
		chunks = appendMarkdownSection(chunks, sub, level+1)
	}
	return chunks
}

func appendMarkdownBlocks(chunks []string, blocks []Block) []string {
	for _, b := range blocks {
		switch b := b.(type) {
		case Paragraph:
			chunks = append(chunks, strings.Join(b.Lines, "  \n"))
		case Note:
			chunks = append(chunks, string(b))
		case List:
			chunks = append(chunks, markdownList(b))
		case Table:
			chunks = append(chunks, MarkdownTable(b))
		case Chart:
			// page only
		}
	}
	return chunks
}

func markdownList(items []string) string {
	return "- " + strings.Join(items, "\n- ")
}

// MarkdownTable returns t as a Markdown table, without a final newline.
func MarkdownTable(t Table) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n|")
	for i := range t.Header {
		if i < len(t.Right) && t.Right[i] {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	for _, r := range t.Rows {
		b.WriteString("\n| " + strings.Join(r, " | ") + " |")
	}
	return b.String()
}
