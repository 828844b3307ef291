package document

import (
	"bytes"
	"strings"
	"testing"
)

// sample has one of every block, a subsection, a section without a heading and a page-only one.
func sample() Document {
	return Document{
		Title: "A report",
		Meta:  []string{"when: today", "command: `make bench`"},
		Intro: []Block{Paragraph{Lines: []string{"first line", "second line"}}, Text("**PASS**: 3 passed.")},
		Sections: []Section{
			{ID: "tables", Heading: "Tables", Nav: "Tables", Blocks: []Block{
				Table{Header: []string{"name", "n", "result"}, Right: []bool{false, true}, Rows: [][]string{{"`a`", "1", "pass"}, {"b <c>", "2", "FAIL (lost)"}, {"c", "✓", ""}}},
				Note("How to read it."),
			}, Sections: []Section{{Heading: "Detail", Blocks: []Block{List{"one", "two"}}}}},
			{Sections: []Section{{Heading: "Under no heading", Blocks: []Block{Text("x")}}}},
			{ID: "charts", Heading: "Charts", Nav: "Charts", PageOnly: true, Blocks: []Block{Chart{ID: "c1", Title: "C & D", Note: "Read it.", SVG: "<svg/>"}}},
			{ID: "last", Heading: "Last", Blocks: []Block{Chart{ID: "c2", Title: "T", SVG: "<svg/>"}, Text("end")}},
		},
	}
}

func TestMarkdownLaysOutHeadingsByDepthAndBlocksOneBlankLineApart(t *testing.T) {
	want := "# A report\n\n" +
		"- when: today\n- command: `make bench`\n\n" +
		"first line  \nsecond line\n\n" +
		"**PASS**: 3 passed.\n\n" +
		"## Tables\n\n" +
		"| name | n | result |\n|---|---:|---|\n| `a` | 1 | pass |\n| b <c> | 2 | FAIL (lost) |\n| c | ✓ |  |\n\n" +
		"How to read it.\n\n" +
		"### Detail\n\n- one\n- two\n\n" +
		"### Under no heading\n\nx\n\n" +
		"## Last\n\nend\n"
	if got := Markdown(sample()); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestHTMLLaysOutTheSameOutlineWithChartsAndNavigation(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<title>A report</title>",
		"<h1>A report</h1>\n<ul class=\"meta\">\n<li>when: today</li>\n<li>command: <code>make bench</code></li>\n</ul>",
		`<nav><a href="#tables">Tables</a><a href="#charts">Charts</a></nav>`,
		"<p>first line<br>\nsecond line</p>\n<p><strong>PASS</strong>: 3 passed.</p>",
		"\n\n<h2 id=\"tables\">Tables</h2>\n<table>\n<thead><tr><th>name</th><th class=\"num\">n</th><th>result</th></tr></thead>",
		`<tr><td><code>a</code></td><td class="num">1</td><td class="ok">pass</td></tr>`,
		`<tr><td>b &lt;c&gt;</td><td class="num">2</td><td class="fail">FAIL (lost)</td></tr>`,
		`<tr><td>c</td><td class="num ok">✓</td><td></td></tr>`,
		"</table>\n<p class=\"note\">How to read it.</p>\n<h3>Detail</h3>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>",
		"\n<h3>Under no heading</h3>\n<p>x</p>",
		"<h2 id=\"charts\">Charts</h2>\n<figure id=\"c1\">\n<svg/>\n<figcaption><strong>C &amp; D.</strong> Read it.</figcaption>\n</figure>",
		"<h2 id=\"last\">Last</h2>\n<figure id=\"c2\">",
		"<p>end</p>\n</main>\n</body>\n</html>\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}

func TestATableCellThatReadsAsAVerdictIsMarked(t *testing.T) {
	cases := []struct {
		cell      string
		good, bad bool
	}{
		{"pass", true, false},
		{"PASS", true, false},
		{"✓", true, false},
		{"all held", true, false},
		{"FAIL", false, true},
		{"FAIL (recovery, retry-storm)", false, true},
		{"FAILED", false, true},
		{"✗", false, true},
		{"no report", false, true},
		{"not measured", false, false},
		{"passes=0", false, false},
		{"FAILURES", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		if good, bad := verdict(c.cell); good != c.good || bad != c.bad {
			t.Errorf("verdict(%q) = good %v bad %v, want %v %v", c.cell, good, bad, c.good, c.bad)
		}
	}
}
