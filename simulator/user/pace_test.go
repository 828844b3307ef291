package user

import (
	"math"
	"testing"
	"time"
)

func TestThinkTimesStayWithinTheJitterAndAverageTheInterval(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		lo, hi   time.Duration
	}{
		{"the seed's status polls", time.Second, 900 * time.Millisecond, 1100 * time.Millisecond},
		{"the seed's QR polls", 2 * time.Second, 1800 * time.Millisecond, 2200 * time.Millisecond},
		{"an interval too short to jitter", 5 * time.Nanosecond, 5 * time.Nanosecond, 5 * time.Nanosecond},
		{"no interval", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPace(tt.interval, 7, 3)
			const n = 200_000
			var sum float64
			for range n {
				d := p.Next()
				if d < tt.lo || d > tt.hi {
					t.Fatalf("think time %v outside [%v, %v]", d, tt.lo, tt.hi)
				}
				sum += float64(d)
			}
			// The uniform draw's standard error over n is 0.013% of the interval: 0.1% is ~8 of them.
			if mean := sum / n; math.Abs(mean-float64(tt.interval)) > 0.001*float64(tt.interval) {
				t.Errorf("mean think time %v, want the interval %v: the per-user rate would change", time.Duration(mean), tt.interval)
			}
		})
	}
	a, b := NewPace(time.Second, 1, 2), NewPace(time.Second, 1, 2)
	for range 100 {
		if x, y := a.Next(), b.Next(); x != y {
			t.Fatalf("the same seeds drew %v and %v", x, y)
		}
	}
}

// A bunch of pollers answered together (after a pause of the generator) no longer polls together
// the next round: with the exact interval every one of them would, round after round.
func TestABunchOfPollersAnsweredTogetherSpreadsOutInTheNextRound(t *testing.T) {
	const pollers = 1000
	busiestMillisecond := func(next func(i int) time.Duration) int {
		perMs := map[time.Duration]int{}
		most := 0
		for i := range pollers {
			ms := next(i).Truncate(time.Millisecond)
			perMs[ms]++
			most = max(most, perMs[ms])
		}
		return most
	}
	exact := busiestMillisecond(func(int) time.Duration { return time.Second })
	paces := make([]*Pace, pollers)
	for i := range paces {
		paces[i] = NewPace(time.Second, uint64(i)*7919, uint64(i))
	}
	jittered := busiestMillisecond(func(i int) time.Duration { return paces[i].Next() })
	if exact != pollers {
		t.Fatalf("exact interval: %d in the busiest millisecond, want all %d", exact, pollers)
	}
	// 1000 polls over 200 ms: 5 a millisecond on average; the busiest of 200 Poisson-like bins
	// stays far below the bunch.
	if jittered > 20 {
		t.Errorf("with the jitter the busiest millisecond still has %d of %d polls", jittered, pollers)
	}
}
