package run

import (
	"context"
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

// The floor's pollers are born when they first poll, in that order, not all at the start: 10,000
// goroutines runnable at once were the floor's generator delays.
func TestTheFloorsPollersAreLaunchedWhenTheyFirstPoll(t *testing.T) {
	firsts := []time.Duration{60 * time.Millisecond, 0, 30 * time.Millisecond, 30 * time.Millisecond}
	start := time.Now()
	var order []int
	launchPollers(t.Context(), start, firsts, func(i int, first time.Duration) {
		if first != firsts[i] {
			t.Errorf("poller %d launched with first %v, want %v", i, first, firsts[i])
		}
		if at := time.Since(start); at < firsts[i] {
			t.Errorf("poller %d launched at %v, before its first poll at %v", i, at, firsts[i])
		}
		order = append(order, i)
	})
	if want := []int{1, 2, 3, 0}; !slices.Equal(order, want) {
		t.Errorf("launched in the order %v, want %v", order, want)
	}

	ctx, cancel := context.WithCancel(t.Context())
	launched := 0
	launchPollers(ctx, time.Now(), []time.Duration{0, time.Hour}, func(int, time.Duration) { launched++; cancel() })
	if launched != 1 {
		t.Errorf("%d pollers launched after the context ended, want only the one before", launched)
	}
}
