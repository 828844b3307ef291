package benchmarks

import (
	"slices"
	"strings"
	"testing"
)

func TestAMatrixPassesItsCPUSetsToEveryRunBeforeTheEntrysOwnOverrides(t *testing.T) {
	old := onlineCPUs
	onlineCPUs = func() ([]int, error) { return []int{0, 1}, nil }
	t.Cleanup(func() { onlineCPUs = old })
	tests := []struct {
		name    string
		cpus    string
		wantSet []string
		wantErr string
	}{
		{name: "no cpus: nothing passed", wantSet: []string{"users=10"}},
		{name: "auto", cpus: "cpus: {gateway: auto}", wantSet: []string{"cpus.gateway=auto", "users=10"}},
		{name: "explicit", cpus: `cpus: {gateway: "1", world: "0"}`, wantSet: []string{"cpus.gateway=1", "cpus.world=0", "users=10"}},
		{name: "the world's servers' priority", cpus: `cpus: {gateway: auto, serversNice: 0}`, wantSet: []string{"cpus.gateway=auto", "cpus.serversNice=0", "users=10"}},
		{name: "a nice Linux does not have", cpus: `cpus: {gateway: auto, serversNice: 25}`, wantErr: "serversNice 25 is not between 0 (the load generator's priority) and 19 (nice steps below it) (cpus)"},
		{name: "a CPU the machine lacks", cpus: `cpus: {gateway: "4"}`, wantErr: "gateway: CPU 4 does not exist on this machine, which has CPUs 0-1 (cpus)"},
		{name: "overlapping sets", cpus: `cpus: {gateway: "0-1", world: "0"}`, wantErr: "share CPU 0; give each its own CPUs (cpus)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "name: m\n" + tt.cpus + `
entries:
  - {name: a, scenario: s.yaml, set: [users=10]}
capacity:
  - {name: batch, scenario: s.yaml, set: [users=10], start: 10, limit: 20}
`
			m, err := ParseMatrix([]byte(doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMatrix error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Entries[0].Set, tt.wantSet) || !slices.Equal(m.Capacity[0].Set, tt.wantSet) {
				t.Errorf("entry set %v, capacity set %v; want %v", m.Entries[0].Set, m.Capacity[0].Set, tt.wantSet)
			}
		})
	}
}

func TestAFloorEntryRunsTheSimulatorsFloorCommand(t *testing.T) {
	m, err := ParseMatrix([]byte("name: m\nentries:\n  - {name: f, kind: floor, scenario: s.yaml}\n  - {name: r, scenario: s.yaml}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"floor -out out/f s.yaml", "run -out out/r s.yaml"} {
		e := m.Entries[i]
		if got := strings.Join(CommandArgs(e.Kind, e.Scenario, "out/"+e.Name, "", e.Set), " "); got != want {
			t.Errorf("entry %s: simulator %s, want %s", e.Name, got, want)
		}
	}
	if _, err := ParseMatrix([]byte("name: m\nentries:\n  - {name: f, kind: bare, scenario: s.yaml}\n")); err == nil || !strings.Contains(err.Error(), `kind "bare" is not run, floor or k6-cost`) {
		t.Errorf("unknown kind: error %v", err)
	}
}
