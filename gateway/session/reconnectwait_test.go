package session

import (
	"testing"
	"time"
)

// A retry waits between half its backoff and the whole of it, so sessions that failed together
// retry apart; a reconnect at once stays at once.
func TestReconnectWaitSpreadsRetriesWithinTheBackoff(t *testing.T) {
	for _, b := range []time.Duration{0, time.Millisecond, time.Second, 2 * time.Second, maxRedeliveryBackoff} {
		seen := map[time.Duration]bool{}
		for range 1000 {
			w := reconnectWait(b)
			if w < b/2 || w > b {
				t.Fatalf("backoff %v: waited %v, want within [%v, %v]", b, w, b/2, b)
			}
			seen[w] = true
		}
		switch {
		case b == 0 && len(seen) != 1:
			t.Fatalf("backoff 0 waited %d different times, want at once every time", len(seen))
		case b >= time.Second && len(seen) < 900:
			t.Fatalf("backoff %v: 1000 retries waited only %d different times: they would come back together", b, len(seen))
		}
	}
}
