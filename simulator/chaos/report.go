package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// Markdown renders report.md: the campaign's figures, the table of every schedule with its faults
// and verdict, the failures with their replay command, and the slowest recoveries.
func (c *Campaign) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos campaign: seed %d, %d schedules\n\n", c.Seed, len(c.Entries))
	if c.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`  \n", c.Command)
	}
	fmt.Fprintf(&b, "Scenario: `%s`; faults between %s and %s of the users' time, up to %d per schedule; %d world(s) at once; real redis-server: %v.  \n",
		c.Scenario, c.Params.Start, c.Params.End, c.Params.MaxFaults, c.Parallel, c.Params.RealRedis)
	fmt.Fprintf(&b, "Bounds: recovery <= %s; Laravel requests/s during faults <= max(%.0f, %.0f x outside faults).  \n", c.Bounds.Recovery, c.Bounds.StormFloor, c.Bounds.StormFactor)
	fmt.Fprintf(&b, "Started %s, took %s: %s per schedule.\n\n", c.Start.UTC().Format(time.RFC3339), c.Elapsed().Round(time.Second), c.PerSchedule().Round(100*time.Millisecond))
	verdict := "PASS"
	if c.Failed > 0 || c.Cancelled {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "**%s**: %d passed, %d failed", verdict, c.Passed, c.Failed)
	if c.Cancelled {
		fmt.Fprintf(&b, ", %d not run (cancelled)", c.Skipped)
	}
	b.WriteString(".\n\n## By fault kind\n\n| kind | schedules | failed |\n|---|--:|--:|\n")
	for _, r := range c.ByKind() {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", r.Kind, r.Schedules, r.Fail)
	}
	b.WriteString("\n## Schedules\n\n| # | seed | faults | verdict | slowest recovery | Laravel req/s in faults (outside) | time |\n|--:|--:|---|---|--:|--:|--:|\n")
	for _, e := range c.Entries {
		var names []string
		if e.Schedule.OutboxMax > 0 {
			names = append(names, fmt.Sprintf("outbox-bound %d", e.Schedule.OutboxMax))
		}
		for _, f := range e.Schedule.Faults {
			names = append(names, f.Name)
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %.1f (%.1f) | %s |\n", e.Schedule.Index, e.Schedule.Seed, strings.Join(names, ", "),
			e.Verdict, e.Observation.Recovery.Round(100*time.Millisecond), e.Observation.StormPeak, e.Observation.Baseline, e.Elapsed.Round(time.Second))
	}
	if c.Failed > 0 {
		b.WriteString("\n## Failures\n")
		for _, e := range c.Entries {
			if e.Verdict.Pass {
				continue
			}
			fmt.Fprintf(&b, "\n### Schedule %d (seed %d)\n\nReplay: `bin/simulator run %s -out /tmp/replay`; run folder `%s`.\n\n", e.Schedule.Index, e.Schedule.Seed,
				filepath.Join(filepath.Dir(filepath.Dir(e.File)), "failing", filepath.Base(e.File)), e.Dir)
			for _, f := range e.Faults {
				fmt.Fprintf(&b, "- %s\n", f)
			}
			b.WriteString("\n")
			for _, v := range e.Verdict.Violations {
				fmt.Fprintf(&b, "- **%s**: %s\n", v.Invariant, v.Detail)
			}
		}
	}
	b.WriteString("\n## Slowest recoveries\n\n| # | seed | slowest recovery | after | the schedule's faults |\n|--:|--:|--:|---|---|\n")
	for _, e := range c.Slowest(5) {
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s |\n", e.Schedule.Index, e.Schedule.Seed, e.Observation.Recovery.Round(100*time.Millisecond),
			e.Observation.Slowest, strings.Join(e.Faults, "; "))
	}
	var notes []string
	for _, e := range c.Entries {
		for _, n := range e.Notes {
			notes = append(notes, fmt.Sprintf("- schedule %d: %s", e.Schedule.Index, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Faults not played as drawn\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

var htmlPage = template.Must(template.New("chaos").Funcs(template.FuncMap{
	"round": func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) },
	"secs":  func(d time.Duration) time.Duration { return d.Round(time.Second) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chaos campaign seed {{.Seed}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
.pass{color:#060}.fail{color:#a00;font-weight:bold}td.n{text-align:right}</style></head><body>
<h1>Chaos campaign: seed {{.Seed}}, {{len .Entries}} schedules</h1>
<p>Scenario <code>{{.Scenario}}</code>; faults between {{.Params.Start}} and {{.Params.End}}, up to {{.Params.MaxFaults}} per schedule; real redis-server: {{.Params.RealRedis}}.
Took {{secs .Elapsed}} ({{round .PerSchedule}} per schedule, {{.Parallel}} world(s) at once).</p>
<p class="{{if .Failed}}fail{{else}}pass{{end}}">{{.Passed}} passed, {{.Failed}} failed</p>
<h2>By fault kind</h2>
<table><tr><th>kind</th><th>schedules</th><th>failed</th></tr>
{{range .ByKind}}<tr><td>{{.Kind}}</td><td class="n">{{.Schedules}}</td><td class="n">{{.Fail}}</td></tr>
{{end}}</table>
<h2>Schedules</h2>
<table><tr><th>#</th><th>seed</th><th>faults</th><th>verdict</th><th>slowest recovery</th><th>Laravel req/s in faults (outside)</th><th>time</th></tr>
{{range .Entries}}<tr><td class="n">{{.Schedule.Index}}</td><td class="n">{{.Schedule.Seed}}</td>
<td>{{if .Schedule.OutboxMax}}outbox bound {{.Schedule.OutboxMax}}<br>{{end}}{{range .Faults}}{{.}}<br>{{end}}{{range .Notes}}<i>{{.}}</i><br>{{end}}</td>
<td class="{{if .Verdict.Pass}}pass{{else}}fail{{end}}">{{.Verdict}}{{range .Verdict.Violations}}<br>{{.Invariant}}: {{.Detail}}{{end}}</td>
<td class="n">{{round .Observation.Recovery}}</td><td class="n">{{printf "%.1f" .Observation.StormPeak}} ({{printf "%.1f" .Observation.Baseline}})</td><td class="n">{{secs .Elapsed}}</td></tr>
{{end}}</table>
</body></html>
`))

// HTML renders report.html.
func (c *Campaign) HTML(w *bytes.Buffer) error { return htmlPage.Execute(w, c) }
