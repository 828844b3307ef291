package reports

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"

	"wagate/reports/document"
)

// Confidence is the confidence level of compare's intervals.
const Confidence = 0.95

// Column is one configuration in a comparison: its repeats' reports.
type Column struct {
	// Name labels the column: the bench entry or the run folder's name.
	Name string
	// Reports are the configuration's repeats.
	Reports []*Report
}

// ColumnsFrom turns compare's arguments into columns. Each argument is a report.json file, a run
// folder (holding report.json), a folder of repeats (subfolders holding report.json, e.g. a bench
// entry's run1, run2, ...), or a bench folder (bench.json), which gives one column per entry.
func ColumnsFrom(paths []string) ([]Column, error) {
	var cols []Column
	var from []string // the argument each column came from
	for _, p := range paths {
		got, err := columnsOf(p)
		if err != nil {
			return nil, err
		}
		for range got {
			from = append(from, p)
		}
		cols = append(cols, got...)
	}
	disambiguate(cols, from)
	return cols, nil
}

// columnsOf reads one compare argument: a report.json or run folder (one column), a bench folder
// (one column per entry) or a folder of repeats (one column).
func columnsOf(p string) ([]Column, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	switch {
	case !fi.IsDir() || fileExists(filepath.Join(p, FileName)):
		r, err := Load(p)
		if err != nil {
			return nil, err
		}
		name := r.Label
		if name == "" {
			name = runName(p)
		}
		return []Column{{Name: name, Reports: []*Report{r}}}, nil
	case fileExists(filepath.Join(p, BenchFileName)):
		res, err := LoadResults(p)
		if err != nil {
			return nil, err
		}
		var cols []Column
		for _, e := range res.Entries {
			if len(e.Reports) > 0 {
				cols = append(cols, Column{Name: e.Name, Reports: e.Reports})
			}
		}
		return cols, nil
	}
	matches, _ := filepath.Glob(filepath.Join(p, "*", FileName))
	sort.Strings(matches)
	if len(matches) == 0 {
		return nil, fmt.Errorf("compare: %s: %w (want a report.json, a run folder, a folder of runs or a bench folder)", p, ErrNoReports)
	}
	col := Column{Name: filepath.Base(filepath.Clean(p))}
	for _, m := range matches {
		r, err := Load(m)
		if err != nil {
			return nil, err
		}
		col.Reports = append(col.Reports, r)
	}
	return []Column{col}, nil
}

// disambiguate renames columns whose names repeat (the same entry of two bench runs, e.g.
// A/batch-1000 and B/batch-1000) to "<argument>: <name>", so every row of a table says which
// configuration it is.
func disambiguate(cols []Column, from []string) {
	count := map[string]int{}
	for _, c := range cols {
		count[c.Name]++
	}
	for i := range cols {
		if count[cols[i].Name] > 1 {
			arg := filepath.Clean(from[i])
			if filepath.Base(arg) == cols[i].Name { // a folder named like its entry: show its parent too
				cols[i].Name = arg
			} else {
				cols[i].Name = arg + ": " + cols[i].Name
			}
		}
	}
}

// runName names a run by its folder, skipping "runN" folders of a bench entry.
func runName(p string) string {
	dir := filepath.Clean(p)
	if strings.HasSuffix(dir, FileName) {
		dir = filepath.Dir(dir)
	}
	base := filepath.Base(dir)
	if strings.HasPrefix(base, "run") {
		return filepath.Base(filepath.Dir(dir)) + "/" + base
	}
	return base
}

// ComparisonTable is one figure compared across columns.
type ComparisonTable struct {
	Figure Figure
	Rows   []ComparisonRow
}

// ComparisonRow is one column's value of a figure and its comparison with the base (row 0).
type ComparisonRow struct {
	// Name is the column's name.
	Name string
	// Values are the figure's values in the column's repeats (ascending).
	Values []float64
	// Summary is the median and its confidence interval (benchmath, no distributional assumption).
	Summary benchmath.Summary
	// Compared is false for the base row and for rows without values.
	Compared bool
	// Comparison is the Mann-Whitney U test against the base.
	Comparison benchmath.Comparison
	// Delta is the relative change of the median against the base, in %.
	Delta float64
	// Significant is true when Comparison.P < Comparison.Alpha.
	Significant bool
}

// Compare tabulates each figure across the columns, the first column being the base. Figures
// no column has are left out.
func Compare(cols []Column, figures []Figure) []ComparisonTable {
	var tables []ComparisonTable
	thresholds := benchmath.DefaultThresholds
	for _, fig := range figures {
		t := ComparisonTable{Figure: fig}
		var base *benchmath.Sample
		found := false
		for i, c := range cols {
			row := ComparisonRow{Name: c.Name}
			for _, r := range c.Reports {
				if v, ok := fig.Of(r); ok {
					row.Values = append(row.Values, v)
				}
			}
			sort.Float64s(row.Values)
			if len(row.Values) > 0 {
				found = true
				s := benchmath.NewSample(row.Values, &thresholds)
				row.Summary = benchmath.AssumeNothing.Summary(s, Confidence)
				if i == 0 {
					base = s
				} else if base != nil {
					row.Compared = true
					row.Comparison = benchmath.AssumeNothing.Compare(base, s)
					row.Significant = row.Comparison.P < row.Comparison.Alpha
					if b := median(base.Values); b != 0 {
						row.Delta = (row.Summary.Center - b) / math.Abs(b) * 100
					}
				}
			}
			t.Rows = append(t.Rows, row)
		}
		if found {
			tables = append(tables, t)
		}
	}
	return tables
}

// ValueText renders "median ± half-width%" like benchstat ("± ∞" when there are too few repeats
// for a 95% interval).
func (r ComparisonRow) ValueText(fig Figure) string {
	if len(r.Values) == 0 {
		return "—"
	}
	return fig.Format(r.Summary.Center) + " ± " + r.Summary.PctRangeString()
}

// DeltaText renders the change against the base like benchstat: "-12.34% (p=0.002 n=6+6)" when
// significant, "~ (p=0.394 n=6+6)" when not; with too few repeats to ever be significant the raw
// change is added: "~ (p=1.000 n=1+1; change -99.90%)".
func (r ComparisonRow) DeltaText() string {
	if !r.Compared {
		return ""
	}
	c := r.Comparison
	stats := fmt.Sprintf("p=%.3f n=%d+%d", c.P, c.N1, c.N2)
	if r.Significant {
		return fmt.Sprintf("%+.2f%% (%s)", r.Delta, stats)
	}
	if minSignificantN(c.Alpha) > min(c.N1, c.N2) {
		return fmt.Sprintf("~ (%s; change %+.2f%%)", stats, r.Delta)
	}
	return "~ (" + stats + ")"
}

// minSignificantN is the smallest equal sample size for which a two-sided Mann-Whitney test can
// reach p < alpha (the smallest p with n+n samples is 2/C(2n, n)).
func minSignificantN(alpha float64) int {
	for n := 1; n < 20; n++ {
		if 2/binomial(2*n, n) < alpha {
			return n
		}
	}
	return 20
}

func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// WriteCompareText writes the tables for a terminal.
func WriteCompareText(w io.Writer, tables []ComparisonTable) error {
	if len(tables) == 0 {
		_, err := fmt.Fprintln(w, "no figure to compare")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s\t%s\tvs %s\n", figureTitle(t.Figure), "median ± 95% CI", t.Rows[0].Name)
		for _, r := range t.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.ValueText(t.Figure), r.DeltaText())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\n"+compareLegend)
	return err
}

// WriteCompareMarkdown writes the tables as Markdown.
func WriteCompareMarkdown(w io.Writer, tables []ComparisonTable) error {
	return document.WriteMarkdown(w, CompareOutline(tables))
}

// CompareOutline is the comparison's content: one section per figure with its table (as ###
// headings, for pasting under a heading of one's own), then the legend.
func CompareOutline(tables []ComparisonTable) document.Document {
	var figures []document.Section
	for _, t := range tables {
		mt := document.Table{Header: []string{"configuration", "median ± 95% CI", "vs " + t.Rows[0].Name}, Right: []bool{false, true, false}}
		for _, r := range t.Rows {
			mt.Rows = append(mt.Rows, []string{r.Name, r.ValueText(t.Figure), orDash(r.DeltaText())})
		}
		figures = append(figures, document.Section{Heading: figureTitle(t.Figure), Blocks: []document.Block{mt}})
	}
	return document.Document{Sections: []document.Section{{Sections: figures}, {Blocks: []document.Block{document.Note(compareLegend)}}}}
}

const compareLegend = "Medians over repeats with 95% confidence intervals; deltas against the first configuration " +
	"with a Mann-Whitney U test (golang.org/x/perf/benchmath); ~ means no significant difference at alpha 0.05. " +
	"A 95% interval needs at least 6 repeats and significance at least 4 per side."

func figureTitle(f Figure) string {
	if f.Unit == "" {
		return f.Name
	}
	return f.Name + " (" + f.Unit + ")"
}
