package benchmarks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wagate/simulator/scenario"
)

// Every shipped matrix is valid and every YAML entry of it loads as the simulator will load it:
// its scenario with its overrides (the matrix's CPU sets first), so a bench never fails on a bad
// -set after the runs before it took minutes. The overrides are checked against the scenario's
// validation, e.g. a replica fault naming a replica a one-gateway entry does not have. A k6 script
// entry's file must exist (the simulator's k6 runtime checks the script itself).
func TestShippedMatrixEntriesLoadWithTheirOverrides(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no shipped matrix (benchmarks/*.yaml) found")
	}
	for _, f := range files {
		m, err := LoadMatrix(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, e := range m.Entries {
			if !strings.HasSuffix(e.Scenario, ".yaml") {
				if _, err := os.Stat(filepath.Join("..", e.Scenario)); err != nil {
					t.Errorf("%s: entry %s: k6 script: %v", f, e.Name, err)
				}
				continue
			}
			if _, err := scenario.Load(filepath.Join("..", e.Scenario), e.Set); err != nil {
				t.Errorf("%s: entry %s: %v", f, e.Name, err)
			}
		}
	}
}

// Of the shipped matrices only faults reads its runs' metrics.ndjson (bin/faults-report measures
// the delayed events from the points); every other matrix's reports come from report.json, so
// its runs skip the file.
func TestOnlyTheFaultsMatrixWritesMetricsNDJSON(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		m, err := LoadMatrix(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := f == "faults.yaml"; m.NDJSON != want {
			t.Errorf("%s: ndjson = %v, want %v", f, m.NDJSON, want)
		}
	}
}
