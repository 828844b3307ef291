package reports

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/internal/goldentest"
)

// column builds a configuration whose repeats measured the given Laravel request rates.
func column(t *testing.T, name string, rpm ...float64) Column {
	t.Helper()
	c := Column{Name: name}
	for _, v := range rpm {
		r := &Report{SchemaVersion: SchemaVersion, Label: name, Scenario: Scenario{Users: 100},
			Metrics: map[string]Metric{MetricLaravelReqs: NewCounterMetric(v, 60)}}
		c.Reports = append(c.Reports, r)
	}
	return c
}

var rpmOnly = []Figure{FigLaravelRPM}

func TestCompareSeparatedSamplesAreSignificantWithTheExactMannWhitneyP(t *testing.T) {
	// Two samples of 6 with no overlap: the exact two-sided p-value is 2/C(12,6) = 2/924.
	base := column(t, "legacy", 100, 101, 102, 103, 104, 105)
	batch := column(t, "batch", 1, 2, 3, 4, 5, 6)
	tables := Compare([]Column{base, batch}, rpmOnly)
	if len(tables) != 1 {
		t.Fatalf("got %d tables", len(tables))
	}
	row := tables[0].Rows[1]
	if math.Abs(row.Comparison.P-2.0/924) > 1e-9 {
		t.Errorf("p = %v, want %v", row.Comparison.P, 2.0/924)
	}
	if !row.Significant {
		t.Error("want significant")
	}
	// Medians: 102.5*60/60 per minute... counter rate is v/60 per second, so req/min = v.
	if math.Abs(row.Delta-(3.5-102.5)/102.5*100) > 1e-9 {
		t.Errorf("delta = %v%%", row.Delta)
	}
	if got := row.DeltaText(); got != "-96.59% (p=0.002 n=6+6)" {
		t.Errorf("DeltaText = %q", got)
	}
}

func TestCompareIdenticalDistributionsAreNotSignificant(t *testing.T) {
	a := column(t, "a", 10, 11, 12, 13, 14, 15)
	b := column(t, "b", 15, 14, 13, 12, 11, 10)
	row := Compare([]Column{a, b}, rpmOnly)[0].Rows[1]
	if row.Significant || row.Comparison.P != 1 {
		t.Errorf("p = %v significant = %v, want p = 1 and ~", row.Comparison.P, row.Significant)
	}
	if got := row.DeltaText(); got != "~ (p=1.000 n=6+6)" {
		t.Errorf("DeltaText = %q", got)
	}
}

func TestCompareMedianConfidenceIntervalOfSixRepeatsIsTheirRange(t *testing.T) {
	// With 6 values the distribution-free 95% CI of the median is [min, max], at confidence
	// 1 - 2 * 0.5^6 = 0.96875.
	row := Compare([]Column{column(t, "a", 10, 12, 13, 14, 15, 30)}, rpmOnly)[0].Rows[0]
	s := row.Summary
	if s.Center != 13.5 || s.Lo != 10 || s.Hi != 30 || math.Abs(s.Confidence-0.96875) > 1e-9 {
		t.Errorf("summary = %+v, want center 13.5 in [10, 30] at 0.96875", s)
	}
	if row.ValueText(FigLaravelRPM) != "13.5 req/min ± 122%" {
		t.Errorf("ValueText = %q", row.ValueText(FigLaravelRPM))
	}
}

func TestCompareSingleRunsShowTheRawChangeButNoSignificance(t *testing.T) {
	row := Compare([]Column{column(t, "legacy", 40000), column(t, "batch", 40)}, rpmOnly)[0].Rows[1]
	if row.Significant {
		t.Error("one run per side can never be significant")
	}
	if got := row.DeltaText(); got != "~ (p=1.000 n=1+1; change -99.90%)" {
		t.Errorf("DeltaText = %q", got)
	}
	if got := row.ValueText(FigLaravelRPM); got != "40 req/min ± ∞" {
		t.Errorf("ValueText = %q, want ± ∞ for a single run", got)
	}
	if minSignificantN(0.05) != 4 {
		t.Errorf("minSignificantN(0.05) = %d, want 4 (2/C(8,4) = 0.029)", minSignificantN(0.05))
	}
}

func TestCompareOutputIsPinnedByGoldenFiles(t *testing.T) {
	cols := []Column{column(t, "legacy-100", 39000, 40000, 41000, 40500, 39500, 40200),
		column(t, "batch-100", 40, 42, 41, 39, 43, 40), column(t, "batch-100-size100", 41, 40, 43, 39, 42, 44)}
	tables := Compare(cols, []Figure{FigLaravelRPM, FigLaravelRPMPerUser, FigAPIP99})
	if len(tables) != 2 {
		t.Fatalf("want 2 tables (API p99 is in no report), got %d", len(tables))
	}
	var text, md bytes.Buffer
	if err := WriteCompareText(&text, tables); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompareMarkdown(&md, tables); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "compare.golden.txt", text.Bytes())
	goldentest.Check(t, "compare.golden.md", md.Bytes())
}

func TestColumnsFromReadsFilesRunFoldersRepeatFoldersAndBenchFolders(t *testing.T) {
	dir := t.TempDir()
	res := sampleBench(t)
	for _, e := range res.Entries {
		for i, r := range e.Reports {
			d := filepath.Join(dir, e.Runs[i].Dir)
			mkdirAll(t, d)
			if err := r.Save(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	res.Bench.End = res.Bench.Start.Add(time.Minute)
	if err := SaveBench(dir, &res.Bench); err != nil {
		t.Fatal(err)
	}
	cols, err := ColumnsFrom([]string{dir, filepath.Join(dir, "batch-100"), filepath.Join(dir, "legacy-100", "run1", FileName)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cols {
		names = append(names, strings.ReplaceAll(c.Name, dir, "D")+"="+string(rune('0'+len(c.Reports))))
	}
	// Names that repeat say which argument they came from, so no two rows look alike.
	if got := strings.Join(names, ", "); got != "D: legacy-100=1, D: batch-100=2, batch-1000=1, D/batch-100=2, D/legacy-100/run1/report.json: legacy-100=1" {
		t.Errorf("columns = %s", got)
	}
	if _, err := ColumnsFrom([]string{t.TempDir()}); err == nil {
		t.Error("an empty folder must be an error")
	}
	if _, err := ColumnsFrom([]string{filepath.Join(dir, "nope")}); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing path error = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}
