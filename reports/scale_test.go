package reports

import (
	"strings"
	"testing"
)

// scaleSeries is a run of `make bench-scale` in series points: the baseline (no session), the
// arrivals, the plateau with every session connected, the fakewa restart's dip and the end.
func scaleSeries(connectedEnd int) *Report {
	const kib = 1024
	// A point the Laravel app polled in has API latencies; one in the quiet window has none.
	point := func(conn, goroutines int, rssKiB int64, cpu float64) SeriesPoint {
		return SeriesPoint{SessionsByState: map[string]int{"connected": conn}, Goroutines: goroutines, GatewayRSSBytes: rssKiB * kib, GatewayCPUPercent: cpu,
			APILatency: Percentiles{P50: 0.4, P95: 0.9, P99: 1.5}, ActiveUsers: 10000}
	}
	drain := func(p SeriesPoint) SeriesPoint { p.APILatency, p.ActiveUsers = Percentiles{}, 0; return p }
	quiet := func(p SeriesPoint) SeriesPoint { p.APILatency = Percentiles{}; return p }
	return &Report{
		Series: []SeriesPoint{
			point(0, 40, 30_000, 1),                     // baseline
			point(4000, 40+4*4000, 30_000+4000*140, 60), // pairing
			point(9995, 40+4*9995, 30_000+9995*140, 60),
			point(10000, 40+4*10000, 30_000+10000*140, 9), // plateau
			point(10000, 40+4*10000, 30_000+10000*141, 8),
			quiet(point(10000, 40+4*10000, 30_000+10000*141, 7)), // the quiet window
			quiet(point(10000, 40+4*10000, 30_000+10000*141, 5)),
			quiet(point(9999, 40+4*9999, 30_000+10000*141, 6)),
			point(10000, 40+4*10000, 30_000+10000*141, 7),
			point(2000, 40+4*2000, 30_000+10000*141, 80), // the restart
			point(connectedEnd, 40+4*connectedEnd, 30_000+10000*141, 30),
			// The drain and the ground truth's reads: no user, no request recorded, not idle.
			drain(point(connectedEnd, 40+4*connectedEnd, 30_000+10000*141, 1)),
			drain(point(connectedEnd, 40+4*connectedEnd, 30_000+10000*141, 2)),
		},
		Metrics: map[string]Metric{
			MetricFaultRecoveryTime:     {Type: Trend, Values: map[string]float64{"max": 12_500}},
			MetricFaultSessionsBackTime: {Type: Trend, Values: map[string]float64{"max": 2_100}},
		},
	}
}

// What the scale rows read of a run: the peak and the baseline, the plateau's CPU per 1000
// sessions, the end, the restart's recovery.
func TestTheScaleFiguresOfARun(t *testing.T) {
	r := scaleSeries(10000)
	for _, tc := range []struct {
		fig  Figure
		want float64
	}{
		{FigSessionsPeak, 10000},
		{FigSessionsAtEnd, 10000},
		{FigRecoveryMax, 12_500},
		{FigSessionsBackMax, 2_100},         // online at WhatsApp; the outbox caught up later
		{FigRSSPerSessionOverBaseline, 140}, // the first point with the peak count
		{FigGoroutinesPerSession, 4},
		// The plateau's polled points (9995 is within 0.1% of the peak too): CPU 60, 9, 8, 7 ->
		// the median's upper middle, 9% of a core = 0.9 s per 10 s for 10,000 sessions.
		{FigPlateauCPUPer1000, 0.09},
		// Its points without an API request: CPU 7, 5, 6 -> 6% of a core.
		{FigIdleCPUPer1000, 0.06},
	} {
		got, ok := tc.fig.Of(r)
		if !ok || got != tc.want {
			t.Errorf("%s = %v (%v), want %v", tc.fig.Name, got, ok, tc.want)
		}
	}
	if _, ok := FigRSSPerSessionOverBaseline.Of(&Report{Series: []SeriesPoint{{}, {}}}); ok {
		t.Error("a run where no session connected has no per-session figure")
	}
	// A run whose Laravel app never stopped polling on the plateau has no idle figure, and one
	// that polled nothing there has no light-polling figure; neither borrows the other's points.
	polled := scaleSeries(10000)
	for i := range polled.Series {
		polled.Series[i].APILatency.P50 = 0.4
	}
	if got, ok := FigIdleCPUPer1000.Of(polled); ok {
		t.Errorf("idle CPU measured without a quiet interval: %v", got)
	}
	idle := scaleSeries(10000)
	for i := range idle.Series {
		idle.Series[i].APILatency = Percentiles{}
	}
	if got, ok := FigPlateauCPUPer1000.Of(idle); ok {
		t.Errorf("light-polling CPU measured without a polled interval: %v", got)
	}
}

// The scale rows appear only in a bench with `make bench-scale`'s entry, each checked there.
func TestScaleTargetsAreCheckedOnTheBenchScaleEntry(t *testing.T) {
	if got := len(sampleBench(t).Targets()); got != len(DesignTargets) {
		t.Fatalf("make bench: %d target rows, want the %d design targets only", got, len(DesignTargets))
	}
	for _, tc := range []struct {
		name     string
		endConn  int
		wantFail string
	}{
		{"every session back", 10000, ""},
		{"some never came back", 9990, "10,000 sessions: all connected at the end, after the restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := scaleSeries(tc.endConn)
			r.Configuration.Gateway.Settings = map[string]string{GatewayModeKey: ModeBatch}
			res := &Results{Entries: []Entry{{BenchEntry: BenchEntry{Name: SessionScaleEntry}, Reports: []*Report{r}}}}
			rows := res.Targets()
			if len(rows) != len(DesignTargets)+len(ScaleTargets) {
				t.Fatalf("%d rows, want %d", len(rows), len(DesignTargets)+len(ScaleTargets))
			}
			for _, row := range rows[:len(DesignTargets)] {
				if row.Where == SessionScaleEntry {
					t.Errorf("design target %q measured on make bench-scale's entry: %s", row.Name, row.Measured)
				}
			}
			for _, row := range rows[len(DesignTargets):] {
				want := "pass"
				if row.Name == tc.wantFail {
					want = "FAIL"
				}
				if row.Status != want || row.Where != SessionScaleEntry {
					t.Errorf("%s: %s (%s) at %q, want %s", row.Name, row.Status, row.Measured, row.Where, want)
				}
				// The idle CPU's row shows the CPU with light polling beside its value.
				if row.Name == "10,000 sessions: idle gateway CPU with all connected and no polling, per 1000 sessions" {
					if want := FigIdleCPUPer1000.Format(0.06) + "; " + FigPlateauCPUPer1000.Name + ": " + FigPlateauCPUPer1000.Format(0.09); row.Measured != want {
						t.Errorf("%s: measured %q, want %q", row.Name, row.Measured, want)
					}
				}
				// The restart's row shows, beside the whole recovery, when the sessions were online
				// at WhatsApp again.
				if row.Name == "10,000 sessions: 90% back after a fakewa restart" {
					if want := FigRecoveryMax.Format(12_500) + "; online at WhatsApp again: " + FigSessionsBackMax.Format(2_100); row.Measured != want {
						t.Errorf("%s: measured %q, want %q", row.Name, row.Measured, want)
					}
				}
			}
		})
	}
}

// A gateway that did not have its core (its threads waited for a CPU more than they ran) measured
// the machine: its latency rows say they are not valid, and the entry's lines say how long it
// waited.
func TestALatencyTargetSaysWhenTheGatewayDidNotHaveItsCore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		core     *CoreWait
		wantNote bool
	}{
		{"no accounting (an older report)", nil, false},
		{"its own core", &CoreWait{Process: "gateway", RunSeconds: 60, WaitSeconds: 2, Valid: true}, false},
		{"a shared core", &CoreWait{Process: "gateway", RunSeconds: 20, WaitSeconds: 94, Reason: "the gateway's threads waited for a CPU 82% of the time they could run (limit 50%): other processes shared its core"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := sampleBench(t)
			scale := &res.Entries[len(res.Entries)-1]
			scale.Reports[0].Environment.GatewayCore = tc.core
			for _, target := range res.Targets() {
				spec := specNamed(t, target.Name)
				got := strings.Contains(target.Measured, "not valid: the gateway's threads waited")
				if want := tc.wantNote && spec.Latency && target.Measured != ""; got != want {
					t.Errorf("%s: measured %q, note %v, want %v", target.Name, target.Measured, got, want)
				}
			}
			lines := strings.Join(cpuLines(scale.Reports[0].Environment), "\n")
			if tc.core != nil && !strings.Contains(lines, "gateway's threads ran") {
				t.Errorf("the entry's lines do not say how long the gateway waited: %q", lines)
			}
		})
	}
}

// The scale rows of a gateway that did not have its core say so beside their values.
func TestScaleRowsSayWhenTheGatewayDidNotHaveItsCore(t *testing.T) {
	r := scaleSeries(10000)
	r.Environment.GatewayCore = &CoreWait{Process: "gateway", RunSeconds: 20, WaitSeconds: 94, Reason: "the gateway's threads waited"}
	res := &Results{Entries: []Entry{{BenchEntry: BenchEntry{Name: SessionScaleEntry}, Reports: []*Report{r}}}}
	for _, row := range res.Targets()[len(DesignTargets):] {
		if !strings.HasSuffix(row.Measured, "(not valid: the gateway's threads waited)") {
			t.Errorf("%s: measured %q", row.Name, row.Measured)
		}
	}
}
