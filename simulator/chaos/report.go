package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"wagate/gateway/delivery/retrybudget"
	"wagate/reports/document"
	"wagate/simulator/scenario"
)

// Report files a campaign writes in its folder.
const (
	ReportJSON     = "report.json"
	ReportMarkdown = "report.md"
	ReportHTML     = "report.html"
)

// Write saves report.json, report.md and report.html in dir.
func (c *Campaign) Write(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportJSON), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportMarkdown), []byte(c.Markdown()), 0o644); err != nil {
		return err
	}
	var h bytes.Buffer
	if err := c.HTML(&h); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportHTML), h.Bytes(), 0o644)
}

// KindRow counts the schedules a fault kind took part in and how many of them failed.
type KindRow struct {
	Kind            string
	Schedules, Fail int
}

// ByKind counts schedules and failures per fault kind (a schedule with several kinds counts for
// each), in the vocabulary's order.
func (c *Campaign) ByKind() []KindRow {
	rows := map[string]*KindRow{}
	for _, e := range c.Entries {
		seen := map[string]bool{}
		for _, f := range e.Schedule.Faults {
			k := vocabularyKind(f)
			if seen[k] {
				continue
			}
			seen[k] = true
			if rows[k] == nil {
				rows[k] = &KindRow{Kind: k}
			}
			rows[k].Schedules++
			if !e.Verdict.Pass {
				rows[k].Fail++
			}
		}
		if e.Schedule.OutboxMax > 0 {
			if rows["outbox-bound"] == nil {
				rows["outbox-bound"] = &KindRow{Kind: "outbox-bound"}
			}
			rows["outbox-bound"].Schedules++
			if !e.Verdict.Pass {
				rows["outbox-bound"].Fail++
			}
		}
	}
	var out []KindRow
	for _, k := range append(Kinds(true), "outbox-bound") {
		if r := rows[k]; r != nil {
			out = append(out, *r)
		}
	}
	return out
}

// vocabularyKind maps a drawn fault back to its vocabulary kind.
func vocabularyKind(f scenario.Fault) string {
	n := describeKind(f)
	switch {
	case n == "gateway-term":
		return "gateway-term-in-failure"
	case strings.HasPrefix(n, "laravel-") && len(n) == len("laravel-000"):
		switch n[len("laravel-")] {
		case '3':
			return "laravel-3xx"
		case '4':
			if n == "laravel-429" {
				return n
			}
			return "laravel-4xx"
		case '5':
			return "laravel-5xx"
		}
	}
	return n
}

// Slowest returns the n schedules with the slowest recovery, slowest first.
func (c *Campaign) Slowest(n int) []Entry {
	out := append([]Entry(nil), c.Entries...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Observation.Recovery > out[j].Observation.Recovery })
	return out[:min(n, len(out))]
}

// Markdown renders report.md: the campaign's Outline laid out as Markdown.
func (c *Campaign) Markdown() string { return document.Markdown(c.Outline()) }

// HTML renders report.html: the campaign's Outline laid out as a page.
func (c *Campaign) HTML(w io.Writer) error { return document.WriteHTML(w, c.Outline()) }

// Outline is the campaign report's content, in order, for report.md and report.html alike: the
// campaign's parameters and verdict, the schedules and failures per fault kind, every schedule with
// its faults and verdict, each failure with its replay command, the slowest recoveries, and the
// faults not played as drawn.
func (c *Campaign) Outline() document.Document {
	var about []string
	if c.Command != "" {
		about = append(about, fmt.Sprintf("Command: `%s`", c.Command))
	}
	about = append(about,
		fmt.Sprintf("Scenario: `%s`; faults between %s and %s of the users' time, up to %d per schedule; %d world(s) at once; real redis-server: %v.",
			c.Scenario, c.Params.Start, c.Params.End, c.Params.MaxFaults, c.Parallel, c.Params.RealRedis),
		fmt.Sprintf("Bounds: recovery <= %s; the gateway's retries during faults within its retry budget (%s); Laravel requests/s during faults <= max(%.0f, %.0f x outside faults).",
			c.Bounds.Recovery, budgetText(c.Bounds.RetryBudget), c.Bounds.StormFloor, c.Bounds.StormFactor),
		fmt.Sprintf("Started %s, took %s: %s per schedule.", c.Start.UTC().Format(time.RFC3339), c.Elapsed().Round(time.Second), c.PerSchedule().Round(100*time.Millisecond)))
	verdict := "PASS"
	if c.Failed > 0 || c.Cancelled {
		verdict = "FAIL"
	}
	outcome := fmt.Sprintf("**%s**: %d passed, %d failed", verdict, c.Passed, c.Failed)
	if c.Cancelled {
		outcome += fmt.Sprintf(", %d not run (cancelled)", c.Skipped)
	}
	d := document.Document{
		Title: fmt.Sprintf("Chaos campaign: seed %d, %d schedules", c.Seed, len(c.Entries)),
		Intro: []document.Block{document.Paragraph{Lines: about}, document.Text(outcome + ".")},
	}
	kinds := document.Table{Header: []string{"kind", "schedules", "failed"}, Right: []bool{false, true, true}}
	for _, r := range c.ByKind() {
		kinds.Rows = append(kinds.Rows, []string{r.Kind, strconv.Itoa(r.Schedules), strconv.Itoa(r.Fail)})
	}
	schedules := document.Table{Header: []string{"#", "seed", "faults", "verdict", "slowest recovery", "retries/s in faults (budget)", "Laravel req/s in faults (outside)", "time"},
		Right: []bool{true, true, false, false, true, true, true, true}}
	for _, e := range c.Entries {
		var names []string
		if e.Schedule.OutboxMax > 0 {
			names = append(names, fmt.Sprintf("outbox-bound %d", e.Schedule.OutboxMax))
		}
		for _, f := range e.Schedule.Faults {
			names = append(names, f.Name)
		}
		schedules.Rows = append(schedules.Rows, []string{strconv.Itoa(e.Schedule.Index), strconv.FormatUint(e.Schedule.Seed, 10), strings.Join(names, ", "),
			e.Verdict.String(), e.Observation.Recovery.Round(100 * time.Millisecond).String(),
			fmt.Sprintf("%.1f (%.1f)", e.Observation.Retries.Peak, e.Observation.Retries.Limit),
			fmt.Sprintf("%.1f (%.1f)", e.Observation.StormPeak, e.Observation.Baseline), e.Elapsed.Round(time.Second).String()})
	}
	d.Sections = append(d.Sections,
		document.Section{ID: "kinds", Heading: "By fault kind", Nav: "By fault kind", Blocks: []document.Block{kinds}},
		document.Section{ID: "schedules", Heading: "Schedules", Nav: "Schedules", Blocks: []document.Block{schedules}})
	if c.Failed > 0 {
		failures := document.Section{ID: "failures", Heading: "Failures", Nav: "Failures"}
		for _, e := range c.Entries {
			if !e.Verdict.Pass {
				failures.Sections = append(failures.Sections, failureSection(e))
			}
		}
		d.Sections = append(d.Sections, failures)
	}
	slowest := document.Table{Header: []string{"#", "seed", "slowest recovery", "after", "the schedule's faults"}, Right: []bool{true, true, true}}
	for _, e := range c.Slowest(5) {
		slowest.Rows = append(slowest.Rows, []string{strconv.Itoa(e.Schedule.Index), strconv.FormatUint(e.Schedule.Seed, 10),
			e.Observation.Recovery.Round(100 * time.Millisecond).String(), e.Observation.Slowest, strings.Join(e.Faults, "; ")})
	}
	d.Sections = append(d.Sections, document.Section{ID: "slowest", Heading: "Slowest recoveries", Nav: "Slowest recoveries", Blocks: []document.Block{slowest}})
	var notes document.List
	for _, e := range c.Entries {
		for _, n := range e.Notes {
			notes = append(notes, fmt.Sprintf("schedule %d: %s", e.Schedule.Index, n))
		}
	}
	if len(notes) > 0 {
		d.Sections = append(d.Sections, document.Section{ID: "not-played", Heading: "Faults not played as drawn", Nav: "Faults not played as drawn",
			Blocks: []document.Block{notes}})
	}
	return d
}

// failureSection is a failed schedule: how to replay it, its faults and the invariants it broke.
func failureSection(e Entry) document.Section {
	s := document.Section{Heading: fmt.Sprintf("Schedule %d (seed %d)", e.Schedule.Index, e.Schedule.Seed), Blocks: []document.Block{
		document.Text(fmt.Sprintf("Replay: `bin/simulator run %s -out /tmp/replay`; run folder `%s`.",
			filepath.Join(filepath.Dir(filepath.Dir(e.File)), "failing", filepath.Base(e.File)), e.Dir)),
	}}
	if len(e.Faults) > 0 {
		s.Blocks = append(s.Blocks, document.List(e.Faults))
	}
	var violations document.List
	for _, v := range e.Verdict.Violations {
		violations = append(violations, fmt.Sprintf("**%s**: %s", v.Invariant, v.Detail))
	}
	if len(violations) > 0 {
		s.Blocks = append(s.Blocks, violations)
	}
	return s
}

// budgetText says a retry budget's bound: "20% of first attempts + 1/s, burst 2".
func budgetText(b retrybudget.Config) string {
	b = b.Filled()
	return fmt.Sprintf("%d%% of first attempts + %d/s, burst %d", b.Percent, b.MinPerSecond, b.Burst)
}
