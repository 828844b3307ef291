package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/benchmarks"
	"wagate/internal/proctest"
	"wagate/reports"
	"wagate/simulator/k6/testrun"
	"wagate/simulator/metrics"
)

// TestK6SmokeScriptDrivesTheWorld runs scenarios/k6/smoke.js as `simulator run` does: the world
// of scenarios/smoke.yaml (the real gateway binary, fakelaravel, fakewa) started for the script,
// five VUs pairing, messaging, receiving their customers' messages, dropping and logging out
// through k6/x/wagate, and the ground truth (sessions and messages) recorded as metrics after
// teardown.
func TestK6SmokeScriptDrivesTheWorld(t *testing.T) {
	bins := proctest.Binaries(t, "gateway", "fakelaravel")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	script := filepath.Join("..", "..", "..", "scenarios", "k6", "smoke.js")
	code := run(ctx, []string{"run", script, "-bin", filepath.Dir(bins["gateway"]), "--report-dir", dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\ngateway warnings:\n%s", code, stdout.String(), stderr.String(), gatewayWarnings(t, dir))
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s metrics.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for metric, want := range map[string]float64{"wagate_pairings": 5, "ground_truth_sessions": 5, "lost_updates": 0, "stale_overwrites": 0, "iterations": 5,
		// The customers' messages (two per session) reached Laravel once each, judged as a YAML run judges them.
		"wagate_messages_written": 10, "messages_written": 10, "messages_lost": 0, "messages_duplicated": 0} {
		m, ok := s.Metrics[metric]
		if !ok {
			t.Errorf("summary.json has no %s", metric)
			continue
		}
		if got := m.Values["count"]; got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if m := s.Metrics["http_reqs"]; m.Values["count"] < 5 {
		t.Errorf("the gateway API calls were not measured: http_reqs %v", m.Values)
	}
}

// gatewayWarnings returns the gateway log's warnings and errors of a run's report dir, without
// whatsmeow's own, so a failed run says what the gateway saw.
func gatewayWarnings(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "logs", "gateway.log"))
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) && !strings.Contains(line, "module=whatsmeow") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestK6ScenarioScriptsLoad checks every script in scenarios/k6 bundles, evaluates its init
// context, and has valid options, scenarios and thresholds (with k6/x/wagate's metrics), without
// starting a world.
func TestK6ScenarioScriptsLoad(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("..", "..", "..", "scenarios", "k6", "*.js"))
	if err != nil || len(scripts) < 4 {
		t.Fatalf("scenarios/k6 scripts: %v %v", scripts, err)
	}
	w := &worldFlags{}
	for _, script := range scripts {
		t.Run(filepath.Base(script), func(t *testing.T) {
			ext, stop, err := w.extensions(script, "", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			var stderr bytes.Buffer
			res := testrun.Check(context.Background(), testrun.Config{Script: script, Stderr: &stderr,
				Extensions: ext.modules, ExtensionMetrics: ext.metrics})
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s", res.ExitCode, stderr.String())
			}
			if _, ok := res.Options.Ext["wagate"]; !ok {
				t.Errorf("%s names no world in options.ext.wagate", script)
			}
		})
	}
}

// TestK6ScriptsRunAsBenchEntries runs a script with the argument list the bench orchestrator
// passes to `simulator run` (-out DIR -label L ... SCRIPT): report.json lands in DIR with the label,
// so bench matrices accept .js entries.
func TestK6ScriptsRunAsBenchEntries(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "tiny.js")
	src := `import { check } from "k6";
export const options = { iterations: 2, thresholds: { checks: ["rate==1"] } };
export default function () { check(__ITER, { "ran": () => true }); }`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), benchmarks.Args(script, out, "tiny-label", nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	rep, err := reports.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Label != "tiny-label" || !rep.ThresholdsOK() || rep.Metrics["iterations"].Values["count"] != 2 {
		t.Errorf("report.json: label %q, thresholds %+v, iterations %v", rep.Label, rep.Thresholds, rep.Metrics["iterations"].Values)
	}
}

// TestWagateWithoutAWorldNamesTheFlag runs a script that imports k6/x/wagate with no world: the
// import works (the init context needs no world), the first call throws naming --world.
func TestWagateWithoutAWorldNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "noworld.js")
	src := `import wagate from "k6/x/wagate";
export const options = { iterations: 1 };
export default function () { wagate.startSession(); }`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", script, "--no-summary"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d (an iteration's exception is not a run failure)\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--world") {
		t.Errorf("the error does not name --world:\n%s", stderr.String())
	}
}

// TestEveryAccountOfTheScriptsLibIsPlayedOnceWhateverTheVUNumbers runs lib/laravel-app.js's
// accountOf in a test with several scenarios, as seed-batch-100.js has (accounts and their
// pollers): each of the 20 accounts is played by exactly one VU of its scenario, each has the
// same number of pollers (3, over both of their iterations, which last a while as the pollers'
// do), though VUs are numbered across
// scenarios in the order their init ends (with exec.vu.idInTest % users, two of the seed's
// accounts were one session and another was never started).
func TestEveryAccountOfTheScriptsLibIsPlayedOnceWhateverTheVUNumbers(t *testing.T) {
	lib, err := filepath.Abs(filepath.Join("..", "..", "..", "scenarios", "k6", "lib", "laravel-app.js"))
	if err != nil {
		t.Fatal(err)
	}
	thresholds := []string{}
	for n := range 20 {
		thresholds = append(thresholds, fmt.Sprintf(`"played{n:%d}": ["count==1"], "polled{n:%d}": ["count==6"]`, n, n))
	}
	src := fmt.Sprintf(`import { Counter } from "k6/metrics";
import { sleep } from "k6";
import { accountOf } from %q;
const played = new Counter("played");
const polled = new Counter("polled");
const b = { users: 20 };
export const options = {
  scenarios: {
    accounts: { executor: "per-vu-iterations", vus: 20, iterations: 1, exec: "account" },
    pollers: { executor: "per-vu-iterations", vus: 60, iterations: 2, exec: "poll" },
    others: { executor: "per-vu-iterations", vus: 100, iterations: 1, exec: "idle" },
  },
  thresholds: { played: ["count==20"], %s },
};
export function account() { played.add(1, { n: String(accountOf(b)) }); }
export function poll() { polled.add(1, { n: String(accountOf(b)) }); sleep(0.2); }
export function idle() {}`, lib, strings.Join(thresholds, ", "))
	script := filepath.Join(t.TempDir(), "accounts.js")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", script}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: an account was played twice or never\n%s\n%s", code, stdout.String(), stderr.String())
	}
}
