package scenario

import (
	"slices"
	"strings"
	"testing"
)

// twoCores pretends the machine has CPUs 0 and 1 for the length of a test.
func twoCores(t *testing.T) {
	t.Helper()
	old := onlineCPUs
	onlineCPUs = func() ([]int, error) { return []int{0, 1}, nil }
	t.Cleanup(func() { onlineCPUs = old })
}

func TestCPUsSplitTheMachineBetweenGatewayAndWorld(t *testing.T) {
	twoCores(t)
	tests := []struct {
		name        string
		overrides   []string
		wantGateway []int
		wantWorld   []int
		wantErr     string
	}{
		{name: "unset pins nothing"},
		{name: "auto on two cores", overrides: []string{"cpus.gateway=auto"}, wantGateway: []int{1}, wantWorld: []int{0}},
		{name: "explicit", overrides: []string{"cpus.gateway=0", "cpus.world=1"}, wantGateway: []int{0}, wantWorld: []int{1}},
		{name: "a CPU the machine lacks", overrides: []string{"cpus.gateway=3"}, wantErr: "cpus: gateway: CPU 3 does not exist on this machine, which has CPUs 0-1"},
		{name: "overlap", overrides: []string{"cpus.gateway=1", "cpus.world=0-1"}, wantErr: "cpus: gateway (1) and world (0-1) share CPU 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("example.yaml", []byte(valid), tt.overrides)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := f.CPUs.Assignment
			if a.Pinned != (tt.wantGateway != nil) || !slices.Equal(a.Gateway, tt.wantGateway) || !slices.Equal(a.World, tt.wantWorld) {
				t.Errorf("assignment = %+v, want gateway %v world %v", a, tt.wantGateway, tt.wantWorld)
			}
		})
	}
}
