package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
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
	// StormPeak is the highest Laravel request rate (requests/s) of a series interval that
	// overlaps a fault; Baseline the mean rate of the intervals that overlap none (0 when none).
	StormPeak, Baseline float64
}

// Bounds are the campaign's limits.
type Bounds struct {
	// Recovery bounds every fault's recovery time.
	Recovery time.Duration
	// StormFactor and StormFloor bound Laravel's request rate during faults: at most StormFactor
	// times the rate outside faults, and never limited below StormFloor requests/s.
	StormFactor, StormFloor float64
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
	InvStorm       = "retry-storm"  // Laravel's request rate during faults bounded
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
	if limit := StormLimit(o.Baseline, b); o.StormPeak > limit {
		fail(InvStorm, "Laravel got %.1f requests/s during a fault, above %.1f (%.1f/s outside faults)", o.StormPeak, limit, o.Baseline)
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

// StormRates splits Laravel's request rates by whether their interval (width each, ending at the
// point's time) overlaps a fault: the highest rate among those that do, and the mean of those
// that do not (0 when every interval overlaps one). A fault that heals at its start (a Laravel
// fault without duration) is taken to last one interval.
func StormRates(points []RatePoint, width time.Duration, faults []Interval) (peak, baseline float64) {
	var sum float64
	var n int
	for _, p := range points {
		from := p.End.Add(-width)
		during := false
		for _, f := range faults {
			to := f.To
			if !to.After(f.From) {
				to = f.From.Add(width)
			}
			if from.Before(to) && f.From.Before(p.End) {
				during = true
				break
			}
		}
		if during {
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
