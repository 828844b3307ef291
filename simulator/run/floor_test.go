package run

import (
	"slices"
	"testing"
	"time"

	"wagate/simulator/scenario"
)

// The floor's pollers arrive as the gateway entry's users do: over the scenario's startDelay,
// each user's pollers spread over the poll interval, not all within the first interval.
func TestTheFloorsPollersArriveAsTheScenariosUsersDo(t *testing.T) {
	f, err := scenario.Parse("s.yaml", []byte(`
name: floor-arrivals
users: 200
scenarios:
  users: {executor: constant-vus, duration: 2m}
behaviour:
  startDelay: {min: 0s, max: 45s}
  statusPollInterval: 1s
  pollers: 10
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	firsts := floorArrivals(f)
	if len(firsts) != 2000 {
		t.Fatalf("%d pollers, want 200 users x 10", len(firsts))
	}
	early := 0
	for _, d := range firsts {
		if d < 0 || d > 46*time.Second {
			t.Fatalf("a poller starts at %v, outside the arrival window plus one interval", d)
		}
		if d < time.Second {
			early++
		}
	}
	// Arrivals uniform over 45 s put ~2% of the pollers in the first second (before: all of them).
	if early > 100 {
		t.Errorf("%d of 2000 pollers start within the first second", early)
	}
	if !slices.Equal(firsts, floorArrivals(f)) {
		t.Error("the same scenario seed drew other arrivals")
	}
}
