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
		// wantNice is the world's servers' nice value.
		wantNice int
		wantErr  string
	}{
		{name: "unset pins nothing and leaves priorities"},
		{name: "auto on two cores: the world's servers below the generator", overrides: []string{"cpus.gateway=auto"}, wantGateway: []int{1}, wantWorld: []int{0}, wantNice: 10},
		{name: "explicit", overrides: []string{"cpus.gateway=0", "cpus.world=1"}, wantGateway: []int{0}, wantWorld: []int{1}, wantNice: 10},
		{name: "pinned with the servers' priority left alone", overrides: []string{"cpus.gateway=auto", "cpus.serversNice=0"}, wantGateway: []int{1}, wantWorld: []int{0}},
		{name: "another nice", overrides: []string{"cpus.gateway=auto", "cpus.serversNice=19"}, wantGateway: []int{1}, wantWorld: []int{0}, wantNice: 19},
		{name: "a nice without CPU sets", overrides: []string{"cpus.serversNice=5"}, wantNice: 5},
		{name: "a nice above Linux's lowest priority", overrides: []string{"cpus.gateway=auto", "cpus.serversNice=20"}, wantErr: "cpus: serversNice 20 is not between 0 (the load generator's priority) and 19"},
		{name: "a nice that would favour the servers", overrides: []string{"cpus.gateway=auto", "cpus.serversNice=-5"}, wantErr: "cpus: serversNice -5 is not between 0"},
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
			if a.ServersNice != tt.wantNice {
				t.Errorf("the world's servers' nice = %d, want %d", a.ServersNice, tt.wantNice)
			}
		})
	}
}
