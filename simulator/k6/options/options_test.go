package options

import (
	"errors"
	"slices"
	"testing"
	"time"

	"wagate/simulator/executor"
)

func TestShortcutsMapOntoK6Executors(t *testing.T) {
	cases := []struct {
		json     string
		executor string
		check    func(executor.Config) bool
	}{
		{`{}`, executor.SharedIterations, func(c executor.Config) bool { return c.VUs == 1 && c.Iterations == 1 }},
		{`{"vus": 3}`, executor.SharedIterations, func(c executor.Config) bool { return c.VUs == 3 && c.Iterations == 3 }},
		{`{"vus": 2, "iterations": 10}`, executor.SharedIterations, func(c executor.Config) bool {
			return c.VUs == 2 && c.Iterations == 10 && c.MaxDuration == 10*time.Minute
		}},
		{`{"iterations": 10, "duration": "30s"}`, executor.SharedIterations, func(c executor.Config) bool { return c.MaxDuration == 30*time.Second }},
		{`{"vus": 5, "duration": "1m30s"}`, executor.ConstantVUs, func(c executor.Config) bool { return c.VUs == 5 && c.Duration == 90*time.Second }},
		{`{"vus": 4, "stages": [{"duration": "10s", "target": 8}, {"duration": 5000, "target": 0}]}`, executor.RampingVUs,
			func(c executor.Config) bool {
				return c.StartVUs == 4 && len(c.Stages) == 2 && c.Stages[1].Duration == 5*time.Second && c.GracefulRampDown == 30*time.Second
			}},
	}
	for _, tc := range cases {
		o, err := Parse([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		sc, err := o.Consolidate()
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if len(sc) != 1 || sc[0].Name != "default" || sc[0].Exec != "default" || sc[0].Config.Executor != tc.executor || !tc.check(sc[0].Config) {
			t.Errorf("%s -> %+v, want one default %s scenario", tc.json, sc, tc.executor)
		}
	}
}

func TestScenariosGetK6DefaultsAndValidation(t *testing.T) {
	o, err := Parse([]byte(`{"scenarios": {
		"b": {"executor": "constant-arrival-rate", "rate": 5, "duration": "1m", "preAllocatedVUs": 2, "exec": "hit", "env": {"A": "1"}, "tags": {"t": "x"}},
		"a": {"executor": "per-vu-iterations", "vus": 2, "startTime": "5s"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := o.Consolidate()
	if err != nil {
		t.Fatal(err)
	}
	if sc[0].Name != "a" || sc[1].Name != "b" {
		t.Fatalf("scenarios not sorted by name: %+v", sc)
	}
	if a := sc[0].Config; a.Iterations != 1 || a.StartTime != 5*time.Second || a.GracefulStop != 30*time.Second {
		t.Errorf("per-vu-iterations defaults: %+v", a)
	}
	if b := sc[1]; b.Exec != "hit" || b.Env["A"] != "1" || b.Tags["t"] != "x" || b.Config.TimeUnit != time.Second || b.Config.MaxVUs != 2 {
		t.Errorf("constant-arrival-rate scenario: %+v", b)
	}
	bad, _ := Parse([]byte(`{"scenarios": {"x": {"executor": "ramping-arrival-rate", "stages": [{"duration": "1s", "target": 1}], "preAllocatedVUs": 3, "maxVUs": 1}}}`))
	if _, err := bad.Consolidate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("maxVUs < preAllocatedVUs accepted: %v", err)
	}
	if _, err := Parse([]byte(`{"vus": 1, "duration": "10s", "scenarios": {"x": {"executor": "constant-vus", "duration": "1s"}}}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a shortcut with scenarios in one tier accepted: %v", err)
	}
	misspelt, err := Parse([]byte(`{"scenarios": {"x": {"executor": "constant-vus", "duration": "1s", "vu": 3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := misspelt.Consolidate(); err == nil {
		t.Errorf("a misspelt scenario field (vu) was accepted")
	}
}

func TestAHigherTierShortcutReplacesLowerScenariosAndViceVersa(t *testing.T) {
	script, _ := Parse([]byte(`{"scenarios": {"s": {"executor": "constant-vus", "duration": "10s"}}, "vus": 3}`))
	cli, _ := Parse([]byte(`{"iterations": 4}`))
	merged := script.Apply(cli)
	sc, err := merged.Consolidate()
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 1 || sc[0].Name != "default" || sc[0].Config.Executor != executor.SharedIterations || sc[0].Config.Iterations != 4 || sc[0].Config.VUs != 3 {
		t.Errorf("CLI iterations over script scenarios -> %+v", sc)
	}
	file, _ := Parse([]byte(`{"duration": "1m"}`))
	withScenarios := file.Apply(script)
	sc, _ = withScenarios.Consolidate()
	if len(sc) != 1 || sc[0].Name != "s" {
		t.Errorf("script scenarios over a config file's duration -> %+v", sc)
	}
}

func TestDurationsAndThresholdShapes(t *testing.T) {
	for in, want := range map[string]time.Duration{"1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond, "2h": 2 * time.Hour, "1d": 24 * time.Hour, "1d2h": 26 * time.Hour, "30": 30 * time.Second} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	o, err := Parse([]byte(`{"thresholds": {"http_req_duration{name:x}": ["p(95)<200", {"threshold": "max<1000", "abortOnFail": true, "delayAbortEval": "10s"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	sets, err := o.ParsedThresholds()
	if err != nil {
		t.Fatal(err)
	}
	th := sets[0].Thresholds
	if sets[0].Key.Tags["name"] != "x" || len(th) != 2 || th[0].AbortOnFail || !th[1].AbortOnFail || th[1].DelayAbortEval != 10*time.Second {
		t.Errorf("thresholds parsed as %+v", sets)
	}
	env, err := FromEnv([]string{"K6_VUS=7", "K6_STAGES=5s:2,10s:0", "PATH=/bin", "K6_INSECURE_SKIP_TLS_VERIFY=true"})
	if err != nil || *env.VUs != 7 || len(env.Stages) != 2 || env.Stages[0].Target != 2 || !*env.InsecureSkipTLSVerify {
		t.Errorf("FromEnv = %+v, %v", env, err)
	}
}

func TestIgnoredNamesTheOptionsThisRuntimeDoesNotKnow(t *testing.T) {
	cases := []struct {
		name, json string
		want       []string
	}{
		{"only known options", `{"vus": 2, "thresholds": {}, "ext": {"wagate": {}}, "summaryTrendStats": ["avg"]}`, nil},
		{"k6 options this runtime lacks, sorted", `{"vus": 2, "rps": 10, "dns": {"ttl": "1m"}, "batch": 5}`, []string{"batch", "dns", "rps"}},
		{"a misspelling", `{"iteration": 3}`, []string{"iteration"}},
		{"not an object", `[1]`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Ignored([]byte(tc.json)); !slices.Equal(got, tc.want) {
				t.Errorf("Ignored(%s) = %v, want %v", tc.json, got, tc.want)
			}
		})
	}
}
