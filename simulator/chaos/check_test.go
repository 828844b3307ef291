package chaos

import (
	"reflect"
	"testing"
	"time"

	"wagate/gateway/delivery/retrybudget"
)

// healthy is the observation of a schedule where every invariant holds.
func healthy() Observation {
	return Observation{Sessions: 20, GatewayAnswered: true, Recovery: 4 * time.Second, Recoveries: 2, StormPeak: 6, Baseline: 3,
		Retries: RetryObservation{Intervals: 4, Peak: 1.5, First: 5, Limit: 3, Seconds: 2}}
}

func TestCheckJudgesEachInvariant(t *testing.T) {
	b := Bounds{Recovery: 30 * time.Second, StormFactor: 5, StormFloor: 20}
	for _, tc := range []struct {
		name   string
		change func(*Observation)
		want   []string // invariants that fail, in order
	}{
		{"everything holds", func(*Observation) {}, nil},
		{"the world failed", func(o *Observation) { o.RunError = "gateway did not start" }, []string{InvRun}},
		{"no session to check is not a pass", func(o *Observation) { o.Sessions = 0 }, []string{InvChecked}},
		{"the gateway did not answer", func(o *Observation) { o.GatewayAnswered = false }, []string{InvChecked}},
		{"one lost update", func(o *Observation) { o.Lost = 1 }, []string{InvLost}},
		{"one stale overwrite", func(o *Observation) { o.Stale = 1 }, []string{InvStale}},
		{"the gateway disagrees with the truth", func(o *Observation) { o.GatewayMismatches = 2 }, []string{InvTruth}},
		{"dead letters of refused sessions are allowed", func(o *Observation) {
			o.RefusedSessions = []string{"users-i0-3"}
			o.DeadLetters = []string{"users-i0-3", "users-i0-3"}
		}, nil},
		{"a dead letter of a session never refused", func(o *Observation) {
			o.RefusedSessions = []string{"users-i0-3"}
			o.DeadLetters = []string{"users-i0-3", "users-i0-4"}
		}, []string{InvDeadLetters}},
		{"a refused session's final state, dead-lettered, is not lost", func(o *Observation) {
			o.RefusedSessions, o.DeadLetters = []string{"users-i0-3"}, []string{"users-i0-3"}
			o.Lost, o.Mismatches = 1, []string{"users-i0-3: lost update: the gateway's final logged_out v9 never reached Laravel"}
		}, nil},
		{"a refused session lost without a dead letter is lost", func(o *Observation) {
			o.RefusedSessions = []string{"users-i0-3"}
			o.Lost, o.Mismatches = 1, []string{"users-i0-3: lost update: the gateway's final logged_out v9 never reached Laravel"}
		}, []string{InvLost}},
		{"another session lost next to a refused one is lost", func(o *Observation) {
			o.RefusedSessions, o.DeadLetters = []string{"users-i0-3"}, []string{"users-i0-3"}
			o.Lost, o.Mismatches = 2, []string{"users-i0-3: lost update: x", "users-i0-4: lost update: y"}
		}, []string{InvLost}},
		{"more lost than refused sessions is lost, named or not", func(o *Observation) {
			o.RefusedSessions, o.DeadLetters = []string{"users-i0-3"}, []string{"users-i0-3"}
			o.Lost, o.Mismatches = 2, []string{"users-i0-3: lost update: x"}
		}, []string{InvLost}},
		{"any dead letter without refusals", func(o *Observation) { o.DeadLetters = []string{"users-i0-1"} }, []string{InvDeadLetters}},
		{"dead letters that cannot be read", func(o *Observation) { o.DeadLettersError = "503" }, []string{InvDeadLetters}},
		{"recovery at the bound holds", func(o *Observation) { o.Recovery = 30 * time.Second }, nil},
		{"recovery past the bound", func(o *Observation) { o.Recovery = 31 * time.Second }, []string{InvRecovery}},
		{"a fault never recovered from, however short the drain", func(o *Observation) {
			o.Recovery, o.Unrecovered = 5*time.Second, []string{"gateway-kill-1"}
		}, []string{InvRecovery}},
		{"retries at the budget's bound hold", func(o *Observation) { o.Retries.Peak = o.Retries.Limit }, nil},
		{"retries past the budget's bound are a storm", func(o *Observation) { o.Retries.Peak = o.Retries.Limit + 0.5 }, []string{InvStorm}},
		{"retries never read during a fault are not a pass", func(o *Observation) { o.Retries = RetryObservation{} }, []string{InvStorm}},
		{"no fault, no retries to judge", func(o *Observation) { o.Recoveries, o.Retries = 0, RetryObservation{} }, nil},
		{"first attempts alone above the floor and the factor: the load, not a storm", func(o *Observation) {
			o.StormPeak, o.Baseline = 22, 3
		}, []string{InvFaultLoad}},
		{"below the floor is no fault load", func(o *Observation) { o.StormPeak, o.Baseline = 19, 0.5 }, nil},
		{"a load above the floor and the factor", func(o *Observation) { o.StormPeak, o.Baseline = 40, 3 }, []string{InvFaultLoad}},
		{"a busy baseline raises the limit", func(o *Observation) { o.StormPeak, o.Baseline = 40, 10 }, nil},
		{"several at once, in order", func(o *Observation) { o.Lost, o.Stale, o.Recovery = 1, 1, time.Minute }, []string{InvLost, InvStale, InvRecovery}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := healthy()
			tc.change(&o)
			v := Check(o, b)
			var got []string
			for _, x := range v.Violations {
				got = append(got, x.Invariant)
				if x.Detail == "" {
					t.Errorf("%s has no detail", x.Invariant)
				}
			}
			if !reflect.DeepEqual(got, tc.want) || v.Pass != (len(tc.want) == 0) {
				t.Errorf("violations %v (pass %v), want %v", got, v.Pass, tc.want)
			}
		})
	}
}

func TestStormRatesSplitIntervalsByFaults(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	points := []RatePoint{{at(2), 1}, {at(4), 2}, {at(6), 30}, {at(8), 12}, {at(10), 3}}
	for _, tc := range []struct {
		name           string
		faults         []Interval
		peak, baseline float64
	}{
		{"no fault: no peak, the mean", nil, 0, 9.6},
		{"a fault inside one interval", []Interval{{at(4).Add(500 * time.Millisecond), at(5)}}, 30, 4.5},
		{"a fault across two intervals", []Interval{{at(5), at(7)}}, 30, 2},
		{"a fault that heals when set lasts one interval", []Interval{{at(6), at(6)}}, 12, 9},
		{"faults everywhere: no baseline", []Interval{{at(0), at(10)}}, 30, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peak, base := StormRates(points, 2*time.Second, tc.faults)
			if peak != tc.peak || base != tc.baseline {
				t.Errorf("peak %v baseline %v, want %v %v", peak, base, tc.peak, tc.baseline)
			}
		})
	}
}

// TestRetryRatesJudgeTheRetriesOfSpansDuringFaultsAgainstTheBudget: the spans that overlap a
// fault are judged, each against the budget's bound for its own length and first attempts; the
// one closest to or furthest past its bound is reported, as rates.
func TestRetryRatesJudgeTheRetriesOfSpansDuringFaultsAgainstTheBudget(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	budget := retrybudget.Config{Percent: 20, MinPerSecond: 1, Burst: 2}
	// Bounds: 2 s with 10 first attempts: 2 + 2 + 2 = 6 retries (3/s); 4 s with 10: 2 + 4 + 2 = 8 (2/s).
	points := []SendsPoint{
		{End: at(2), Seconds: 2, First: 10, Retries: 30},         // outside faults: never judged
		{End: at(4), Seconds: 2, First: 10, Retries: 5, Held: 1}, // 5 of 6
		{End: at(8), Seconds: 4, First: 10, Retries: 7, Held: 4}, // 7 of 8: the closest
		{End: at(10), Seconds: 2, First: 0, Retries: 0},
	}
	for _, tc := range []struct {
		name   string
		faults []Interval
		want   RetryObservation
	}{
		{"no fault: nothing judged", nil, RetryObservation{}},
		{"a fault over one span", []Interval{{at(3), at(3).Add(500 * time.Millisecond)}}, RetryObservation{Intervals: 1, Peak: 2.5, First: 5, Limit: 3, Seconds: 2, Held: 1}},
		{"a fault over a span that a missed reading made 4 s long", []Interval{{at(5), at(5)}},
			RetryObservation{Intervals: 1, Peak: 1.75, First: 2.5, Limit: 2, Seconds: 4, Held: 4}},
		{"the span closest to its bound among several", []Interval{{at(3), at(9)}},
			RetryObservation{Intervals: 3, Peak: 1.75, First: 2.5, Limit: 2, Seconds: 4, Held: 5}},
		{"past the bound", []Interval{{at(0), at(1)}}, RetryObservation{Intervals: 1, Peak: 15, First: 5, Limit: 3, Seconds: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryRates(points, 2*time.Second, tc.faults, budget); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RetryRates = %+v; want %+v", got, tc.want)
			}
		})
	}
	// Campaign seed 1 schedule 100 at 590bbea: a drop of 1 ms at 46.176 fell between the reading
	// ending at 46.171 and the next one's span, measured from 46.1795; no span was judged and the
	// verdict said the retry counters were not read during any fault.
	t.Run("a fault between two readings' spans is judged with the next one", func(t *testing.T) {
		gapped := []SendsPoint{
			{End: at(2), Seconds: 2, First: 10, Retries: 1},
			{End: at(4), Seconds: 1.99, First: 10, Retries: 2},
		}
		drop := at(2).Add(5 * time.Millisecond)
		got := RetryRates(gapped, 2*time.Second, []Interval{{drop, drop.Add(time.Millisecond)}}, budget)
		if got.Intervals != 1 || got.Seconds != 1.99 {
			t.Errorf("RetryRates = %+v; want the reading ending at 4 s judged", got)
		}
	})
}
