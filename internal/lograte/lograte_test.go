package lograte

import (
	"testing"
	"time"
)

func TestALimiterLetsOneLinePerIntervalThroughAndCountsTheOnesItHeldBack(t *testing.T) {
	type call struct {
		at       time.Duration // since the start
		ok       bool
		heldBack int
	}
	for _, tc := range []struct {
		name  string
		every time.Duration
		calls []call
	}{
		{"the first line goes through at once", time.Second, []call{{0, true, 0}}},
		{"a storm within the interval is one line", time.Second, []call{{0, true, 0}, {time.Millisecond, false, 0}, {500 * time.Millisecond, false, 0}, {999 * time.Millisecond, false, 0}}},
		{"the next line after the interval says how many were held back", time.Second,
			[]call{{0, true, 0}, {10 * time.Millisecond, false, 0}, {20 * time.Millisecond, false, 0}, {time.Second, true, 2}, {1500 * time.Millisecond, false, 0}, {2 * time.Second, true, 1}}},
		{"lines an interval apart all go through", time.Second, []call{{0, true, 0}, {time.Second, true, 0}, {5 * time.Second, true, 0}}},
		{"the interval counts from the last line let through", time.Second,
			[]call{{0, true, 0}, {1200 * time.Millisecond, true, 0}, {2100 * time.Millisecond, false, 0}, {2200 * time.Millisecond, true, 1}}},
		{"a zero interval holds nothing back", 0, []call{{0, true, 0}, {0, true, 0}, {0, true, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			now := start
			l := &Limiter{Every: tc.every, Now: func() time.Time { return now }}
			for i, c := range tc.calls {
				now = start.Add(c.at)
				if ok, held := l.Allow(); ok != c.ok || held != c.heldBack {
					t.Fatalf("call %d at +%v: Allow() = %v, %d; want %v, %d", i, c.at, ok, held, c.ok, c.heldBack)
				}
			}
		})
	}
}
