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

func TestAbortOnFailStopsTheTestEarlyWith99(t *testing.T) {
	began := time.Now()
	o := runScript(t, "abort_on_fail.js", nil)
	o.wantExit(t, ExitThresholdFailed)
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("a 60 s test with a failing abortOnFail threshold ran %s", took)
	}
	if !strings.Contains(o.stderr, "abortOnFail") {
		t.Errorf("stderr does not explain the abort:\n%s", o.stderr)
	}
}

func TestAnExceptionInTheInitContextExits107(t *testing.T) {
	o := runScript(t, "init_exception.js", nil)
	o.wantExit(t, ExitScriptException)
	if !strings.Contains(o.stderr, "broken at init") {
		t.Errorf("stderr lacks the exception:\n%s", o.stderr)
	}
}

func TestAThrowingSetupExits107WithoutIterations(t *testing.T) {
	o := runScript(t, "setup_exception.js", nil)
	o.wantExit(t, ExitScriptException)
	if !strings.Contains(o.stderr, "setup failed on purpose") {
		t.Errorf("stderr lacks the exception:\n%s", o.stderr)
	}
}

func TestTestAbortExits108(t *testing.T) {
	began := time.Now()
	o := runScript(t, "test_abort.js", nil)
	o.wantExit(t, ExitScriptAborted)
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("exec.test.abort() did not stop a 60 s test (ran %s)", took)
	}
	if !strings.Contains(o.stderr, "enough") {
		t.Errorf("stderr lacks the abort reason:\n%s", o.stderr)
	}
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

func TestEveryRedirectHopIsARequest(t *testing.T) {
	o := runScript(t, "redirects.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if o.value(t, "checks", "fails") != 0 {
		t.Errorf("redirect checks failed: %+v", o.summary.RootGroup.Checks)
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
	for _, c := range o.summary.RootGroup.Checks {
		if c.Fails != 0 || c.Passes != 1 {
			t.Errorf("check %q: %d passes %d fails\nstderr:\n%s", c.Name, c.Passes, c.Fails, o.stderr)
		}
	}
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

func TestScenariosRunTheirExecFunctionsWithEnvAndTags(t *testing.T) {
	o := runScript(t, "scenarios.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if strings.Contains(o.stderr, "must not run") {
		t.Errorf("default ran:\n%s", o.stderr)
	}
}

func TestUnsupportedModulesFailAtInitNamingThem(t *testing.T) {
	o := runScript(t, "unsupported_module.js", nil)
	o.wantExit(t, ExitScriptException)
	if !strings.Contains(o.stderr, `"k6/ws"`) {
		t.Errorf("stderr does not name k6/ws:\n%s", o.stderr)
	}
}

func TestRemoteImportsFailNamingTheURL(t *testing.T) {
	o := runScript(t, "remote_import.js", nil)
	o.wantExit(t, ExitScriptException)
	if !strings.Contains(o.stderr, "https://example.com/lib.js") {
		t.Errorf("stderr does not name the URL:\n%s", o.stderr)
	}
}

func TestTypeScriptScriptsRunWithRelativeImports(t *testing.T) {
	o := runScript(t, "typescript.ts", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
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

func TestModulesAreStrict(t *testing.T) {
	o := runScript(t, "strict_mode.js", nil)
	o.wantExit(t, ExitScriptException)
	if !strings.Contains(o.stderr, "undeclaredName") {
		t.Errorf("stderr lacks the ReferenceError:\n%s", o.stderr)
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
	for _, c := range o.summary.RootGroup.Checks {
		if c.Fails != 0 || c.Passes != 4 {
			t.Errorf("check %q: %d passes %d fails, want 4 and 0\n%s", c.Name, c.Passes, c.Fails, o.stderr)
		}
	}
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

func TestBatchReturnsResponsesInTheRequestsShape(t *testing.T) {
	o := runScript(t, "batch.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if f := o.value(t, "checks", "fails"); f != 0 {
		t.Errorf("batch checks failed: %+v\n%s", o.summary.RootGroup.Checks, o.stderr)
	}
}

func TestTransportErrorsCarryK6ErrorCodes(t *testing.T) {
	o := runScript(t, "request_errors.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if f := o.value(t, "checks", "fails"); f != 0 {
		t.Errorf("error checks failed: %+v\n%s", o.summary.RootGroup.Checks, o.stderr)
	}
}

func TestTestFailFinishesTheRunWithExit110(t *testing.T) {
	o := runScript(t, "test_fail.js", nil)
	o.wantExit(t, ExitTestFailed)
	o.wantThresholds(t, true)
}

func TestAsyncFunctionsSettleWithinTheCall(t *testing.T) {
	o := runScript(t, "async.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
	if !strings.Contains(o.stderr, "async failure after 84") {
		t.Errorf("the rejected iteration was not reported:\n%s", o.stderr)
	}
}

func TestCommonJSScriptsRequireModulesAndFiles(t *testing.T) {
	o := runScript(t, "commonjs.js", nil)
	o.wantExit(t, ExitOK)
	o.wantThresholds(t, true)
}
