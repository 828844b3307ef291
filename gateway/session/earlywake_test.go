package session

import (
	"testing"
	"time"
)

// A login wakes the reconnects that still wait longer than wakeBound, to a random part of
// wakeWindow, never later than they were due; those due soon anyway are left alone.
func TestALoginWakesOnlyTheReconnectsThatStillWaitLong(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		left   time.Duration // until the reconnect is due
		jitter time.Duration
		wake   bool
		wait   time.Duration
	}{
		{"16 s left (two outages' backoff): woken at the jitter", 16 * time.Second, 700 * time.Millisecond, true, 700 * time.Millisecond},
		{"30 s left (the longest backoff), no jitter drawn: at once", 30 * time.Second, 0, true, 0},
		{"just over the bound: woken", wakeBound + time.Millisecond, 999 * time.Millisecond, true, 999 * time.Millisecond},
		{"exactly the bound: due soon anyway", wakeBound, 0, false, 0},
		{"1 s left: due soon anyway", time.Second, 0, false, 0},
		{"already due: left to its timer", -time.Second, 0, false, 0},
		{"a jitter past the due time is cut to it", 2500 * time.Millisecond, 3 * time.Second, true, 2500 * time.Millisecond},
		{"a negative jitter is at once", 10 * time.Second, -time.Second, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, wake := earlyWake(now, now.Add(tc.left), tc.jitter)
			if wake != tc.wake || wait != tc.wait {
				t.Fatalf("earlyWake(%v left, jitter %v) = %v, %v; want %v, %v", tc.left, tc.jitter, wait, wake, tc.wait, tc.wake)
			}
		})
	}
}

// The registry wakes its long waits once per login that follows a long wait's registration,
// spread within wakeWindow, and leaves short waits and unwakeable ones to their own timers.
func TestBackoffWaitsWakeLongWaitsWithinTheWindow(t *testing.T) {
	var b backoffWaits
	fired := make(chan string, 4)
	record := func(name string) func(bool) {
		return func(woken bool) {
			if woken {
				name += " woken"
			}
			fired <- name
		}
	}
	b.after(time.Hour, true, record("long"))
	b.after(time.Hour, false, record("unwakeable"))
	b.after(1500*time.Millisecond, true, record("short"))
	start := time.Now()
	if n := b.loginSeen(); n != 1 {
		t.Fatalf("a login woke %d reconnects, want 1 (the long wakeable one)", n)
	}
	if n := b.loginSeen(); n != 0 {
		t.Fatalf("a second login with no new long wait woke %d, want 0", n)
	}
	got := map[string]time.Duration{}
	for range 2 {
		got[<-fired] = time.Since(start)
	}
	if at, ok := got["long woken"]; !ok || at > wakeWindow+500*time.Millisecond {
		t.Fatalf("the long wait fired %v (present %v), want woken within %v", at, ok, wakeWindow)
	}
	if _, ok := got["short"]; !ok {
		t.Fatalf("the short wait did not fire on its own: %v", got)
	}
	select {
	case name := <-fired:
		t.Fatalf("%q fired: an unwakeable wait of an hour must not be woken", name)
	case <-time.After(100 * time.Millisecond):
	}
	if len(b.waits) != 0 {
		t.Fatalf("%d waits left registered after they fired", len(b.waits))
	}
}
