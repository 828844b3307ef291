package testrun

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/k6/options"
	"wagate/simulator/metrics"
)

// outcome is what a conformance script produced.
type outcome struct {
	code           int
	summary        metrics.Summary
	stdout, stderr string
	dir            string
}

// runScript runs testdata/conformance/NAME against a fresh stand-in server, with BASE (HTTP) and
// TLS_ADDR (the HTTPS listener) in __ENV, and reads back the summary.json it wrote.
func runScript(t *testing.T, name string, adjust func(*Config)) outcome {
	t.Helper()
	srv := newStandIn(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cfg := Config{
		Script: filepath.Join("testdata", "conformance", name),
		Env:    map[string]string{"BASE": srv.http.URL, "TLS_ADDR": strings.TrimPrefix(srv.https.URL, "https://")},
		OutDir: dir, Stdout: &stdout, Stderr: &stderr,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := Run(ctx, cfg)
	o := outcome{code: res.ExitCode, stdout: stdout.String(), stderr: stderr.String(), dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "summary.json")); err == nil {
		if err := json.Unmarshal(b, &o.summary); err != nil {
			t.Fatalf("summary.json: %v", err)
		}
	}
	return o
}

func (o outcome) wantExit(t *testing.T, code int) {
	t.Helper()
	if o.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
}

// wantThresholds asserts every threshold in summary.json has the given outcome.
func (o outcome) wantThresholds(t *testing.T, ok bool) {
	t.Helper()
	n := 0
	for name, m := range o.summary.Metrics {
		for expr, st := range m.Thresholds {
			n++
			if st.OK != ok {
				t.Errorf("threshold %s %s: ok=%v, want %v (values %v)", name, expr, st.OK, ok, m.Values)
			}
		}
	}
	if n == 0 {
		t.Fatalf("summary.json has no thresholds")
	}
}

// wantEachRootCheckPassed asserts every check at the root group passed passes times, none failed.
func (o outcome) wantEachRootCheckPassed(t *testing.T, passes int64) {
	t.Helper()
	for _, c := range o.summary.RootGroup.Checks {
		if c.Fails != 0 || c.Passes != passes {
			t.Errorf("check %q: %d passes %d fails, want %d and 0\nstderr:\n%s", c.Name, c.Passes, c.Fails, passes, o.stderr)
		}
	}
}

func (o outcome) value(t *testing.T, metric, key string) float64 {
	t.Helper()
	m, ok := o.summary.Metrics[metric]
	if !ok {
		t.Fatalf("metric %s missing from summary.json", metric)
	}
	return m.Values[key]
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func findGroup(g metrics.Group, path string) *metrics.Group {
	if g.Path == path {
		return &g
	}
	for _, c := range g.Groups {
		if f := findGroup(c, path); f != nil {
			return f
		}
	}
	return nil
}

func findCheck(g *metrics.Group, name string) *metrics.Check {
	for i := range g.Checks {
		if g.Checks[i].Name == name {
			return &g.Checks[i]
		}
	}
	return nil
}

func TestChecksAreCountedPerNameInsideNestedGroups(t *testing.T) {
	o := runScript(t, "checks_groups.js", nil)
	o.wantExit(t, ExitOK)
	inner := findGroup(o.summary.RootGroup, "::outer::inner")
	if inner == nil {
		t.Fatalf("group ::outer::inner missing: %+v", o.summary.RootGroup)
	}
	if c := findCheck(inner, "inner ok"); c == nil || c.Passes != 4 || c.Fails != 0 || c.Path != "::outer::inner::inner ok" || c.ID != md5Hex(c.Path) {
		t.Errorf("inner ok = %+v, want 4 passes at ::outer::inner::inner ok", c)
	}
	outer := findGroup(o.summary.RootGroup, "::outer")
	if c := findCheck(outer, "even iteration"); c == nil || c.Passes != 2 || c.Fails != 2 {
		t.Errorf("even iteration = %+v, want 2 passes 2 fails (iterations 0..1 on each of 2 VUs)", c)
	}
	if c := findCheck(&o.summary.RootGroup, "group returns the value"); c == nil || c.Passes != 4 {
		t.Errorf("root check = %+v, want 4 passes", c)
	}
	if got := o.value(t, "checks", "fails"); got != 2 {
		t.Errorf("checks fails = %v, want 2", got)
	}
	if o.summary.RootGroup.ID != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("root group id %s, want md5 of the empty path", o.summary.RootGroup.ID)
	}
	if !strings.Contains(o.stdout, "█ outer") || !strings.Contains(o.stdout, "✗ even iteration") {
		t.Errorf("text summary lacks the group tree:\n%s", o.stdout)
	}
}

func TestCrossedThresholdsExitWith99AndAreMarkedInTheSummary(t *testing.T) {
	o := runScript(t, "threshold_fail.js", nil)
	o.wantExit(t, ExitThresholdFailed)
	th := o.summary.Metrics["http_req_failed"].Thresholds["rate<0.1"]
	if th.OK {
		t.Errorf("http_req_failed rate<0.1 ok with every request a 500")
	}
	if !o.summary.Metrics["http_req_duration"].Thresholds["p(95)<60000"].OK {
		t.Errorf("a threshold that held is reported crossed")
	}
	if o.summary.Metrics["http_reqs{status:500}"].Thresholds["count<1"].OK {
		t.Errorf("sub-metric threshold on status 500 held")
	}
	if !strings.Contains(o.stderr, "thresholds on metrics") {
		t.Errorf("stderr does not name the crossed thresholds:\n%s", o.stderr)
	}
}

func TestNoThresholdsSkipsEvaluation(t *testing.T) {
	o := runScript(t, "threshold_fail.js", func(c *Config) { c.NoThresholds = true })
	o.wantExit(t, ExitOK)
}

func TestHTTPSamplesCarryK6SystemTagsAndExpectedStatuses(t *testing.T) {
	o := runScript(t, "http_tags.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if got := o.value(t, "data_sent", "count"); got <= 0 {
		t.Errorf("data_sent = %v, want > 0", got)
	}
	if o.summary.Metrics["data_received"].Contains != "data" {
		t.Errorf("data_received contains %q, want data", o.summary.Metrics["data_received"].Contains)
	}
	if o.summary.Metrics["http_req_waiting"].Type != "trend" {
		t.Errorf("http_req_waiting missing or not a trend")
	}
}

func TestTheCookieJarIsResetEachIteration(t *testing.T) {
	o := runScript(t, "cookies.js", nil)
	o.wantExit(t, ExitOK)
	if p, f := o.value(t, "checks", "passes"), o.value(t, "checks", "fails"); p != 9 || f != 0 {
		t.Errorf("checks %v passes %v fails, want 9 and 0: %+v", p, f, o.summary.RootGroup.Checks)
	}
}

func TestTheHostsOptionRoutesNamesToTheLoopbackTLSServer(t *testing.T) {
	o := runScript(t, "hosts_tls.js", nil)
	o.wantExit(t, ExitOK)
	o.wantEachRootCheckPassed(t, 1)
	if len(o.summary.RootGroup.Checks) != 4 {
		t.Errorf("%d checks ran, want 4", len(o.summary.RootGroup.Checks))
	}
}

func TestCustomMetricsWithTagsFeedThresholds(t *testing.T) {
	o := runScript(t, "custom_metrics.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	for name, typ := range map[string]string{"msgs_sent": "counter", "queue_depth": "gauge", "msg_ok": "rate", "msg_lag": "trend"} {
		if got := o.summary.Metrics[name].Type; got != typ {
			t.Errorf("%s type %q, want %q", name, got, typ)
		}
	}
	if o.summary.Metrics["msg_lag"].Contains != "time" {
		t.Errorf("Trend(name, true) is not a time trend")
	}
}

func TestSetupDataIsAJSONCopyForIterationsAndTeardown(t *testing.T) {
	o := runScript(t, "setup_data.js", nil)
	o.wantExit(t, ExitOK)
	if f := o.value(t, "checks", "fails"); f != 0 {
		t.Errorf("%v setup-data checks failed: %+v", f, o.summary.RootGroup.Checks)
	}
	if got := o.value(t, "teardown_saw_token", "count"); got != 1 {
		t.Errorf("teardown saw the untouched setup data %v times, want 1", got)
	}
}

func TestHandleSummaryDecidesTheOutputsWithBuiltInJSLibs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mine.json")
	o := runScript(t, "handle_summary.js", func(c *Config) { c.Env["OUT_FILE"] = out })
	o.wantExit(t, ExitOK)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("handleSummary's file: %v", err)
	}
	var got struct{ Iterations, Checks float64 }
	if err := json.Unmarshal(b, &got); err != nil || got.Iterations != 2 || got.Checks != 2 {
		t.Errorf("handleSummary wrote %s, want 2 iterations and 2 checks", b)
	}
	if !strings.Contains(o.stdout, "iterations") || !strings.Contains(o.stdout, "✓ in range") {
		t.Errorf("textSummary output missing:\n%s", o.stdout)
	}
}

func TestOpenSharedArrayAndEncoding(t *testing.T) {
	o := runScript(t, "shared_data.js", nil)
	o.wantExit(t, ExitOK)
	if f := o.value(t, "checks", "fails"); f != 0 {
		t.Errorf("checks failed: %+v\n%s", o.summary.RootGroup.Checks, o.stderr)
	}
	// Each VU adds how many times its own runtime built the array: only one VU (the first to
	// construct it) ever does, and the init VU's build is not counted here.
	if got := o.value(t, "array_builds", "count"); got > 1 {
		t.Errorf("SharedArray built %v times across VUs, want at most once", got)
	}
}

func TestIterationsInterruptedAtTheEndAreNotCounted(t *testing.T) {
	began := time.Now()
	o := runScript(t, "interrupted.js", nil)
	o.wantExit(t, ExitOK)
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("sleeping iterations were not interrupted (run took %s)", took)
	}
	if m, ok := o.summary.Metrics["iterations"]; ok && m.Values["count"] != 0 {
		t.Errorf("interrupted iterations counted: %v", m.Values)
	}
	if strings.Contains(o.stderr, "ERRO") {
		t.Errorf("interruptions reported as errors:\n%s", o.stderr)
	}
}

func TestExecutionModuleDescribesVUScenarioAndTest(t *testing.T) {
	o := runScript(t, "execution_info.js", nil)
	o.wantExit(t, ExitOK)
	o.wantEachRootCheckPassed(t, 4)
}

func TestFlagsOverrideEnvironmentOverrideScriptOverrideConfigFile(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"iterations": 7, "thresholds": {"runs": ["count>0"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	five, three := int64(5), int64(3)
	cases := []struct {
		name string
		cfg  func(*Config)
		want float64
	}{
		{"script over config file", func(c *Config) { c.ConfigFile = cfgFile }, 1},
		{"environment over script", func(c *Config) { c.ConfigFile = cfgFile; c.EnvOptions.Iterations = &five }, 5},
		{"flags over environment", func(c *Config) {
			c.ConfigFile = cfgFile
			c.EnvOptions.Iterations = &five
			c.CLI.Iterations = &three
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := runScript(t, "options_precedence.js", tc.cfg)
			o.wantExit(t, ExitOK)
			if got := o.value(t, "runs", "count"); got != tc.want {
				t.Errorf("runs = %v, want %v", got, tc.want)
			}
			if _, ok := o.summary.Metrics["runs"].Thresholds["count>0"]; !ok {
				t.Errorf("the config file's thresholds were lost")
			}
		})
	}
}

func TestInvalidThresholdsExit104(t *testing.T) {
	bad := options.Options{Thresholds: map[string]options.ThresholdList{"no_such_metric": {{Threshold: "count>0"}}}}
	o := runScript(t, "options_precedence.js", func(c *Config) { c.CLI = bad })
	o.wantExit(t, ExitInvalidConfig)
	wrongAgg := options.Options{Thresholds: map[string]options.ThresholdList{"runs": {{Threshold: "p(95)<1"}}}}
	o = runScript(t, "options_precedence.js", func(c *Config) { c.CLI = wrongAgg })
	o.wantExit(t, ExitInvalidConfig)
}

// TestSummaryFilesHaveTheShapeReportersRead checks summary.json against what k6-html-reporter,
// k6-reporter and k6-junit read (metrics[*].type/values/thresholds[expr].ok,
// options.summaryTrendStats, root_group.checks/groups), and --summary-export's legacy shape.
func TestSummaryFilesHaveTheShapeReportersRead(t *testing.T) {
	export := filepath.Join(t.TempDir(), "export.json")
	o := runScript(t, "threshold_fail.js", func(c *Config) { c.SummaryExport = export })
	b, err := os.ReadFile(filepath.Join(o.dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	rg := doc["root_group"].(map[string]any)
	for _, k := range []string{"name", "path", "id", "groups", "checks"} {
		if _, ok := rg[k]; !ok {
			t.Errorf("root_group.%s missing", k)
		}
	}
	stats := doc["options"].(map[string]any)["summaryTrendStats"].([]any)
	if len(stats) != 6 || stats[5] != "p(95)" {
		t.Errorf("options.summaryTrendStats = %v", stats)
	}
	dur := doc["metrics"].(map[string]any)["http_req_duration"].(map[string]any)
	if dur["type"] != "trend" || dur["contains"] != "time" {
		t.Errorf("http_req_duration = %v", dur)
	}
	if _, ok := dur["values"].(map[string]any)["p(95)"]; !ok {
		t.Errorf("http_req_duration.values lacks p(95)")
	}
	if ok := dur["thresholds"].(map[string]any)["p(95)<60000"].(map[string]any)["ok"]; ok != true {
		t.Errorf("thresholds[expr].ok = %v", ok)
	}
	eb, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var ex map[string]any
	if err := json.Unmarshal(eb, &ex); err != nil {
		t.Fatal(err)
	}
	failed := ex["metrics"].(map[string]any)["http_req_failed"].(map[string]any)
	if failed["value"] != 1.0 || failed["thresholds"].(map[string]any)["rate<0.1"] != true {
		t.Errorf("--summary-export http_req_failed = %v, want value 1 and the crossed threshold true", failed)
	}
}

func TestOutJSONStreamsK6MetricAndPointLines(t *testing.T) {
	out := filepath.Join(t.TempDir(), "points.ndjson")
	o := runScript(t, "custom_metrics.js", func(c *Config) { c.OutJSON = out })
	o.wantExit(t, ExitOK)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	declared, points := map[string]bool{}, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var l struct {
			Type   string `json:"type"`
			Metric string `json:"metric"`
			Data   struct {
				Tags map[string]string `json:"tags"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch l.Type {
		case "Metric":
			declared[l.Metric] = true
		case "Point":
			if l.Metric == "msgs_sent" {
				points++
				if l.Data.Tags["scenario"] != "default" || l.Data.Tags["kind"] == "" {
					t.Errorf("msgs_sent point tags %v lack scenario or kind", l.Data.Tags)
				}
			}
		}
	}
	if !declared["msgs_sent"] || !declared["iterations"] {
		t.Errorf("Metric lines for msgs_sent and iterations missing: %v", declared)
	}
	if points != 8 {
		t.Errorf("%d msgs_sent points, want 8", points)
	}
}

func TestExecutionSegmentsSplitTheIterationsAndTheReportsMerge(t *testing.T) {
	ten, two := int64(10), int64(2)
	var dirs []string
	for _, seg := range []string{"0:1/2", "1/2:1"} {
		seq := "0,1/2,1"
		o := runScript(t, "options_precedence.js", func(c *Config) {
			c.CLI.Iterations, c.CLI.VUs = &ten, &two
			c.CLI.ExecutionSegment, c.CLI.ExecutionSegmentSequence = &seg, &seq
		})
		o.wantExit(t, ExitOK)
		if got := o.value(t, "runs", "count"); got != 5 {
			t.Errorf("segment %s ran %v iterations, want 5 of 10", seg, got)
		}
		dirs = append(dirs, o.dir)
	}
	var parts []*reports.Report
	for _, d := range dirs {
		r, err := reports.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
	}
	merged, err := reports.Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Metrics["runs"].Values["count"]; got != 10 {
		t.Errorf("merged runs = %v, want 10", got)
	}
}

// TestEachScriptEndsAsK6Would runs the conformance scripts whose outcome is their exit code and
// stderr: scripts that throw, abort or cross an abortOnFail threshold end with k6's exit code,
// name the cause on stderr, and a 60 s test that aborts stops early; scripts that judge
// themselves (checks and thresholds over what they observed) also end with every threshold held,
// no check failed and nothing run that must not run.
func TestEachScriptEndsAsK6Would(t *testing.T) {
	cases := []struct {
		script, feature string
		exit            int
		stderr          string
		judgesItself    bool
	}{
		{"redirects.js", "every redirect hop is a request of its own", ExitOK, "", true},
		{"scenarios.js", "scenarios run their exec functions with their env and tags (default never runs)", ExitOK, "", true},
		{"typescript.ts", "TypeScript scripts with relative imports", ExitOK, "", true},
		{"batch.js", "http.batch returns responses in the shape of its requests", ExitOK, "", true},
		{"request_errors.js", "transport errors carry k6's error codes", ExitOK, "", true},
		{"test_fail.js", "exec.test.fail finishes the run, then exits 110", ExitTestFailed, "", true},
		{"async.js", "async functions settle within the call; a rejection is the iteration's error", ExitOK, "async failure after 84", true},
		{"commonjs.js", "CommonJS scripts require modules and files", ExitOK, "", true},
		{"crypto.js", "k6/crypto: hashes, HMAC, incremental hashes, random bytes", ExitOK, "", true},
		{"ignored_options.js", "options the runtime does not know are named in a warning", ExitOK, "options noConnectionReuse, rps are not supported", true},
		{"init_exception.js", "an exception in the init context", ExitScriptException, "broken at init", false},
		{"setup_exception.js", "a throwing setup() (no iterations run)", ExitScriptException, "setup failed on purpose", false},
		{"unsupported_module.js", "an unsupported module fails at init naming it", ExitScriptException, `"k6/ws"`, false},
		{"remote_import.js", "a remote import fails naming the URL", ExitScriptException, "https://example.com/lib.js", false},
		{"strict_mode.js", "modules are strict: an undeclared name is a ReferenceError", ExitScriptException, "undeclaredName", false},
		{"test_abort.js", "exec.test.abort() stops a 60 s test", ExitScriptAborted, "enough", false},
		{"abort_on_fail.js", "a failing abortOnFail threshold stops a 60 s test", ExitThresholdFailed, "abortOnFail", false},
	}
	for _, tc := range cases {
		t.Run(tc.script, func(t *testing.T) {
			began := time.Now()
			o := runScript(t, tc.script, nil)
			o.wantExit(t, tc.exit)
			if took := time.Since(began); took > 30*time.Second {
				t.Errorf("%s: the run took %s, want it over (or stopped) well before", tc.feature, took)
			}
			if !strings.Contains(o.stderr, tc.stderr) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.feature, tc.stderr, o.stderr)
			}
			if !tc.judgesItself {
				return
			}
			o.wantThresholds(t, true)
			if f := o.summary.Metrics["checks"].Values["fails"]; f != 0 {
				t.Errorf("%s: %v checks failed: %+v\n%s", tc.feature, f, o.summary.RootGroup.Checks, o.stderr)
			}
			if strings.Contains(o.stderr, "must not run") {
				t.Errorf("%s: a function that must not run ran:\n%s", tc.feature, o.stderr)
			}
		})
	}
}
