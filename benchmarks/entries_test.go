package benchmarks

import (
	"path/filepath"
	"strings"
	"testing"

	"wagate/simulator/scenario"
)

// Every YAML entry of a shipped matrix loads as the simulator will load it: its scenario with its
// overrides (the matrix's CPU sets first), so a bench never fails on a bad -set after the runs
// before it took minutes. The overrides are checked against the scenario's validation, e.g. a
// replica fault naming a replica a one-gateway entry does not have.
func TestShippedMatrixEntriesLoadWithTheirOverrides(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		m, err := LoadMatrix(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, e := range m.Entries {
			if !strings.HasSuffix(e.Scenario, ".yaml") {
				continue // a k6 script: the simulator's k6 runtime checks it
			}
			if _, err := scenario.Load(filepath.Join("..", e.Scenario), e.Set); err != nil {
				t.Errorf("%s: entry %s: %v", f, e.Name, err)
			}
		}
	}
}
