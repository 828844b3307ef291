package calibrate

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"
)

// Plan sets the phases measured for every kind. Zero values take the defaults of DefaultPlan.
type Plan struct {
	// WarmUp is a closed-loop run whose figures are thrown away (opcache, connections, SQLite).
	WarmUp time.Duration `json:"warm_up_ns"`
	// Solo is a run with one client: the service time without queueing, and its spread.
	Solo time.Duration `json:"solo_ns"`
	// Saturation is one closed-loop run with SaturationClients clients, repeated
	// SaturationRepeats times; the median throughput of the quiet runs (see Quiet) is the
	// saturation throughput.
	Saturation        time.Duration `json:"saturation_ns"`
	SaturationRepeats int           `json:"saturation_repeats"`
	SaturationClients int           `json:"saturation_clients"`
	// Load is one open-loop run at 50% and at 80% of the saturation throughput, repeated
	// LoadRepeats times (p50 and p99 are taken over the latencies of the quiet runs pooled).
	Load        time.Duration `json:"load_ns"`
	LoadRepeats int           `json:"load_repeats"`
	// Overload is one open-loop run at OverloadFactor times the saturation throughput.
	Overload       time.Duration `json:"overload_ns"`
	OverloadFactor float64       `json:"overload_factor"`
	// Drain bounds how long an open-loop run waits for answers after its last arrival; requests
	// still unanswered are abandoned (status 0), so a stalled server cannot stretch the run.
	Drain time.Duration `json:"drain_ns"`
	// Settle is a pause after the overload run so the server drains its queue.
	Settle time.Duration `json:"settle_ns"`
	// QuietCores and QuietWaitBudget: before each run, wait (at most QuietWaitBudget in total
	// over the whole measurement) until other processes use at most QuietCores cores, so runs
	// fall between other people's bursts on a shared machine. Zero QuietCores never waits.
	QuietCores      float64       `json:"quiet_cores"`
	QuietWaitBudget time.Duration `json:"quiet_wait_budget_ns"`
	// MaxInFlight caps the requests an open-loop run has outstanding.
	MaxInFlight int `json:"max_in_flight"`
	// Seed fixes the open-loop arrival times.
	Seed uint64 `json:"seed"`
}

// DefaultPlan is about 40 seconds per kind against a server that drains its queue quickly.
func DefaultPlan(workers int) Plan {
	return Plan{
		WarmUp: 1500 * time.Millisecond, Solo: time.Second,
		Saturation: 2 * time.Second, SaturationRepeats: 4, SaturationClients: 2 * workers,
		Load: 2500 * time.Millisecond, LoadRepeats: 3,
		Overload: 4 * time.Second, OverloadFactor: 2, Drain: 6 * time.Second, Settle: 2 * time.Second,
		QuietCores: 0.5, QuietWaitBudget: 20 * time.Second,
		MaxInFlight: 2000, Seed: 1,
	}
}

// KindMeasurement is what the plan measured for one kind.
type KindMeasurement struct {
	Kind Kind `json:"kind"`
	// SaturationRPS is the median 2xx throughput of the quiet saturation runs.
	SaturationRPS float64 `json:"saturation_rps"`
	// OfferedRPS is the throughput the open-loop rates were derived from (SaturationRPS, or the
	// reference's when comparing).
	OfferedRPS float64 `json:"offered_rps"`
	// ServerCPUPerRequest is the server processes' CPU per answered request during the saturation
	// runs (0 when not measured).
	ServerCPUPerRequestMS float64 `json:"server_cpu_per_request_ms"`
	// ServerCores is the server's CPU use during the saturation runs, in cores.
	ServerCores float64 `json:"server_cores"`
	// OthersCores is the CPU other processes used during the saturation runs, in cores.
	OthersCores float64 `json:"others_cores"`
	// SelfCores is the load generator's CPU use during the saturation runs, in cores.
	SelfCores float64 `json:"self_cores"`

	Solo       *Result   `json:"solo"`
	Saturation []*Result `json:"saturation"`
	Load50     []*Result `json:"load50"`
	Load80     []*Result `json:"load80"`
	Overload   *Result   `json:"overload"`
}

// QuietMargin is how much more CPU (in cores) other processes may have used during a run than
// during the quietest run of the same phase for the run to count as quiet.
const QuietMargin = 0.25

// Quiet returns the runs during which the rest of the machine was (nearly) as quiet as during the
// quietest one: on a shared machine a run that coincided with someone else's burst measures the
// burst. Runs whose OthersCores is unknown (negative) are all kept.
func Quiet(runs []*Result) []*Result {
	least := math.Inf(1)
	for _, r := range runs {
		if r.OthersCores >= 0 {
			least = min(least, r.OthersCores)
		}
	}
	var out []*Result
	for _, r := range runs {
		if r.OthersCores < 0 || r.OthersCores <= least+QuietMargin {
			out = append(out, r)
		}
	}
	return out
}

// Latency returns the p-th percentile of the 2xx latencies pooled over the quiet runs.
func Latency(runs []*Result, p float64) time.Duration {
	return mergeResults(Quiet(runs)).Percentile(p)
}

// Throughput returns the median 2xx throughput of the quiet runs.
func Throughput(runs []*Result) float64 {
	q := Quiet(runs)
	if len(q) == 0 {
		return 0
	}
	v := make([]float64, len(q))
	for i, r := range q {
		v[i] = r.Throughput()
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// Measurement is the plan's outcome for one target.
type Measurement struct {
	Target        string            `json:"target"`
	Started       time.Time         `json:"started"`
	Finished      time.Time         `json:"finished"`
	LoadAvgBefore [3]float64        `json:"load_average_before"`
	LoadAvgAfter  [3]float64        `json:"load_average_after"`
	Plan          Plan              `json:"plan"`
	Kinds         []KindMeasurement `json:"kinds"`
}

// Kind returns the measurement of k, or nil.
func (m *Measurement) Kind(k Kind) *KindMeasurement {
	for i := range m.Kinds {
		if m.Kinds[i].Kind == k {
			return &m.Kinds[i]
		}
	}
	return nil
}

// Measure runs plan against t for every kind in kinds. The solo and saturation runs of all kinds
// are interleaved in SaturationRepeats rounds, then the 50% and 80% load runs in LoadRepeats
// rounds, so that a change in what else runs on the machine affects every kind alike and a
// median over rounds drops a burst; the overload runs come last, kind by kind. When offered is
// non-nil, the open-loop rates derive from offered[kind] instead of the target's own saturation
// throughput (so a fake gets exactly the load the real app got). logf reports progress.
func Measure(ctx context.Context, t Target, client *http.Client, kinds []Kind, plan Plan, sampler Sampler, offered map[Kind]float64, logf func(string, ...any)) (*Measurement, error) {
	m := &Measurement{Target: t.Name, Started: time.Now().UTC(), Plan: plan}
	m.LoadAvgBefore, _ = sampler.LoadAverage()
	if err := Seed(ctx, t, client); err != nil {
		return nil, err
	}
	maxReq := func(rate float64, d time.Duration) int { return int(rate*d.Seconds()*1.5) + 50 }
	m.Kinds = make([]KindMeasurement, len(kinds))
	solo := make([][]*Result, len(kinds))
	usage := make([][]Usage, len(kinds))
	answered := make([]int, len(kinds))
	// observe runs one load run and records how busy the rest of the machine was meanwhile.
	waitBudget := plan.QuietWaitBudget
	observe := func(run func() *Result) (*Result, Usage, bool) {
		waitBudget -= waitQuiet(ctx, sampler, plan.QuietCores, waitBudget)
		before, errBefore := sampler.Sample()
		r := run()
		after, errAfter := sampler.Sample()
		if errBefore != nil || errAfter != nil {
			r.OthersCores = -1
			return r, Usage{}, false
		}
		u := after.Sub(before)
		r.OthersCores = u.Cores(u.Others)
		return r, u, true
	}
	for i, k := range kinds {
		m.Kinds[i].Kind = k
		ClosedLoop(ctx, t, client, k, plan.SaturationClients, plan.WarmUp, 1_000_000)
	}
	for range plan.SaturationRepeats {
		for i, k := range kinds {
			km := &m.Kinds[i]
			so, _, _ := observe(func() *Result { return ClosedLoop(ctx, t, client, k, 1, plan.Solo, 1_000_000) })
			solo[i] = append(solo[i], so)
			r, u, ok := observe(func() *Result {
				return ClosedLoop(ctx, t, client, k, plan.SaturationClients, plan.Saturation, 1_000_000)
			})
			km.Saturation = append(km.Saturation, r)
			if ok {
				usage[i] = append(usage[i], u)
				answered[i] += r.Sent
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
	}
	for i, k := range kinds {
		km := &m.Kinds[i]
		km.Solo = mergeResults(Quiet(solo[i]))
		var total Usage
		for _, u := range usage[i] {
			total.Wall += u.Wall
			total.Server += u.Server
			total.Self += u.Self
			total.Others += u.Others
		}
		km.ServerCores, km.OthersCores, km.SelfCores = total.Cores(total.Server), total.Cores(total.Others), total.Cores(total.Self)
		if len(sampler.Roots) > 0 && answered[i] > 0 {
			km.ServerCPUPerRequestMS = total.Server.Seconds() * 1000 / float64(answered[i])
		}
		tp := make([]float64, len(km.Saturation))
		for j, r := range km.Saturation {
			tp[j] = r.Throughput()
		}
		km.SaturationRPS = Throughput(km.Saturation)
		km.OfferedRPS = km.SaturationRPS
		if offered != nil && offered[k] > 0 {
			km.OfferedRPS = offered[k]
		}
		others := make([]string, len(km.Saturation))
		for j, r := range km.Saturation {
			others[j] = fmt.Sprintf("%.1f", r.OthersCores)
		}
		logf("%s %s: solo p50 %s p90 %s; saturation %.0f req/s (runs %v, others' cores %v), server CPU %.2f ms/req on %.2f cores",
			t.Name, k, ms(km.Solo.Percentile(50)), ms(km.Solo.Percentile(90)), km.SaturationRPS, roundAll(tp), others,
			km.ServerCPUPerRequestMS, km.ServerCores)
		if km.OfferedRPS <= 0 {
			return nil, fmt.Errorf("calibrate: %s %s: no successful request at saturation (statuses %v)", t.Name, k, km.Saturation[0].Status)
		}
	}

	for j := range plan.LoadRepeats {
		for i, k := range kinds {
			km := &m.Kinds[i]
			seed := plan.Seed + uint64(j)
			r50, _, _ := observe(func() *Result {
				rate := 0.5 * km.OfferedRPS
				return OpenLoop(ctx, t, client, k, rate, plan.Load, plan.Drain, maxReq(rate, plan.Load), plan.MaxInFlight, seed)
			})
			r80, _, _ := observe(func() *Result {
				rate := 0.8 * km.OfferedRPS
				return OpenLoop(ctx, t, client, k, rate, plan.Load, plan.Drain, maxReq(rate, plan.Load), plan.MaxInFlight, seed+100)
			})
			km.Load50, km.Load80 = append(km.Load50, r50), append(km.Load80, r80)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
	}
	for i, k := range kinds {
		km := &m.Kinds[i]
		logf("%s %s: 50%% load p50/p99 %s/%s, 80%% load %s/%s (quiet runs %d and %d of %d)", t.Name, k,
			ms(Latency(km.Load50, 50)), ms(Latency(km.Load50, 99)), ms(Latency(km.Load80, 50)), ms(Latency(km.Load80, 99)),
			len(Quiet(km.Load50)), len(Quiet(km.Load80)), len(km.Load50))

		rate := plan.OverloadFactor * km.OfferedRPS
		km.Overload, _, _ = observe(func() *Result {
			return OpenLoop(ctx, t, client, k, rate, plan.Overload, plan.Drain, maxReq(rate, plan.Overload), plan.MaxInFlight, plan.Seed+200)
		})
		o := km.Overload
		logf("%s %s: %gx overload: %d sent, %d ok (%.0f/s), 502 %d, 504 %d, errors %d, dropped %d, p50/p99 ok %s/%s",
			t.Name, k, plan.OverloadFactor, o.Sent, o.OK(), o.Throughput(), o.Status[502], o.Status[504], o.Status[0], o.Dropped,
			ms(o.Percentile(50)), ms(o.Percentile(99)))
		if err := sleepCtx(ctx, plan.Settle); err != nil {
			return nil, err
		}
	}
	m.LoadAvgAfter, _ = sampler.LoadAverage()
	m.Finished = time.Now().UTC()
	return m, nil
}

// quietProbe is how long waitQuiet watches the machine per look.
const quietProbe = 250 * time.Millisecond

// waitQuiet waits, at most budget, until other processes use at most cores CPU cores over a
// quietProbe window, and returns how long it waited. It never waits when cores <= 0 or the
// CPU figures cannot be read.
func waitQuiet(ctx context.Context, sampler Sampler, cores float64, budget time.Duration) time.Duration {
	if cores <= 0 || budget <= 0 {
		return 0
	}
	start := time.Now()
	for time.Since(start) < budget {
		a, err := sampler.Sample()
		if err != nil {
			break
		}
		if sleepCtx(ctx, quietProbe) != nil {
			break
		}
		b, err := sampler.Sample()
		if err != nil {
			break
		}
		if u := b.Sub(a); u.Cores(u.Others) <= cores {
			break
		}
	}
	return time.Since(start)
}

// mergeResults pools the answers of several runs of the same kind into one result.
func mergeResults(runs []*Result) *Result {
	out := &Result{Status: map[int]int{}}
	for _, r := range runs {
		out.Kind, out.Mode, out.Concurrency = r.Kind, r.Mode, r.Concurrency
		out.Elapsed += r.Elapsed
		out.Sent += r.Sent
		out.Dropped += r.Dropped
		for st, n := range r.Status {
			out.Status[st] += n
		}
		out.ok = append(out.ok, r.ok...)
	}
	slices.Sort(out.ok)
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("calibrate: %w", ctx.Err())
	}
}

// ms renders a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func roundAll(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}
