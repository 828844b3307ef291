package run

import (
	"context"
	"log/slog"
	"testing"
)

// A gateway process the simulator stops takes its emitted-events counter with it, so the counter
// read just before the stop is the only one: a process that does not answer at once is asked
// again, and one that never answers makes the duplicates' count unknown instead of a made-up
// number (applied minus a short emitted sum: 2008 "duplicates" in a 500-user cluster run whose
// busy replica missed one 2 s scrape).
func TestTheCounterOfAStoppedGatewayIsAskedAgainAndNeverGuessed(t *testing.T) {
	cases := []struct {
		name      string
		stops     [][]float64 // per stopped process, what each scrape returns (-1: no answer); the last repeats
		wantCalls int
		wantSum   float64
		wantKnown bool
	}{
		{name: "answers at once", stops: [][]float64{{40}}, wantCalls: 1, wantSum: 40, wantKnown: true},
		{name: "busy, answers the third time", stops: [][]float64{{-1, -1, 40}}, wantCalls: 3, wantSum: 40, wantKnown: true},
		{name: "never answers", stops: [][]float64{{-1}}, wantCalls: stopScrapeAttempts, wantKnown: false},
		{name: "two stops, both answer", stops: [][]float64{{40}, {-1, 2}}, wantSum: 42, wantKnown: true},
		{name: "two stops, the second never answers", stops: [][]float64{{40}, {-1}}, wantKnown: false},
		{name: "a counter of zero is an answer", stops: [][]float64{{0}}, wantSum: 0, wantKnown: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{log: slog.New(slog.DiscardHandler)}
			calls := 0
			for _, answers := range tc.stops {
				calls = 0
				emitted, _ := r.scrapeBeforeStop(context.Background(), func(context.Context) (float64, float64) {
					a := answers[min(calls, len(answers)-1)]
					calls++
					return a, 0
				})
				r.proc.mu.Lock()
				r.proc.addStopped(emitted)
				r.proc.mu.Unlock()
			}
			if tc.wantCalls > 0 && calls != tc.wantCalls {
				t.Errorf("asked %d times, want %d", calls, tc.wantCalls)
			}
			sum, known := r.emittedOffset()
			if known != tc.wantKnown || (known && sum != tc.wantSum) {
				t.Errorf("stopped processes emitted %v (known %v), want %v (known %v)", sum, known, tc.wantSum, tc.wantKnown)
			}
		})
	}
}
