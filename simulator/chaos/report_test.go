package chaos

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"wagate/internal/goldentest"
	"wagate/reports/document"
	"wagate/simulator/scenario"
)

// sampleCampaign is a finished campaign of three schedules: one passed, one failed two invariants
// (with a fault not played as drawn), one passed under an outbox bound.
func sampleCampaign() *Campaign {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	laravel500 := scenario.Fault{Name: "laravel-500-1", At: scenario.Duration(3 * time.Second), Duration: scenario.Duration(2 * time.Second),
		Laravel: &scenario.LaravelFaults{ErrorRate: 1, ErrorStatus: 500}}
	drop := scenario.Fault{Name: "whatsapp-drop-1", At: scenario.Duration(5 * time.Second), Duration: scenario.Duration(time.Second),
		WhatsApp: &scenario.WhatsAppFault{Action: "drop"}}
	kill := scenario.Fault{Name: "gateway-kill-1", At: scenario.Duration(4 * time.Second), Process: &scenario.ProcessFault{Action: "gateway-kill"}}
	return &Campaign{
		Command:  "bin/simulator chaos -seed 7 -schedules 3 scenarios/chaos.yaml",
		Scenario: "scenarios/chaos.yaml",
		Seed:     7,
		Params:   Params{Start: 3 * time.Second, End: 17 * time.Second, MaxFaults: 3, RealRedis: true},
		Bounds:   DefaultBounds,
		Parallel: 2,
		Start:    start,
		End:      start.Add(95 * time.Second),
		Passed:   2,
		Failed:   1,
		Entries: []Entry{
			{Schedule: Schedule{Index: 0, Seed: 11, Faults: []scenario.Fault{laravel500}},
				File: "out/schedules/schedule-0.yaml", Dir: "out/runs/schedule-0", Faults: []string{"laravel-500-1 3s +2s laravel 500 x100%"},
				Observation: Observation{Recovery: 1234 * time.Millisecond, Slowest: "laravel-500-1", StormPeak: 3.25, Baseline: 1.5,
					Retries: RetryObservation{Intervals: 2, Peak: 1.5, First: 1.75, Limit: 2.35, Seconds: 2}},
				Verdict: Verdict{Pass: true}, Elapsed: 31 * time.Second},
			{Schedule: Schedule{Index: 1, Seed: 12, Faults: []scenario.Fault{drop, kill}},
				File: "out/schedules/schedule-1.yaml", Dir: "out/runs/schedule-1",
				Faults: []string{"whatsapp-drop-1 5s +1s whatsapp drop", "gateway-kill-1 4s +0s process gateway-kill"},
				Notes:  []string{"gateway-kill-1: the gateway had already exited"},
				Observation: Observation{Recovery: 41 * time.Second, Slowest: "gateway-kill-1", StormPeak: 40, Baseline: 2,
					Retries: RetryObservation{Intervals: 3, Peak: 0.5, First: 20, Limit: 6, Seconds: 2}},
				Verdict: Verdict{Violations: []Violation{{Invariant: InvRecovery, Detail: "gateway-kill-1 recovered in 41s > 30s"},
					{Invariant: InvFaultLoad, Detail: "40.0 req/s during faults > max(20, 5 x 2.0)"}}},
				Elapsed: 52 * time.Second},
			{Schedule: Schedule{Index: 2, Seed: 13, OutboxMax: 20, Faults: []scenario.Fault{laravel500}},
				File: "out/schedules/schedule-2.yaml", Dir: "out/runs/schedule-2", Faults: []string{"laravel-500-1 3s +2s laravel 500 x100%"},
				Observation: Observation{Recovery: 2 * time.Second, Slowest: "laravel-500-1", StormPeak: 4, Baseline: 1},
				Verdict:     Verdict{Pass: true}, Elapsed: 30 * time.Second},
		},
	}
}

func TestTheCampaignReportIsPinnedByGoldenFiles(t *testing.T) {
	c := sampleCampaign()
	goldentest.Check(t, "report.golden.md", []byte(c.Markdown()))
	var h bytes.Buffer
	if err := c.HTML(&h); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "report.golden.html", h.Bytes())
}

func TestTheCampaignOutlineHasFailuresAndNotesOnlyWhenThereAreAny(t *testing.T) {
	passing := func() *Campaign {
		c := sampleCampaign()
		c.Entries = []Entry{c.Entries[0], c.Entries[2]}
		c.Passed, c.Failed = 2, 0
		return c
	}
	cases := []struct {
		name     string
		campaign *Campaign
		want     []string
	}{
		{"every schedule passed", passing(), []string{"By fault kind", "Schedules", "Slowest recoveries"}},
		{"a schedule failed, with a fault not played as drawn", sampleCampaign(),
			[]string{"By fault kind", "Schedules", "Failures", "  Schedule 1 (seed 12)", "Slowest recoveries", "Faults not played as drawn"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, s := range c.campaign.Outline().Sections {
				got = append(got, s.Heading)
				for _, sub := range s.Sections {
					got = append(got, "  "+sub.Heading)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("sections %q, want %q", got, c.want)
			}
		})
	}
	if intro := passing().Outline().Intro; !reflect.DeepEqual(intro[len(intro)-1], document.Block(document.Text("**PASS**: 2 passed, 0 failed."))) {
		t.Errorf("a passing campaign's outcome line: %v", intro)
	}
	c := passing()
	c.Cancelled, c.Skipped = true, 3
	if intro := c.Outline().Intro; !reflect.DeepEqual(intro[len(intro)-1], document.Block(document.Text("**FAIL**: 2 passed, 0 failed, 3 not run (cancelled)."))) {
		t.Errorf("a cancelled campaign's outcome line: %v", intro)
	}
}
