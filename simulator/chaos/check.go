package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"wagate/gateway/delivery/retrybudget"
)

// Observation is what one schedule's run showed after healing and draining: the inputs of the
// invariants.
type Observation struct {
	// RunError is set when the world could not run the schedule to its end (start-up failed, the
	// gateway exited by itself, the run was interrupted).
	RunError string
	// Sessions is how many sessions the ground truth checked; Lost (Laravel's final state differs
	// from the gateway's), Stale (an older state overwrote a newer one in Laravel) and
	// GatewayMismatches (the gateway's final state differs from what the simulation caused) count
	// sessions; Mismatches names a few.
	Sessions, Lost, Stale, GatewayMismatches int64
	Mismatches                               []string
	// GatewayAnswered is false when the gateway could not say its sessions' final states.
	GatewayAnswered bool
	// DeadLetters are the sessions of the gateway's dead letters (one entry per dead letter) and
	// DeadLettersError why they could not be read.
	DeadLetters      []string
	DeadLettersError string
	// DeadLetterReasons are a few of the dead letters' distinct reasons.
	DeadLetterReasons []string
	// RefusedSessions are the sessions whose items the schedule made Laravel refuse item by item.
	RefusedSessions []string
	// Recovery is the slowest fault recovery (fault_recovery_time: from a fault's heal until the
	// gateway is healthy, its outbox back to its level and its sessions back online), Slowest the
	// fault it followed, Recoveries how many were measured, and Unrecovered the faults the gateway
	// had not recovered from by the end of the drain.
	Recovery    time.Duration
	Slowest     string
	Recoveries  int
	Unrecovered []string
	// Messages is the customers' messages' ground truth (zero when none were written).
	Messages MessageObservation
	// StormPeak is the highest Laravel request rate (requests/s, every request of every kind) of
	// a series interval that overlaps a fault; Baseline the mean rate of the intervals that
	// overlap none (0 when none). The fault-load invariant judges them.
	StormPeak, Baseline float64
	// Retries is what the gateway's own counters say of its retries during faults (the
	// retry-storm invariant).
	Retries RetryObservation
}

// RetryObservation is the gateway's retries to Laravel over the series intervals that overlap a
// fault, from its counters (wagate_batch_retries_total, _first_attempts_total).
type RetryObservation struct {
	// Intervals counts the intervals during faults whose counters were read.
	Intervals int
	// Peak is the interval whose retries came closest to (or went furthest past) the retry
	// budget's bound: its retries/s, first attempts/s, the bound's retries/s (Limit) and length.
	Peak, First, Limit float64
	Seconds            float64
	// Held counts the retries the budget held back during faults.
	Held int64
}

// Bounds are the campaign's limits.
type Bounds struct {
	// Recovery bounds every fault's recovery time.
	Recovery time.Duration
	// StormFactor and StormFloor bound Laravel's request rate during faults (the fault-load
	// invariant): at most StormFactor times the rate outside faults, and never limited below
	// StormFloor requests/s.
	StormFactor, StormFloor float64
	// RetryBudget is the gateway's retry budget (zero: the gateway's defaults; Run sets it from the
	// scenario's gateway settings): the retry-storm invariant holds its retries to the bound it
	// implies (retrybudget.Config.Bound).
	RetryBudget retrybudget.Config
}

// DefaultBounds are the bounds of `bin/simulator chaos` unless its flags say otherwise.
var DefaultBounds = Bounds{Recovery: 30 * time.Second, StormFactor: 5, StormFloor: 20}

// Invariants, as named in verdicts.
const (
	InvRun         = "run"          // the world ran the schedule to its end
	InvChecked     = "checked"      // the ground truth had sessions to check, and the gateway answered
	InvLost        = "lost"         // Laravel's final state = the gateway's
	InvStale       = "stale"        // no older state overwrote a newer one
	InvTruth       = "truth"        // the gateway's final state = what the simulation caused
	InvDeadLetters = "dead-letters" // dead letters only for injected item refusals
	InvRecovery    = "recovery"     // every fault recovered within the bound
	// InvStorm: no retry storm. The gateway's retries, counted by the gateway itself, in every
	// series interval that overlaps a fault, stay within the bound its retry budget implies for that
	// interval (RetryRates): a storm is the gateway multiplying its load because Laravel fails.
	InvStorm = "retry-storm"
	// InvFaultLoad: Laravel's total request rate during faults (first attempts, retries, the
	// users' lookups) at most max(StormFloor, StormFactor x the rate outside faults): the load a
	// fault brings, whatever its cause, judged on its own.
	InvFaultLoad = "fault-load"
)

// Violation is one invariant that did not hold.
type Violation struct {
	Invariant string `json:"invariant"`
	Detail    string `json:"detail"`
}

// Verdict is the judgement of one schedule.
type Verdict struct {
	Pass       bool        `json:"pass"`
	Violations []Violation `json:"violations,omitempty"`
}

// String is "PASS" or "FAIL" with the invariants that failed.
func (v Verdict) String() string {
	if v.Pass {
		return "PASS"
	}
	var names []string
	for _, x := range v.Violations {
		names = append(names, x.Invariant)
	}
	return "FAIL (" + strings.Join(names, ", ") + ")"
}

// Check judges an observation against the invariants and bounds. It is a pure function.
func Check(o Observation, b Bounds) Verdict {
	var v []Violation
	fail := func(inv, format string, args ...any) { v = append(v, Violation{inv, fmt.Sprintf(format, args...)}) }
	if o.RunError != "" {
		fail(InvRun, "%s", o.RunError)
	}
	switch {
	case o.Sessions == 0:
		fail(InvChecked, "no session was checked: the users never started one")
	case !o.GatewayAnswered:
		fail(InvChecked, "the gateway did not say its sessions' final states")
	}
	examples := func() string {
		if len(o.Mismatches) == 0 {
			return ""
		}
		return ": " + strings.Join(o.Mismatches, "; ")
	}
	if o.Lost > 0 && !refusedAway(o) {
		fail(InvLost, "%d of %d sessions end in Laravel in another state than in the gateway%s", o.Lost, o.Sessions, examples())
	}
	v = append(v, checkMessages(o)...)
	if o.Stale > 0 {
		fail(InvStale, "%d of %d sessions had an older state overwrite a newer one in Laravel%s", o.Stale, o.Sessions, examples())
	}
	if o.GatewayMismatches > 0 {
		fail(InvTruth, "%d of %d sessions end in the gateway in another state than the simulation caused%s", o.GatewayMismatches, o.Sessions, examples())
	}
	if o.DeadLettersError != "" {
		fail(InvDeadLetters, "the dead letters could not be read: %s", o.DeadLettersError)
	}
	var unexpected []string
	for _, id := range o.DeadLetters {
		if !slices.Contains(o.RefusedSessions, id) {
			if id == "" {
				id = "(no session)"
			}
			unexpected = append(unexpected, id)
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		why := ""
		if len(o.DeadLetterReasons) > 0 {
			why = "; reasons: " + strings.Join(o.DeadLetterReasons, "; ")
		}
		fail(InvDeadLetters, "%d dead letters of sessions Laravel never refused item by item: %s%s", len(unexpected), strings.Join(slices.Compact(unexpected), ", "), why)
	}
	switch {
	case len(o.Unrecovered) > 0:
		fail(InvRecovery, "not recovered by the end of the drain: %s", strings.Join(o.Unrecovered, ", "))
	case b.Recovery > 0 && o.Recovery > b.Recovery:
		fail(InvRecovery, "the slowest of %d recoveries (after %s) took %s (bound %s)", o.Recoveries, o.Slowest, o.Recovery.Round(time.Millisecond), b.Recovery)
	}
	switch r := o.Retries; {
	case o.Recoveries > 0 && r.Intervals == 0:
		fail(InvStorm, "the gateway's retry counters were not read during any fault")
	case r.Peak > r.Limit:
		fail(InvStorm, "the gateway retried %.1f times/s during a fault, above its retry budget's %.1f (%.1f first attempts/s over %.1f s; %d retries held back)",
			r.Peak, r.Limit, r.First, r.Seconds, r.Held)
	}
	if limit := StormLimit(o.Baseline, b); o.StormPeak > limit {
		fail(InvFaultLoad, "Laravel got %.1f requests/s during a fault, above %.1f (%.1f/s outside faults)", o.StormPeak, limit, o.Baseline)
	}
	return Verdict{Pass: len(v) == 0, Violations: v}
}

// refusedAway reports whether every lost update is a session whose items Laravel refused item
// by item and whose refused event the gateway dead-lettered: the contract's one visible way not
// to apply an accepted event. The ground truth names at most a few sessions, so the count must
// fit the refused sessions too.
func refusedAway(o Observation) bool {
	excusable := map[string]bool{}
	for _, id := range o.DeadLetters {
		if slices.Contains(o.RefusedSessions, id) {
			excusable[id] = true
		}
	}
	if o.Lost > int64(len(excusable)) {
		return false
	}
	named := 0
	for _, m := range o.Mismatches {
		id, what, _ := strings.Cut(m, ":")
		if !strings.Contains(what, "lost") {
			continue
		}
		if !excusable[id] {
			return false
		}
		named++
	}
	return int64(named) == o.Lost
}

// StormLimit is the highest Laravel request rate allowed during faults given the rate outside
// them.
func StormLimit(baseline float64, b Bounds) float64 {
	return max(b.StormFloor, b.StormFactor*baseline)
}

// Interval is a span of time (a fault from its start to its heal).
type Interval struct{ From, To time.Time }

// RatePoint is Laravel's request rate over the series interval that ends at End.
type RatePoint struct {
	End    time.Time
	PerSec float64
}

// SendsPoint is the gateway's batch sends over the span of Seconds that ends at End.
type SendsPoint struct {
	End                  time.Time
	Seconds              float64
	First, Retries, Held int64
}

// RetryRates judges the gateway's retries during faults against its retry budget: among the
// spans that overlap a fault (as StormRates decides it), the one whose retries come closest to
// or go furthest past the budget's bound for that span (retrybudget.Config.Bound: its burst, its
// floor over the span, its share of the span's first attempts), as rates per second, and the
// retries held back over all of them.
//
// This is what "no retry storm" means for a gateway: its retries, counted by the gateway itself,
// never add more load than its budget allows, whatever Laravel answers. The first attempts are
// the events the world caused (a reconnect wave's statuses, the backlog an outage left, a Redis
// data loss's resend); they are Laravel's load during the fault, judged on their own
// (fault-load), not a storm of retries.
func RetryRates(points []SendsPoint, width time.Duration, faults []Interval, budget retrybudget.Config) RetryObservation {
	var r RetryObservation
	worst := -1.0
	var prevEnd time.Time
	for _, p := range points {
		// A span starts where the previous one ended: each reading's own length is measured
		// between its scrapes, which need not meet the previous point's time, and a fault of a
		// few milliseconds (a drop) falling between two readings would be judged by neither.
		from := p.End.Add(-time.Duration(p.Seconds * float64(time.Second)))
		if !prevEnd.IsZero() && prevEnd.Before(from) {
			from = prevEnd
		}
		prevEnd = p.End
		if p.Seconds <= 0 || !overlaps(from, p.End, width, faults) {
			continue
		}
		r.Intervals++
		r.Held += p.Held
		span := time.Duration(p.Seconds * float64(time.Second))
		bound := budget.Bound(span, float64(p.First))
		if ratio := float64(p.Retries) / bound; ratio > worst {
			worst = ratio
			r.Peak, r.First, r.Limit, r.Seconds = float64(p.Retries)/p.Seconds, float64(p.First)/p.Seconds, bound/p.Seconds, p.Seconds
		}
	}
	return r
}

// overlaps reports whether the span from..to overlaps a fault; a fault that heals at its start
// (a Laravel fault without duration) is taken to last width.
func overlaps(from, to time.Time, width time.Duration, faults []Interval) bool {
	for _, f := range faults {
		end := f.To
		if !end.After(f.From) {
			end = f.From.Add(width)
		}
		if from.Before(end) && f.From.Before(to) {
			return true
		}
	}
	return false
}

// StormRates splits Laravel's request rates by whether their interval (width each, ending at the
// point's time) overlaps a fault: the highest rate among those that do, and the mean of those
// that do not (0 when every interval overlaps one). A fault that heals at its start (a Laravel
// fault without duration) is taken to last one interval.
func StormRates(points []RatePoint, width time.Duration, faults []Interval) (peak, baseline float64) {
	var sum float64
	var n int
	for _, p := range points {
		if overlaps(p.End.Add(-width), p.End, width, faults) {
			peak = max(peak, p.PerSec)
		} else {
			sum += p.PerSec
			n++
		}
	}
	if n > 0 {
		baseline = sum / float64(n)
	}
	return peak, baseline
}
