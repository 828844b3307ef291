package reports

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"regexp"
	"strings"
)

// WriteHTML renders report.html: a single self-contained page (inline CSS and SVG charts, no
// scripts, no external resources) with the same tables as report.md plus charts.
func WriteHTML(w io.Writer, res *Results) error {
	charts, err := Charts(res)
	if err != nil {
		return err
	}
	page := htmlPage{
		Header:   headerLines(res),
		Seed:     htmlTable(seedTable(res)),
		SeedNote: inline(seedTableNote),
		Targets:  htmlTable(targetsTable(res)),
		Entries:  htmlTable(entriesTable(res)),
	}
	if len(res.Bench.Capacity) > 0 {
		page.Capacity = htmlTable(capacityTable(res))
	}
	if t := realLaravelTable(res); t != nil {
		page.RealLaravel, page.RealLaravelNote = htmlTable(*t), inline(realLaravelNote)
	}
	for _, c := range charts {
		page.Charts = append(page.Charts, htmlChart{ID: c.ID, Title: c.Title, Note: c.Note, SVG: template.HTML(c.SVG)})
	}
	for i := range res.Entries {
		e := &res.Entries[i]
		he := htmlEntry{Name: e.Name}
		for _, l := range entryLines(e) {
			he.Lines = append(he.Lines, inline(l))
		}
		if len(e.Reports) > 0 {
			he.HasReport = true
			if t := thresholdsTable(e); t != nil {
				he.Thresholds = htmlTable(*t)
			}
			he.Metrics = htmlTable(metricsTable(e))
			he.GroundTruth = groundTruthLine(e)
		}
		page.EntryDetails = append(page.EntryDetails, he)
	}
	header := make([]template.HTML, len(page.Header))
	for i, h := range page.Header {
		header[i] = inline(h)
	}
	page.HeaderHTML = header
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

type htmlPage struct {
	Header     []string
	HeaderHTML []template.HTML
	Seed       template.HTML
	SeedNote   template.HTML
	Targets    template.HTML
	Entries    template.HTML
	Capacity   template.HTML
	// RealLaravel sets model and real app side by side when an entry used the real app.
	RealLaravel     template.HTML
	RealLaravelNote template.HTML
	Charts          []htmlChart
	EntryDetails    []htmlEntry
}

type htmlChart struct {
	ID, Title, Note string
	SVG             template.HTML
}

type htmlEntry struct {
	Name        string
	Lines       []template.HTML
	HasReport   bool
	Thresholds  template.HTML
	Metrics     template.HTML
	GroundTruth string
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// inline escapes text and turns `code spans` into <code> elements.
func inline(s string) template.HTML {
	return template.HTML(codeSpan.ReplaceAllString(html.EscapeString(s), "<code>$1</code>"))
}

// htmlTable renders a table; "pass"/"FAIL"/"✓"/"✗" cells get a class for colour.
func htmlTable(t table) template.HTML {
	var b strings.Builder
	b.WriteString("<table>\n<thead><tr>")
	for i, h := range t.Header {
		b.WriteString("<th" + alignAttr(t, i) + ">" + string(inline(h)) + "</th>")
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range t.Rows {
		b.WriteString("<tr>")
		for i, c := range r {
			class := ""
			switch c {
			case "pass", "✓", "all held":
				class = ` class="ok"`
			case "FAIL", "✗", "FAILED", "no report":
				class = ` class="fail"`
			}
			b.WriteString("<td" + alignAttr(t, i) + class + ">" + string(inline(c)) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>")
	return template.HTML(b.String())
}

func alignAttr(t table, i int) string {
	if i < len(t.Right) && t.Right[i] {
		return ` class="num"`
	}
	return ""
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wagate bench report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
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
</style>
</head>
<body>
<main>
<h1>wagate bench report</h1>
<ul class="meta">
{{- range .HeaderHTML}}
<li>{{.}}</li>
{{- end}}
</ul>
<nav><a href="#seed">Seed table</a><a href="#targets">Targets</a><a href="#entries">Entries</a><a href="#charts">Charts</a><a href="#details">Per-entry summaries</a></nav>

<h2 id="seed">The seed's claims, measured</h2>
{{.Seed}}
<p class="note">{{.SeedNote}}</p>

<h2 id="targets">Targets (docs/design.md)</h2>
{{.Targets}}

<h2 id="entries">Entries</h2>
{{.Entries}}
{{- if .RealLaravel}}

<h2 id="real-laravel">fakelaravel and the real Laravel app, same workload</h2>
{{.RealLaravel}}
<p class="note">{{.RealLaravelNote}}</p>
{{- end}}
{{- if .Capacity}}

<h2 id="capacity">Capacity</h2>
{{.Capacity}}
{{- end}}

<h2 id="charts">Charts</h2>
{{- range .Charts}}
<figure id="{{.ID}}">
{{.SVG}}
<figcaption><strong>{{.Title}}.</strong> {{.Note}}</figcaption>
</figure>
{{- else}}
<p class="note">No series were recorded.</p>
{{- end}}

<h2 id="details">Per-entry summaries</h2>
{{- range .EntryDetails}}
<section id="entry-{{.Name}}">
<h3>Entry <code>{{.Name}}</code></h3>
{{- range .Lines}}
<p class="note">{{.}}</p>
{{- end}}
{{- if .HasReport}}
<h3>Thresholds</h3>
{{if .Thresholds}}{{.Thresholds}}{{else}}<p class="note">none</p>{{end}}
<h3>Metrics</h3>
{{.Metrics}}
<h3>Ground truth</h3>
<p>{{.GroundTruth}}</p>
{{- end}}
</section>
{{- end}}
</main>
</body>
</html>
`))
