package scenario

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/gateway/config"
	"wagate/simulator/executor"
)

const valid = `
name: example
users: 20
scenarios:
  steady:
    executor: constant-vus
    duration: 1m
  storm:
    executor: ramping-arrival-rate
    startTime: 30s
    timeUnit: 1m
    stages:
      - {duration: 10s, target: 60}
      - {duration: 10s, target: 0}
    behaviour:
      scanSuccess: 0.5
behaviour:
  scanDelay: {min: 1s, max: 3s}
  messagesPerMinute: 2
gateway:
  mode: legacy
  cacheTtlQr: 20s
laravel:
  cores: 4
  workers: 16
  bootstrap: 6ms
faults:
  - at: 20s
    duration: 10s
    laravel: {errorRate: 0.5, errorStatus: 503}
  - at: 40s
    whatsapp: {action: drop, share: 0.5}
thresholds:
  'http_req_duration{endpoint:status}': ['p(95)<50']
  lost_updates: ['count==0']
  http_req_failed:
    - threshold: rate<0.01
      abortOnFail: true
      delayAbortEval: 10s
`

func TestValidFileGetsDefaultsAndUsers(t *testing.T) {
	f, err := Parse("example.yaml", []byte(valid), nil)
	if err != nil {
		t.Fatal(err)
	}
	steady := f.Scenarios["steady"]
	if steady.Config.VUs != 20 || steady.Config.GracefulStop != 30*time.Second {
		t.Errorf("steady: vus %d gracefulStop %s; want users (20) and k6's 30s", steady.Config.VUs, steady.Config.GracefulStop)
	}
	storm := f.Scenarios["storm"]
	if storm.Config.PreAllocatedVUs != 20 || storm.Config.MaxVUs != 20 || storm.Config.TimeUnit != time.Minute {
		t.Errorf("storm config = %+v", storm.Config)
	}
	if *storm.Model.ScanSuccess != 0.5 || *storm.Model.MessagesPerMinute != 2 || *steady.Model.ScanSuccess != 1 {
		t.Errorf("behaviour not merged: storm %v/%v steady %v", *storm.Model.ScanSuccess, *storm.Model.MessagesPerMinute, *steady.Model.ScanSuccess)
	}
	if f.Drain.Std() != 15*time.Second || f.Gateway.Redis != RedisEmbedded || f.Gateway.Mode != ModeLegacy {
		t.Errorf("defaults: drain %s redis %s mode %s", f.Drain, f.Gateway.Redis, f.Gateway.Mode)
	}
	// The gateway block is the gateway's configuration: its keys set its settings, the others keep
	// the gateway's defaults.
	if f.Gateway.Cache.QRTTL != 20*time.Second || f.Gateway.Batch.Size != config.Default().Batch.Size ||
		strings.Join(f.Gateway.Set, ",") != "mode,cacheTtlQr" {
		t.Errorf("gateway: qr TTL %s, batch size %d, set %q", f.Gateway.Cache.QRTTL, f.Gateway.Batch.Size, f.Gateway.Set)
	}
	if len(f.ThresholdSets) != 3 {
		t.Fatalf("thresholds: %d sets", len(f.ThresholdSets))
	}
	for _, s := range f.ThresholdSets {
		if s.Key.Metric == "http_req_failed" && (!s.Thresholds[0].AbortOnFail || s.Thresholds[0].DelayAbortEval != 10*time.Second) {
			t.Errorf("object form lost: %+v", s.Thresholds[0])
		}
	}
	if f.PeakUsers() != 40 || f.ScheduledDuration() != time.Minute {
		t.Errorf("peak users %d, scheduled %s", f.PeakUsers(), f.ScheduledDuration())
	}
}

func TestOverridesChangeTheFile(t *testing.T) {
	f, err := Parse("example.yaml", []byte(valid), []string{"gateway.mode=batch", "users=1000", "scenarios.steady.duration=2m", "laravel.faults.errorRate=0.1", "behaviour.pollers=3"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Gateway.Mode != ModeBatch || f.Scenarios["steady"].Config.VUs != 1000 || f.Scenarios["steady"].Config.Duration != 2*time.Minute {
		t.Errorf("overrides not applied: mode %s vus %d duration %s", f.Gateway.Mode, f.Scenarios["steady"].Config.VUs, f.Scenarios["steady"].Config.Duration)
	}
	if f.Laravel.Faults == nil || f.Laravel.Faults.ErrorRate != 0.1 || *f.Behaviour.Pollers != 3 {
		t.Error("nested override not applied")
	}
	_, err = Parse("example.yaml", []byte(valid), []string{"gateway.mode"})
	if err == nil || !strings.Contains(err.Error(), "-set gateway.mode: write it as key=value") {
		t.Errorf("bad -set: %v", err)
	}
}

// Each bad file yields one message naming the file, line, field and the problem.
func TestValidationMessages(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"k6 maxVUs", `
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 10
    duration: 1m
    preAllocatedVUs: 10
    maxVUs: 5
`, "f.yaml:8: scenarios.s.maxVUs: maxVUs can't be less than preAllocatedVUs"},
		{"k6 rate", `
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 0
    duration: 1m
    preAllocatedVUs: 1
`, "f.yaml:5: scenarios.s.rate: the iteration rate must be more than 0"},
		{"unknown field with a hint", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
gateway:
  bacthSize: 10
`, `f.yaml:5: gateway.bacthSize: not a gateway setting; did you mean batchSize? (gateway -help lists every setting)`},
		{"a gateway setting that is not its type", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
gateway:
  mode: batch
  priorityInterval: fast
`, `f.yaml:6: gateway.priorityInterval: "fast" is not a duration (e.g. 500ms, 5s, 2m)`},
		{"a gateway setting out of the gateway's range", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
gateway:
  batchSize: 501
`, `f.yaml:5: gateway.batchSize: must be at most the contract's 500 items (501)`},
		{"a setting each run gives the gateway", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
gateway:
  apiToken: 0123456789abcdef0123
`, `f.yaml:5: gateway.apiToken: given by the simulator to each gateway it starts`},
		{"a capacity key that is not fakelaravel's", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
laravel:
  workers: 8
  bootstrapCpu: 6ms
`, `f.yaml:6: laravel.bootstrapCpu: unknown field; known fields here: real, faults, flags, url, token, adminToken, cores, bootstrap, lookup, perRow`},
		{"a capacity out of fakelaravel's range", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
laravel: {workers: 0}
`, `f.yaml:4: laravel: capacity: workers 0 < 1`},
		{"a capacity value that is not its type", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
laravel: {perRow: 6}
`, `f.yaml:4: laravel.perRow: "6" is not a duration`},
		{"an unknown Redis choice", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1m}
gateway: {redis: memcached}
`, `f.yaml:4: gateway.redis: "memcached": use embedded, server or a redis:// URL`},
		{"bad duration", `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 1 minute}
`, `f.yaml:3: scenarios.s.duration: "1 minute" is not a duration; write it like 500ms, 30s, 5m or 1h30m`},
		{"wrong type", `
users: many
scenarios:
  s: {executor: constant-vus, duration: 1m}
`, `f.yaml:2: users: "many" is not a whole number`},
		{"unknown executor", `
scenarios:
  s: {executor: constant-users, duration: 1m}
`, `f.yaml:3: scenarios.s.executor: unknown executor "constant-users"`},
		{"mode", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
gateway: {mode: turbo}
`, `f.yaml:4: gateway.mode: "turbo" must be legacy or batch`},
		{"probability", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
behaviour:
  scanSuccess: 95
`, "f.yaml:5: behaviour.scanSuccess: 95 is not a probability; use a number from 0 to 1"},
		{"replies probability", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
behaviour:
  replies: 2
`, "f.yaml:5: behaviour.replies: 2 is not a probability; use a number from 0 to 1"},
		{"negative incoming rate", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
behaviour:
  incomingMessagesPerMinute: -1
`, "f.yaml:5: behaviour.incomingMessagesPerMinute: -1 can't be negative"},
		{"threshold on unknown metric", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
thresholds:
  http_req_duraton: ['p(95)<50']
`, `f.yaml:5: thresholds: invalid threshold defined on http_req_duraton; reason: no metric name "http_req_duraton" found (did you mean "http_req_duration"?)`},
		{"threshold aggregation", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
thresholds:
  lost_updates: ['p(95)<1']
`, `f.yaml:5: thresholds: invalid threshold defined on lost_updates; reason: threshold 0 ("p(95)<1") uses the aggregation method "p(95)", which is not supported for metrics of type counter`},
		{"threshold syntax", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
thresholds:
  http_req_duration: ['p95 < 50']
`, `f.yaml:5: thresholds: http_req_duration: threshold "p95 < 50": "p95" is not an aggregation method`},
		{"no scenarios", `
name: nothing
`, "f.yaml: scenarios: at least one scenario is needed"},
		{"scenario name", `
scenarios:
  "my scenario": {executor: constant-vus, duration: 1m}
`, "f.yaml:3: scenarios.my scenario: scenario names can only contain letters, digits, '-' and '_'"},
		{"yaml syntax", "scenarios: [\n", "f.yaml:1: not valid YAML"},
		{"fault needs one action", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
faults:
  - at: 10s
`, "f.yaml:5: faults[0]: give exactly one of laravel (faults to set) or whatsapp (an action)"},
		{"real Laravel has no model", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
laravel:
  real: true
  workers: 4
  bootstrap: 5ms
`, "f.yaml:7: laravel.bootstrap: a model setting, and laravel.real runs the real app, whose CPU costs are its own: remove it"},
		{"real Laravel is started by the run", `
scenarios:
  s: {executor: constant-vus, duration: 1m}
laravel:
  real: true
  url: http://127.0.0.1:8000
  token: t
`, "f.yaml:6: laravel.url: laravel.real starts the real app for the run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not an *Error: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestAllProblemsAreReportedTogether(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`
scenarios:
  a: {executor: constant-vus, vus: 0, duration: 1m}
  b: {executor: ramping-vus}
gateway: {mode: x}
`), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"scenarios.a.vus", "scenarios.b.stages", "gateway.mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
}

func TestDistributions(t *testing.T) {
	f, err := Parse("f.yaml", []byte(`
scenarios:
  s: {executor: per-vu-iterations}
behaviour:
  scanDelay: 4s
  sessionLifetime: {mean: 10m}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := f.Scenarios["s"].Model
	if b.ScanDelay.Min.Std() != 4*time.Second || b.ScanDelay.Max.Std() != 4*time.Second {
		t.Errorf("fixed dist = %+v", b.ScanDelay)
	}
	if b.SessionLifetime.MeanDuration() != 10*time.Minute {
		t.Errorf("exp mean = %s", b.SessionLifetime.MeanDuration())
	}
	if c := f.Scenarios["s"].Config; c.Executor != executor.PerVUIterations || c.VUs != 1 || c.Iterations != 1 || c.MaxDuration != 10*time.Minute {
		t.Errorf("k6 defaults for per-vu-iterations: %+v", c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("scenarios: {s: {executor: constant-vus, duration: 1m}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data, nil)
		if err == nil && len(file.Scenarios) == 0 {
			t.Fatal("a file without scenarios was accepted")
		}
	})
}

func TestShippedScenariosAreValid(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	for _, path := range files {
		f, err := Load(path, nil)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if len(f.ThresholdSets) == 0 {
			t.Errorf("%s has no thresholds", path)
		}
		if f.Name == "smoke" && f.TestDuration()+f.Drain.Std() > 50*time.Second {
			t.Errorf("smoke lasts %s + drain %s: CI needs it under 60 s with start-up", f.TestDuration(), f.Drain)
		}
	}
	// The seed files describe the same workload: only the mode (and users) differ.
	legacy, err1 := Load("../../scenarios/seed-legacy-100.yaml", nil)
	batch, err2 := Load("../../scenarios/seed-batch-100.yaml", nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if legacy.Gateway.Mode != ModeLegacy || batch.Gateway.Mode != ModeBatch || legacy.Users != batch.Users ||
		*legacy.Behaviour.Pollers != *batch.Behaviour.Pollers || legacy.Laravel.Capacity.Model != batch.Laravel.Capacity.Model ||
		legacy.Scenarios["users"].Config.Duration != batch.Scenarios["users"].Config.Duration {
		t.Error("seed-legacy-100 and seed-batch-100 differ in more than the mode")
	}
}
