package reports

import (
	"fmt"
	"math"
	"strings"
)

// Bound is what a target asks of a measured value: value <Op> Limit, Limit in the unit the value
// is measured in.
type Bound struct {
	// Op is "<=", ">=" or "==".
	Op    string
	Limit float64
}

// Holds reports whether v keeps the bound.
func (b Bound) Holds(v float64) bool {
	switch b.Op {
	case "<=":
		return v <= b.Limit
	case ">=":
		return v >= b.Limit
	case "==":
		return v == b.Limit
	}
	return false
}

// Text writes the bound for a person, with the value's unit: "<= 10 ms", "<= 1 s" (whole
// seconds of a limit in ms), "<= 5% of a core", ">= 100x fewer", "0" (an exact bound is its value).
func (b Bound) Text(unit string) string {
	v := b.Limit
	if unit == "ms" && v >= 1000 && math.Mod(v, 1000) == 0 {
		v, unit = v/1000, "s"
	}
	s := formatValue(v, "")
	switch {
	case unit == "":
	case strings.HasPrefix(unit, "%"), strings.HasPrefix(unit, "x "):
		s += unit
	default:
		s += " " + unit
	}
	if b.Op == "==" {
		return s
	}
	return b.Op + " " + s
}

// TargetUsers is the user count docs/design.md's targets are set for: the rows measured at scale
// are judged only on a batch entry of at least this many users.
const TargetUsers = 1000

// SeedUsers is the seed's user count (its "before" and "after"), where docs/design.md sets the
// gateway's CPU target (AtSeedBatch).
const SeedUsers = 100

// Scope is where a target is measured.
type Scope int

const (
	// AtScale is the median of the batch entry at scale (1000 users), the seed table's scale role.
	AtScale Scope = iota
	// ScaleVsLegacy is how many times fewer the figure is at scale in batch mode than in legacy
	// mode, per user, on the same per-user workload.
	ScaleVsLegacy
	// EveryRun is the figure summed over every run of every entry.
	EveryRun
	// CapacitySearch is the batch capacity search's users supported (make bench-capacity).
	CapacitySearch
	// VsFloor is how many times the floor's figure (the bench's kind: floor entry: a bare
	// net/http server under the same poll workload on the gateway's CPU set) the figure is at scale.
	VsFloor
	// AtSessionScale is the median of `make bench-scale`'s entry (SessionScaleEntry: 10,000
	// sessions in one gateway process).
	AtSessionScale
	// AtSeedBatch is the median of the seed table's batch entry (the seed's "after": batch mode
	// at the seed's 100 users), where docs/design.md sets the gateway's CPU target.
	AtSeedBatch
)

// unit is the unit of the value the scope measures of fig.
func (s Scope) unit(fig Figure) string {
	switch s {
	case ScaleVsLegacy:
		return "x fewer"
	case CapacitySearch:
		return ""
	case VsFloor:
		return "x the floor's"
	}
	return fig.Unit
}

// TargetSpec is one of docs/design.md's targets as data: the figure, the bound it must keep and
// where it is measured. Targets checks the same list the reports render.
type TargetSpec struct {
	// Name describes what is measured.
	Name string
	// Figure is the measured figure (none for CapacitySearch, which measures users supported).
	Figure Figure
	Bound  Bound
	Scope  Scope
	// Latency marks a latency target: a run whose load generator saturated its cores measured its
	// own queueing, and the row says the value is not valid.
	Latency bool
	// Beside, when set, is a figure of the same entry the row shows after its value, unchecked
	// (the idle CPU's row: the CPU with light polling).
	Beside Figure
}

// DesignTargets are docs/design.md's targets as the bench report checks them, in its order.
var DesignTargets = []TargetSpec{
	{Name: "Laravel requests/min per user, batch vs legacy on the same workload", Figure: FigLaravelRPMPerUser, Bound: Bound{">=", 100}, Scope: ScaleVsLegacy},
	{Name: "gateway API latency p99", Figure: FigAPIP99, Bound: Bound{"<=", 10}, Scope: AtScale, Latency: true},
	{Name: "HIGH events visible in Laravel, p99", Figure: FigHighP99, Bound: Bound{"<=", 1000}, Scope: AtScale, Latency: true},
	{Name: "gateway CPU (mean) at the seed's 100 users, batch mode", Figure: FigGatewayCPU, Bound: Bound{"<=", 5}, Scope: AtSeedBatch},
	{Name: "gateway CPU per API request, all its work included, vs the floor's in the same bench", Figure: FigCPUPerRequest, Bound: Bound{"<=", FloorRatioLimit}, Scope: VsFloor},
	{Name: "gateway memory per connected session", Figure: FigMemPerSession, Bound: Bound{"<=", 300}, Scope: AtScale},
	{Name: "lost or stale final states (every entry)", Figure: FigLost, Bound: Bound{"==", 0}, Scope: EveryRun},
	{Name: "Laravel requests for customers' messages and receipts per user, batch vs legacy on the same workload", Figure: FigMessageRequestsPerUser, Bound: Bound{">=", 20}, Scope: ScaleVsLegacy},
	{Name: "customers' messages stored in Laravel, p99 (fakewa accepted -> Laravel stored)", Figure: FigMessageDelayP99, Bound: Bound{"<=", 1500}, Scope: AtScale, Latency: true},
	{Name: "messages lost, duplicated or out of order per chat (every entry)", Figure: FigMessagesWrong, Bound: Bound{"==", 0}, Scope: EveryRun},
	// DESIGN.md and issue 18: users supported (bench-capacity, batch) >= 1000 within the service
	// limits, the seed's "1000+" (this row said 10,000 from the first harness on, a bound no
	// specification sets: the 10,000 sessions of make bench-scale are idle, not the seed's workload).
	{Name: "max users within those limits (make bench-capacity)", Bound: Bound{">=", 1000}, Scope: CapacitySearch},
}

// ScaleTargets are issue 18's targets for 10,000 sessions in one gateway process, measured by
// `make bench-scale` (its entry SessionScaleEntry); a bench without that entry has no such rows.
var ScaleTargets = []TargetSpec{
	{Name: "10,000 sessions: all paired and connected at once", Figure: FigSessionsPeak, Bound: Bound{">=", 10000}, Scope: AtSessionScale},
	{Name: "10,000 sessions: 90% back after a fakewa restart", Figure: FigRecoveryMax, Bound: Bound{"<=", 30000}, Scope: AtSessionScale, Beside: FigSessionsBackMax},
	{Name: "10,000 sessions: all connected at the end, after the restart", Figure: FigSessionsAtEnd, Bound: Bound{">=", 10000}, Scope: AtSessionScale},
	{Name: "10,000 sessions: gateway RSS per connected session over the baseline (light polling)", Figure: FigRSSPerSessionOverBaseline, Bound: Bound{"<=", 150}, Scope: AtSessionScale},
	{Name: "10,000 sessions: gateway goroutines per connected session over the baseline (light polling)", Figure: FigGoroutinesPerSession, Bound: Bound{"<=", 4.5}, Scope: AtSessionScale},
	{Name: "10,000 sessions: idle gateway CPU with all connected and no polling, per 1000 sessions", Figure: FigIdleCPUPer1000, Bound: Bound{"<=", 0.1}, Scope: AtSessionScale, Beside: FigPlateauCPUPer1000},
}

// Target is one of docs/design.md's targets, checked against a bench run.
type Target struct {
	// Name describes what is measured.
	Name string
	// Limit is the target in words, e.g. "<= 10 ms".
	Limit string
	// Measured is the measured value, formatted ("" when not measured).
	Measured string
	// Status is "pass", "FAIL" or "not measured".
	Status string
	// Where names the entry the value comes from.
	Where string
}

// Targets evaluates DesignTargets on the bench results: batch mode at the scale entry (1000 users)
// against legacy on the same per-user workload, plus ground truth over every entry and the
// capacity search when one ran; then ScaleTargets when the bench has `make bench-scale`'s entry.
func (res *Results) Targets() []Target {
	out := make([]Target, 0, len(DesignTargets)+len(ScaleTargets))
	for _, spec := range DesignTargets {
		out = append(out, res.check(spec))
	}
	if _, ok := res.Entry(SessionScaleEntry); ok {
		for _, spec := range ScaleTargets {
			out = append(out, res.check(spec))
		}
	}
	return out
}

// check measures one target where its scope says.
func (res *Results) check(spec TargetSpec) Target {
	t := Target{Name: spec.Name, Limit: spec.Bound.Text(spec.Scope.unit(spec.Figure)), Status: "not measured"}
	legacy, seedBatch, scale := res.roles()
	if scale != nil && scale.Name == SessionScaleEntry {
		// make bench-scale's 10,000 idle sessions are not the 1000-user workload the design
		// targets are set for: those rows are not measured there.
		scale = nil
	}
	if scale != nil && scale.Users() < TargetUsers && (spec.Scope == AtScale || spec.Scope == ScaleVsLegacy || spec.Scope == VsFloor) {
		// The targets are set for 1000 users: a smaller bench (bench-quick, bench-real-laravel)
		// shows its figure, but neither passes nor fails a target it did not run at.
		t.Where = scale.Name
		t.Measured = fmt.Sprintf("only %d users here; the target is set at %s", scale.Users(), groupThousands(float64(TargetUsers)))
		return t
	}
	switch spec.Scope {
	case AtScale:
		if scale == nil {
			break
		}
		t.Where = scale.Name
		if v, found := scale.Median(spec.Figure); found {
			t.Measured = spec.Figure.Format(v)
			t.Status = passFail(spec.Bound.Holds(v))
			if why := latencyInvalid(scale); spec.Latency && why != "" {
				t.Measured += " (" + why + ")"
			}
		}
	case AtSeedBatch:
		if seedBatch == nil || seedBatch.Name == SessionScaleEntry {
			break
		}
		t.Where = seedBatch.Name
		if seedBatch.Users() != SeedUsers {
			t.Measured = fmt.Sprintf("%d users here; the target is set at the seed's %d", seedBatch.Users(), SeedUsers)
			break
		}
		if v, found := seedBatch.Median(spec.Figure); found {
			t.Measured = spec.Figure.Format(v) + res.floorBeside(spec.Figure, SeedUsers)
			t.Status = passFail(spec.Bound.Holds(v))
		}
	case ScaleVsLegacy:
		if legacy == nil || scale == nil {
			break
		}
		t.Where = scale.Name + " vs " + legacy.Name
		l, lok := legacy.Median(spec.Figure)
		b, bok := scale.Median(spec.Figure)
		switch {
		case !lok || !bok:
		case b == 0:
			t.Measured = "no Laravel requests in batch mode"
			t.Status = passFail(l > 0)
		default:
			t.Measured = fmt.Sprintf("%sx fewer (%s vs %s per user)", formatValue(l/b, ""), spec.Figure.Format(b), spec.Figure.Format(l))
			t.Status = passFail(spec.Bound.Holds(l / b))
		}
	case EveryRun:
		t.Where = "all entries"
		var sum float64
		var n int
		for _, e := range res.Entries {
			for _, r := range e.Reports {
				v, _ := spec.Figure.Of(r)
				sum += v
				n++
			}
		}
		if n > 0 {
			t.Measured = spec.Figure.Format(sum)
			t.Status = passFail(spec.Bound.Holds(sum))
		}
	case VsFloor:
		t = res.checkVsFloor(spec, t, scale)
	case AtSessionScale:
		e, ok := res.Entry(SessionScaleEntry)
		if !ok {
			break
		}
		t.Where = e.Name
		if v, found := e.Median(spec.Figure); found {
			t.Measured = spec.Figure.Format(v)
			t.Status = passFail(spec.Bound.Holds(v))
			if spec.Beside.Of != nil {
				if b, ok := e.Median(spec.Beside); ok {
					t.Measured += "; " + spec.Beside.Name + ": " + spec.Beside.Format(b)
				}
			}
			if why := coreInvalid(e); why != "" {
				t.Measured += " (" + why + ")"
			}
		}
	case CapacitySearch:
		t.Measured = "run `make bench-capacity`"
		for _, c := range res.Bench.Capacity {
			if c.Mode == ModeBatch {
				t.Where = "capacity " + c.Name
				t.Measured = capacityText(c)
				t.Status = passFail(spec.Bound.Holds(float64(c.MaxUsers)))
			}
		}
	}
	return t
}

func capacityText(c CapacityResult) string {
	if c.MaxUsers >= c.Limit && c.Limit > 0 {
		return fmt.Sprintf(">= %s users (search limit)", groupThousands(float64(c.MaxUsers)))
	}
	if c.MaxUsers == 0 {
		lowest := 0
		for _, s := range c.Steps {
			if !s.OK && (lowest == 0 || s.Users < lowest) {
				lowest = s.Users
			}
		}
		if lowest > 0 {
			return fmt.Sprintf("< %s users", groupThousands(float64(lowest)))
		}
	}
	return groupThousands(float64(c.MaxUsers)) + " users"
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// TargetsOK reports whether no measured target failed.
func (res *Results) TargetsOK() bool {
	for _, t := range res.Targets() {
		if t.Status == "FAIL" {
			return false
		}
	}
	return true
}
