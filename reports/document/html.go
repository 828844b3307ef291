package document

import (
	"html"
	"io"
	"regexp"
	"strings"
)

// WriteHTML writes d as one self-contained page (inline CSS and SVG, no scripts, no external
// resources): the title as <h1>, the meta lines, a navigation line of the sections that have a Nav
// label, then every block and section in order, <h2> for a section and <h3> for its subsections.
func WriteHTML(w io.Writer, d Document) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + html.EscapeString(d.Title) + `</title>
<style>
` + pageStyle + `</style>
</head>
<body>
<main>`)
	if d.Title != "" {
		b.WriteString("\n<h1>" + inline(d.Title) + "</h1>")
	}
	if len(d.Meta) > 0 {
		b.WriteString("\n<ul class=\"meta\">")
		for _, m := range d.Meta {
			b.WriteString("\n<li>" + inline(m) + "</li>")
		}
		b.WriteString("\n</ul>")
	}
	var nav []string
	for _, s := range d.Sections {
		if s.Nav != "" && s.ID != "" {
			nav = append(nav, `<a href="#`+html.EscapeString(s.ID)+`">`+inline(s.Nav)+"</a>")
		}
	}
	if len(nav) > 0 {
		b.WriteString("\n<nav>" + strings.Join(nav, "") + "</nav>")
	}
	writeHTMLBlocks(&b, d.Intro)
	for _, s := range d.Sections {
		if s.Heading != "" {
			b.WriteString("\n") // a blank line before each top-level section
		}
		writeHTMLSection(&b, s, 2)
	}
	b.WriteString("\n</main>\n</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHTMLSection(b *strings.Builder, s Section, level int) {
	if s.Heading != "" {
		h := "h" + string(rune('0'+min(level, 6)))
		id := ""
		if s.ID != "" {
			id = ` id="` + html.EscapeString(s.ID) + `"`
		}
		b.WriteString("\n<" + h + id + ">" + inline(s.Heading) + "</" + h + ">")
	}
	writeHTMLBlocks(b, s.Blocks)
	for _, sub := range s.Sections {
		writeHTMLSection(b, sub, level+1)
	}
}

func writeHTMLBlocks(b *strings.Builder, blocks []Block) {
	for _, bl := range blocks {
		b.WriteString("\n")
		switch bl := bl.(type) {
		case Paragraph:
			lines := make([]string, len(bl.Lines))
			for i, l := range bl.Lines {
				lines[i] = inline(l)
			}
			b.WriteString("<p>" + strings.Join(lines, "<br>\n") + "</p>")
		case Note:
			b.WriteString(`<p class="note">` + inline(string(bl)) + "</p>")
		case List:
			b.WriteString("<ul>")
			for _, item := range bl {
				b.WriteString("\n<li>" + inline(item) + "</li>")
			}
			b.WriteString("\n</ul>")
		case Table:
			writeHTMLTable(b, bl)
		case Chart:
			b.WriteString(`<figure id="` + html.EscapeString(bl.ID) + "\">\n" + bl.SVG + "\n<figcaption><strong>" +
				html.EscapeString(bl.Title) + ".</strong> " + html.EscapeString(bl.Note) + "</figcaption>\n</figure>")
		}
	}
}

func writeHTMLTable(b *strings.Builder, t Table) {
	b.WriteString("<table>\n<thead><tr>")
	for i, h := range t.Header {
		b.WriteString("<th" + alignAttr(t, i) + ">" + inline(h) + "</th>")
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range t.Rows {
		b.WriteString("<tr>")
		for i, c := range r {
			var classes []string
			if i < len(t.Right) && t.Right[i] {
				classes = append(classes, "num")
			}
			switch good, bad := verdict(c); {
			case good:
				classes = append(classes, "ok")
			case bad:
				classes = append(classes, "fail")
			}
			b.WriteString("<td" + classAttr(classes...) + ">" + inline(c) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>")
}

func alignAttr(t Table, i int) string {
	if i < len(t.Right) && t.Right[i] {
		return classAttr("num")
	}
	return ""
}

func classAttr(classes ...string) string {
	if len(classes) == 0 {
		return ""
	}
	return ` class="` + strings.Join(classes, " ") + `"`
}

var (
	codeSpan  = regexp.MustCompile("`([^`]*)`")
	strongRun = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// inline escapes text and turns `code spans` and **strong runs** into <code> and <strong>.
func inline(s string) string {
	s = codeSpan.ReplaceAllString(html.EscapeString(s), "<code>$1</code>")
	return strongRun.ReplaceAllString(s, "<strong>$1</strong>")
}

// pageStyle is the page's CSS.
const pageStyle = `body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; border-bottom: 1px solid #d8dce1; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 8px; }
ul.meta { list-style: none; padding: 0; margin: 0 0 8px; color: #4a5561; font-size: 14px; }
table { border-collapse: collapse; margin: 8px 0 12px; background: #fff; font-size: 14px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
th, td { border: 1px solid #dde1e6; padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: #176d2c; font-weight: 600; }
td.fail { color: #b42318; font-weight: 600; }
code { font-family: ui-monospace, "Liberation Mono", Menlo, Consolas, monospace; font-size: 12.5px; background: #eef1f4; padding: 1px 4px; border-radius: 3px; }
p.note { color: #4a5561; font-size: 13.5px; max-width: 980px; }
figure { margin: 16px 0 28px; background: #fff; padding: 12px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
figcaption { font-size: 13.5px; color: #4a5561; margin-top: 6px; }
svg.chart { width: 100%; height: auto; display: block; }
nav a { margin-right: 14px; font-size: 14px; }
`
