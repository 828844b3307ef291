package reports

import (
	"slices"
	"strings"
	"testing"

	"wagate/reports/document"
)

// outline lists a document's sections as "heading" (subsections indented by two spaces per
// level), marking page-only ones; a section without a heading reads "-".
func outline(d document.Document) []string {
	var out []string
	var walk func(ss []document.Section, indent string)
	walk = func(ss []document.Section, indent string) {
		for _, s := range ss {
			h := s.Heading
			if h == "" {
				h = "-"
			}
			if s.PageOnly {
				h += " [page only]"
			}
			out = append(out, indent+h)
			walk(s.Sections, indent+"  ")
		}
	}
	walk(d.Sections, "")
	return out
}

var entrySummary = []string{"  Thresholds", "  Metrics", "  Ground truth"}

func withEntries(head []string, names ...string) []string {
	out := slices.Clone(head)
	for _, n := range names {
		out = append(out, "Entry `"+n+"`")
		out = append(out, entrySummary...)
	}
	return out
}

var benchHead = []string{"The seed's claims, measured", "Targets (docs/design.md)", "Entries"}

func TestTheOutlineSaysWhichSectionsAReportHas(t *testing.T) {
	charts := append(benchHead, "Charts [page only]")
	cases := []struct {
		name string
		res  func(t *testing.T) *Results
		want []string
	}{
		{"a bench: the tables, the charts, then each entry's summary", sampleBench,
			withEntries(charts, "legacy-100", "batch-100", "batch-1000")},
		{"one run: the same outline with its one entry", func(t *testing.T) *Results {
			return SingleResults("run", sampleReport(t, "batch-100", ModeBatch, 100, 40, 4))
		}, withEntries(charts, "batch-100")},
		{"a capacity search adds its section after the entries table", func(t *testing.T) *Results {
			res := sampleBench(t)
			res.Bench.Capacity = []CapacityResult{{Name: "batch", Mode: ModeBatch, MaxUsers: 1500, Limit: 20000}}
			return res
		}, withEntries(append(slices.Clone(benchHead), "Capacity", "Charts [page only]"), "legacy-100", "batch-100", "batch-1000")},
		{"an entry on the real Laravel app adds the side-by-side section", func(t *testing.T) *Results {
			res := sampleBench(t)
			real := sampleReport(t, "batch-100-real", ModeBatch, 100, 46, 6)
			real.Configuration.FakeLaravel.Real = "Laravel 8"
			be := BenchEntry{Name: "batch-100-real", Scenario: real.Scenario.File, Runs: []BenchRun{{Dir: "r"}}}
			res.Entries = append(res.Entries, Entry{BenchEntry: be, Reports: []*Report{real}})
			return res
		}, withEntries(append(slices.Clone(benchHead), "fakelaravel and the real Laravel app, same workload", "Charts [page only]"),
			"legacy-100", "batch-100", "batch-1000", "batch-100-real")},
		{"an entry whose runs all failed has no summary under its heading", func(t *testing.T) *Results {
			res := sampleBench(t)
			res.Entries = append(res.Entries, Entry{BenchEntry: BenchEntry{Name: "broken", Runs: []BenchRun{{Dir: "b", ExitCode: -1, Error: "killed"}}}})
			return res
		}, append(withEntries(charts, "legacy-100", "batch-100", "batch-1000"), "Entry `broken`")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := outline(Outline(c.res(t), nil)); !slices.Equal(got, c.want) {
				t.Errorf("outline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestTheChartsSectionHoldsTheChartsOrSaysThereAreNone(t *testing.T) {
	chartsOf := func(d document.Document) []document.Block {
		for _, s := range d.Sections {
			if s.ID == "charts" {
				return s.Blocks
			}
		}
		t.Fatal("no charts section")
		return nil
	}
	res := sampleBench(t)
	if got := chartsOf(Outline(res, nil)); !slices.Equal(got, []document.Block{document.Note("No series were recorded.")}) {
		t.Errorf("without charts: %v", got)
	}
	c := document.Chart{ID: "gateway-cpu", Title: "Gateway CPU over time", SVG: "<svg/>"}
	if got := chartsOf(Outline(res, []document.Chart{c})); !slices.Equal(got, []document.Block{c}) {
		t.Errorf("with one chart: %v", got)
	}
}

func TestTheComparisonIsOneSectionPerFigureThenTheLegend(t *testing.T) {
	tables := []ComparisonTable{
		{Figure: FigLaravelRPM, Rows: []ComparisonRow{{Name: "a"}, {Name: "b"}}},
		{Figure: FigAPIP99, Rows: []ComparisonRow{{Name: "a"}}},
	}
	want := []string{"-", "  Laravel requests/min (req/min)", "  API latency p99 (ms)", "-"}
	d := CompareOutline(tables)
	if got := outline(d); !slices.Equal(got, want) {
		t.Errorf("outline %q, want %q", got, want)
	}
	if last := d.Sections[len(d.Sections)-1].Blocks; !slices.Equal(last, []document.Block{document.Note(compareLegend)}) {
		t.Errorf("the last blocks are %v, want the legend", last)
	}
}
