package user

import (
	"testing"
	"time"
)

// At the run's end a user waits for its pollers' next poll time, their longest think time, but
// never beyond lazyEndBound, where the executor's gracefulStop could interrupt it.
func TestAUserWaitsForItsPollersNextPollTimeAtTheRunsEndWithinABound(t *testing.T) {
	for _, tc := range []struct {
		interval, want time.Duration
	}{
		{time.Second, 1100 * time.Millisecond},
		{500 * time.Millisecond, 550 * time.Millisecond},
		{30 * time.Second, lazyEndBound},
		{0, 0},
	} {
		if got := LazyEnd(tc.interval); got != tc.want {
			t.Errorf("LazyEnd(%v) = %v, want %v", tc.interval, got, tc.want)
		}
	}
}
