package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/gateway/config"
	"wagate/simulator/run"
	"wagate/simulator/scenario"
)

// Options configure a campaign.
type Options struct {
	// Scenario is the base scenario file: the users, gateway and Laravel every schedule runs with
	// (its own faults are replaced by each schedule's).
	Scenario string
	// Seed and Schedules: the campaign draws Schedules schedules from Seed.
	Seed      uint64
	Schedules int
	// Duration, when > 0, replaces the users' duration of every scenario in the file.
	Duration time.Duration
	// MaxFaults is the most faults per schedule (default 4).
	MaxFaults int
	// Only, when set, plays only the schedules of these numbers (0-based) of the seed's draw
	// (Schedules is then ignored): a replay of a campaign's failing schedule, judged by the same
	// invariants.
	Only []int
	// Kinds, when set, restricts the draw to these kinds of the vocabulary (Params.Kinds).
	Kinds []string
	// Parallel is how many worlds run at once (default 1).
	Parallel int
	// Out is the campaign folder: schedules/, runs/, failing/ and the reports.
	Out string
	// BinDir holds bin/fakelaravel and bin/gateway (as run.Options.BinDir).
	BinDir string
	// Bounds are the invariants' limits (DefaultBounds when zero).
	Bounds Bounds
	// KeepLogs keeps the process logs of passing schedules (failing ones keep theirs always).
	KeepLogs bool
	// Command is the command line, for the reports.
	Command string
	// Progress receives one line per schedule drawn and one per schedule judged.
	Progress io.Writer
	// Logger receives the campaign's own log (default: discard); each run logs to its folder.
	Logger *slog.Logger
}

// Campaign is the outcome of a campaign: report.json.
type Campaign struct {
	Command   string    `json:"command,omitempty"`
	Scenario  string    `json:"scenario"`
	Seed      uint64    `json:"seed"`
	Params    Params    `json:"params"`
	Bounds    Bounds    `json:"bounds"`
	Parallel  int       `json:"parallel"`
	Kinds     []string  `json:"kinds"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Passed    int       `json:"passed"`
	Failed    int       `json:"failed"`
	Entries   []Entry   `json:"schedules"`
	Skipped   int       `json:"skipped,omitempty"`
	Cancelled bool      `json:"cancelled,omitempty"`
}

// Entry is one schedule of a campaign and its verdict.
type Entry struct {
	Schedule Schedule `json:"schedule"`
	// File is the schedule's scenario file (replayable with bin/simulator run); Dir its run.
	File string `json:"file"`
	Dir  string `json:"dir"`
	// Faults are the schedule's faults as played (one line each), with Notes on faults that
	// were skipped or could not be played as asked.
	Faults      []string      `json:"faults"`
	Notes       []string      `json:"notes,omitempty"`
	Observation Observation   `json:"observation"`
	Verdict     Verdict       `json:"verdict"`
	Elapsed     time.Duration `json:"elapsed_ns"`
}

// Elapsed is the campaign's wall time.
func (c *Campaign) Elapsed() time.Duration { return c.End.Sub(c.Start) }

// PerSchedule is the mean wall time of one schedule (the campaign's time over its schedules,
// which includes parallel runs' overlap).
func (c *Campaign) PerSchedule() time.Duration {
	n := c.Passed + c.Failed
	if n == 0 {
		return 0
	}
	return c.Elapsed() / time.Duration(n)
}

// Plan loads the base scenario and returns the draw's parameters: faults between 15% and 85% of
// the users' scheduled duration, item refusals among the first sessions of the first scenario.
func Plan(path string, duration time.Duration, maxFaults int) (Params, *scenario.File, error) {
	f, err := scenario.Load(path, durationOverrides(path, duration))
	if err != nil {
		return Params{}, nil, err
	}
	d := f.ScheduledDuration()
	names := make([]string, 0, len(f.Scenarios))
	for n := range f.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	_, lookErr := exec.LookPath("redis-server")
	p := Params{
		Start:         max(3*time.Second, d*15/100).Round(time.Second),
		End:           (d * 85 / 100).Round(time.Second),
		MaxFaults:     max(maxFaults, 1),
		RealRedis:     f.Gateway.Redis == scenario.RedisServer && lookErr == nil && f.Gateway.URL == "",
		Replicas:      f.Gateway.Replicas,
		SessionPrefix: names[0] + "-i0-",
		Sessions:      int(max(f.PeakUsers(), 1)),
	}
	if f.Gateway.Mode != "batch" {
		return p, f, fmt.Errorf("%s: the campaign checks batch delivery; gateway.mode is %q", path, f.Gateway.Mode)
	}
	return p, f, p.Validate()
}

// durationOverrides are the -set pairs that give every scenario of the file the duration d.
func durationOverrides(path string, d time.Duration) []string {
	if d <= 0 {
		return nil
	}
	f, err := scenario.Load(path, nil)
	if err != nil {
		return nil
	}
	var out []string
	for n := range f.Scenarios {
		out = append(out, fmt.Sprintf("scenarios.%s.duration=%s", n, d))
	}
	sort.Strings(out)
	return out
}

// Run draws the schedules, plays each on a fresh world, judges it and writes the reports. It
// returns the campaign even when schedules failed; an error means the campaign itself could not
// run (bad scenario, unwritable folder).
func Run(ctx context.Context, o Options) (*Campaign, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Bounds == (Bounds{}) {
		o.Bounds = DefaultBounds
	}
	if o.MaxFaults <= 0 {
		o.MaxFaults = 4
	}
	o.Parallel = max(o.Parallel, 1)
	if o.Schedules < 1 {
		return nil, errors.New("at least one schedule")
	}
	p, base, err := Plan(o.Scenario, o.Duration, o.MaxFaults)
	if err != nil {
		return nil, err
	}
	if len(o.Kinds) > 0 {
		p.Kinds = o.Kinds
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("-kinds: %w", err)
		}
	}
	// The retry-storm bound is the budget the scenario's gateway runs with (its settings, mapped as
	// the gateway maps them).
	o.Bounds.RetryBudget = base.Gateway.BatchConfig().RetryBudget
	for _, sub := range []string{"schedules", "runs", "failing"} {
		if err := os.MkdirAll(filepath.Join(o.Out, sub), 0o755); err != nil {
			return nil, fmt.Errorf("campaign folder: %w", err)
		}
	}
	raw, err := baseDocument(o.Scenario)
	if err != nil {
		return nil, err
	}
	c := &Campaign{Command: o.Command, Scenario: o.Scenario, Seed: o.Seed, Params: p, Bounds: o.Bounds,
		Parallel: o.Parallel, Kinds: KindsOf(p), Start: time.Now()}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format, args...)
		}
	}
	if !p.RealRedis {
		progress("note: no redis-server for this world (gateway.redis %q): Redis faults and gateway kills are not drawn\n", base.Gateway.Redis)
	}
	drawn := o.Schedules
	for _, i := range o.Only {
		drawn = max(drawn, i+1)
	}
	schedules, err := onlySchedules(Draw(o.Seed, drawn, p), o.Only)
	if err != nil {
		return nil, err
	}
	c.Entries = make([]Entry, len(schedules))
	work := make(chan int)
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Go(func() {
			for i := range work {
				mu.Lock()
				progress("%s", schedules[i].String())
				mu.Unlock()
				e := playSchedule(ctx, o, raw, schedules[i], log)
				mu.Lock()
				c.Entries[i] = e
				done++
				if e.Verdict.Pass {
					c.Passed++
				} else {
					c.Failed++
				}
				progress("[%d/%d] schedule %d (seed %d): %s in %s; passed %d, failed %d\n", done, len(schedules), e.Schedule.Index, e.Schedule.Seed,
					e.Verdict, e.Elapsed.Round(time.Second), c.Passed, c.Failed)
				for _, v := range e.Verdict.Violations {
					progress("        %s: %s\n", v.Invariant, v.Detail)
				}
				mu.Unlock()
			}
		})
	}
	for i := range schedules {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	c.End = time.Now()
	if ctx.Err() != nil {
		c.Cancelled = true
		var kept []Entry
		for _, e := range c.Entries {
			if e.File != "" {
				kept = append(kept, e)
			}
		}
		c.Skipped = len(c.Entries) - len(kept)
		c.Entries = kept
	}
	if err := c.Write(o.Out); err != nil {
		return c, err
	}
	return c, nil
}

// playSchedule writes a schedule's scenario file, runs it on a fresh world and judges it.
func playSchedule(ctx context.Context, o Options, raw map[string]any, s Schedule, log *slog.Logger) Entry {
	start := time.Now()
	name := fmt.Sprintf("%03d-seed-%d", s.Index, s.Seed)
	e := Entry{Schedule: s, File: filepath.Join(o.Out, "schedules", name+".yaml"), Dir: filepath.Join(o.Out, "runs", name)}
	for _, f := range s.Faults {
		e.Faults = append(e.Faults, f.Name+": "+Describe(f))
	}
	doc, err := ScenarioFile(raw, o.Scenario, o.Duration, o.Seed, s)
	if err == nil {
		err = os.WriteFile(e.File, doc, 0o644)
	}
	if err == nil {
		err = os.MkdirAll(e.Dir, 0o755)
	}
	if err != nil {
		e.Observation.RunError = "writing the schedule: " + err.Error()
		e.Verdict = Check(e.Observation, o.Bounds)
		e.Elapsed = time.Since(start)
		return e
	}
	obs, notes := runSchedule(ctx, o, e, s)
	e.Observation, e.Notes = obs, notes
	e.Verdict = Check(obs, o.Bounds)
	e.Elapsed = time.Since(start)
	if !e.Verdict.Pass {
		if err := os.WriteFile(filepath.Join(o.Out, "failing", name+".yaml"), doc, 0o644); err != nil {
			log.Warn("keeping the failing schedule", "err", err)
		}
	} else if !o.KeepLogs {
		_ = os.RemoveAll(filepath.Join(e.Dir, "logs"))
	}
	return e
}

// runSchedule runs one schedule's scenario file and gathers the observation from its outputs.
func runSchedule(ctx context.Context, o Options, e Entry, s Schedule) (Observation, []string) {
	obs := Observation{RefusedSessions: s.RefusedSessions()}
	lf, err := os.Create(filepath.Join(e.Dir, "simulator.log"))
	if err != nil {
		obs.RunError = err.Error()
		return obs, nil
	}
	defer lf.Close()
	res, err := run.Run(ctx, run.Options{Scenario: e.File, Out: e.Dir, BinDir: o.BinDir, NoNDJSON: true, DrainUntilSettled: true,
		Label: filepath.Base(e.Dir), Logger: slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		obs.RunError = err.Error()
	}
	if res == nil {
		return obs, nil
	}
	if oc, err := run.ReadOutcome(e.Dir); err != nil {
		obs.RunError = join(obs.RunError, "outcome: "+err.Error())
	} else {
		obs.Sessions, obs.Lost, obs.Stale, obs.GatewayMismatches = oc.Sessions, oc.Lost, oc.Stale, oc.GatewayMismatches
		obs.Mismatches, obs.GatewayAnswered, obs.DeadLettersError = oc.Mismatches, oc.GatewayAnswered, oc.DeadLettersError
		obs.Messages = messageObservation(oc.Messages)
		for _, d := range oc.DeadLetters {
			obs.DeadLetters = append(obs.DeadLetters, d.SessionID)
			if !slices.Contains(obs.DeadLetterReasons, d.Reason) && len(obs.DeadLetterReasons) < 3 {
				obs.DeadLetterReasons = append(obs.DeadLetterReasons, d.Reason)
			}
		}
		if oc.GatewayDied {
			obs.RunError = join(obs.RunError, "the gateway exited by itself during the run")
		}
	}
	tl, err := run.ReadFaultTimeline(e.Dir)
	if err != nil {
		obs.RunError = join(obs.RunError, err.Error())
	}
	var notes []string
	var windows []Interval
	for _, w := range tl.Faults {
		if w.Error != "" {
			notes = append(notes, w.Name+": "+w.Error)
			continue
		}
		windows = append(windows, Interval{From: w.Start, To: w.End})
		took := time.Duration(w.RecoveryMS * float64(time.Millisecond))
		if !w.Recovered {
			obs.Unrecovered = append(obs.Unrecovered, w.Name)
		}
		if took >= obs.Recovery {
			obs.Recovery, obs.Slowest = took, w.Name
		}
	}
	obs.Recoveries = len(windows)
	var points []RatePoint
	for _, p := range res.Report.Series {
		points = append(points, RatePoint{End: p.Time, PerSec: p.LaravelRequestsPerMinTotal() / 60})
	}
	obs.StormPeak, obs.Baseline = StormRates(points, res.Report.SeriesInterval.Std(), windows)
	var sends []SendsPoint
	for _, p := range res.Report.Series {
		if b := p.GatewayBatchSends; b != nil {
			sends = append(sends, SendsPoint{End: p.Time, Seconds: b.Seconds, First: b.First, Retries: b.Retries, Held: b.Held})
		}
	}
	obs.Retries = RetryRates(sends, res.Report.SeriesInterval.Std(), windows, o.Bounds.RetryBudget)
	return obs, notes
}

// ParseOnly reads -only: schedule numbers separated by commas ("" is none).
func ParseOnly(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a schedule number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// onlySchedules returns the schedules whose indexes only names (all when only is empty), in only's order.
func onlySchedules(all []Schedule, only []int) ([]Schedule, error) {
	if len(only) == 0 {
		return all, nil
	}
	out := make([]Schedule, 0, len(only))
	for _, i := range only {
		if i < 0 || i >= len(all) {
			return nil, fmt.Errorf("no schedule %d (%d drawn)", i, len(all))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// baseDocument reads the base scenario file as a YAML document.
func baseDocument(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// ScenarioFile renders a schedule as a scenario file: the base document with the schedule's
// seed, faults and outbox bound (and the duration override), under a comment that says how it
// was drawn and how to replay it.
func ScenarioFile(base map[string]any, basePath string, duration time.Duration, campaignSeed uint64, s Schedule) ([]byte, error) {
	doc := make(map[string]any, len(base)+3)
	for k, v := range base {
		doc[k] = v
	}
	baseName, _ := base["name"].(string)
	if baseName == "" {
		baseName = "chaos"
	}
	doc["name"] = fmt.Sprintf("%s-%03d-seed-%d", baseName, s.Index, s.Seed)
	doc["seed"] = s.Seed
	doc["faults"] = s.Faults
	if duration > 0 {
		scs, _ := base["scenarios"].(map[string]any)
		out := map[string]any{}
		for n, v := range scs {
			sc := map[string]any{}
			if m, ok := v.(map[string]any); ok {
				for k, x := range m {
					sc[k] = x
				}
			}
			sc["duration"] = duration.String()
			out[n] = sc
		}
		doc["scenarios"] = out
	}
	if s.OutboxMax > 0 || s.Silent() {
		gw := map[string]any{}
		if m, ok := base["gateway"].(map[string]any); ok {
			for k, v := range m {
				gw[k] = v
			}
		}
		var c config.Config
		if s.OutboxMax > 0 {
			gw[c.Key(&c.Batch.OutboxMax)] = s.OutboxMax // the gateway's own key (outboxMax)
		}
		if s.Silent() {
			gw[c.Key(&c.WATestKeepalive)] = SilenceKeepalive.String() // waTestKeepalive
		}
		doc["gateway"] = gw
	}
	body, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Chaos schedule %d of campaign seed %d (schedule seed %d), drawn from %s.\n"+
		"# Replay: bin/simulator run THIS_FILE -out DIR\n#\n# %s", s.Index, campaignSeed, s.Seed, basePath,
		replaceNewlines(s.String()))
	return append([]byte(header+"\n"), body...), nil
}

func replaceNewlines(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' && i+1 < len(s) {
			out = append(out, '#', ' ')
		}
	}
	return string(out)
}
