// Package options owns k6's test options as a script, a --config file, K6_* environment
// variables and CLI flags give them: their JSON shapes (durations as "1m30s" or milliseconds,
// thresholds as strings or objects), k6's precedence (config file < script < environment < flags,
// a higher tier's duration/iterations/stages replacing lower tiers' scenarios), and their
// consolidation into named scenarios running simulator/executor's executors.
package options

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"wagate/simulator/executor"
	"wagate/simulator/threshold"
)

// ErrInvalid marks an options problem: k6 exits with code 104 (invalid config) on it.
var ErrInvalid = errors.New("invalid options")

// Duration is a k6 duration: a string ("1m30s", "500ms", "2h") or a number of milliseconds.
type Duration time.Duration

// UnmarshalJSON reads a k6 duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*d = Duration(time.Duration(x * float64(time.Millisecond)))
		return nil
	case string:
		p, err := ParseDuration(x)
		if err != nil {
			return err
		}
		*d = Duration(p)
		return nil
	}
	return fmt.Errorf("%s is not a duration", b)
}

// MarshalJSON writes the duration as k6 prints it ("30s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ParseDuration reads "1m30s", "2h", "1d", a bare number of seconds written as a string ("30"),
// as k6 accepts them.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	var days time.Duration
	if i := strings.Index(s, "d"); i > 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err == nil {
			days = time.Duration(n * float64(24*time.Hour))
			s = s[i+1:]
			if s == "" {
				return days, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return days + d, nil
}

// Stage is one {duration, target} step.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int64    `json:"target"`
}

// ThresholdList is one key's thresholds: strings or {threshold, abortOnFail, delayAbortEval}.
type ThresholdList []threshold.Definition

// UnmarshalJSON reads a k6 threshold list.
func (l *ThresholdList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var one string
		if json.Unmarshal(b, &one) == nil {
			*l = ThresholdList{{Threshold: one}}
			return nil
		}
		return fmt.Errorf("thresholds must be a list of strings or objects: %w", err)
	}
	for _, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			*l = append(*l, threshold.Definition{Threshold: s})
			continue
		}
		var o struct {
			Threshold      string    `json:"threshold"`
			AbortOnFail    bool      `json:"abortOnFail"`
			DelayAbortEval *Duration `json:"delayAbortEval"`
		}
		if err := json.Unmarshal(r, &o); err != nil {
			return fmt.Errorf("threshold %s: %w", r, err)
		}
		d := threshold.Definition{Threshold: o.Threshold, AbortOnFail: o.AbortOnFail}
		if o.DelayAbortEval != nil {
			d.DelayAbortEval = time.Duration(*o.DelayAbortEval)
		}
		*l = append(*l, d)
	}
	return nil
}

// Options are k6's test-wide options this runtime supports. Pointer fields are unset when nil.
type Options struct {
	VUs        *int64    `json:"vus,omitempty"`
	Duration   *Duration `json:"duration,omitempty"`
	Iterations *int64    `json:"iterations,omitempty"`
	Stages     []Stage   `json:"stages,omitempty"`
	// Scenarios keeps each scenario's raw JSON; Scenarios() decodes them.
	Scenarios map[string]json.RawMessage `json:"scenarios,omitempty"`

	Thresholds map[string]ThresholdList `json:"thresholds,omitempty"`

	Hosts                 map[string]string `json:"hosts,omitempty"`
	InsecureSkipTLSVerify *bool             `json:"insecureSkipTLSVerify,omitempty"`
	MaxRedirects          *int64            `json:"maxRedirects,omitempty"`
	DiscardResponseBodies *bool             `json:"discardResponseBodies,omitempty"`
	NoCookiesReset        *bool             `json:"noCookiesReset,omitempty"`
	UserAgent             *string           `json:"userAgent,omitempty"`
	Throw                 *bool             `json:"throw,omitempty"`
	SummaryTrendStats     []string          `json:"summaryTrendStats,omitempty"`
	SetupTimeout          *Duration         `json:"setupTimeout,omitempty"`
	TeardownTimeout       *Duration         `json:"teardownTimeout,omitempty"`
	Tags                  map[string]string `json:"tags,omitempty"`
	// Ext holds extension settings (ext.wagate for k6/x/wagate).
	Ext map[string]json.RawMessage `json:"ext,omitempty"`

	ExecutionSegment         *string `json:"executionSegment,omitempty"`
	ExecutionSegmentSequence *string `json:"executionSegmentSequence,omitempty"`
}

// Parse decodes options JSON (a script's exported options, or a --config file).
func Parse(b []byte) (Options, error) {
	var o Options
	if len(b) == 0 || string(b) == "null" {
		return o, nil
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return Options{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if o.shortcut() && len(o.Scenarios) > 0 {
		return Options{}, fmt.Errorf("%w: using an execution configuration shortcut (vus, duration, iterations or stages) together with scenarios is not allowed", ErrInvalid)
	}
	return o, nil
}

// Ignored lists the top-level keys of options JSON that this runtime does not know (k6 options
// such as rps or dns, or misspellings), sorted: they have no effect, so the runner warns about them.
func Ignored(b []byte) []string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	known := map[string]bool{}
	t := reflect.TypeFor[Options]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	var out []string
	for k := range raw {
		if !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// LoadFile reads a --config file.
func LoadFile(path string) (Options, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Options{}, fmt.Errorf("config %s: %w", path, err)
	}
	o, err := Parse(b)
	if err != nil {
		return Options{}, fmt.Errorf("config %s: %w", path, err)
	}
	return o, nil
}

func (o Options) shortcut() bool {
	return o.Duration != nil || o.Iterations != nil || o.Stages != nil
}

// Apply returns o overridden by every option higher sets, with k6's rule that a tier setting a
// duration, iterations or stages replaces the scenarios of the tiers below it (and one setting
// scenarios replaces their shortcuts).
func (o Options) Apply(higher Options) Options {
	if higher.shortcut() {
		o.Scenarios = nil
	}
	if len(higher.Scenarios) > 0 {
		o.Scenarios = higher.Scenarios
		o.Duration, o.Iterations, o.Stages = nil, nil, nil
	}
	set := func(dst **int64, src *int64) {
		if src != nil {
			*dst = src
		}
	}
	set(&o.VUs, higher.VUs)
	set(&o.Iterations, higher.Iterations)
	set(&o.MaxRedirects, higher.MaxRedirects)
	if higher.Duration != nil {
		o.Duration = higher.Duration
	}
	if higher.Stages != nil {
		o.Stages = higher.Stages
	}
	if higher.Thresholds != nil {
		o.Thresholds = higher.Thresholds
	}
	if higher.Hosts != nil {
		o.Hosts = higher.Hosts
	}
	for _, p := range []struct{ dst, src **bool }{
		{&o.InsecureSkipTLSVerify, &higher.InsecureSkipTLSVerify},
		{&o.DiscardResponseBodies, &higher.DiscardResponseBodies},
		{&o.NoCookiesReset, &higher.NoCookiesReset},
		{&o.Throw, &higher.Throw},
	} {
		if *p.src != nil {
			*p.dst = *p.src
		}
	}
	if higher.UserAgent != nil {
		o.UserAgent = higher.UserAgent
	}
	if higher.SummaryTrendStats != nil {
		o.SummaryTrendStats = higher.SummaryTrendStats
	}
	if higher.SetupTimeout != nil {
		o.SetupTimeout = higher.SetupTimeout
	}
	if higher.TeardownTimeout != nil {
		o.TeardownTimeout = higher.TeardownTimeout
	}
	if higher.Tags != nil {
		o.Tags = higher.Tags
	}
	if higher.Ext != nil {
		o.Ext = higher.Ext
	}
	if higher.ExecutionSegment != nil {
		o.ExecutionSegment = higher.ExecutionSegment
	}
	if higher.ExecutionSegmentSequence != nil {
		o.ExecutionSegmentSequence = higher.ExecutionSegmentSequence
	}
	return o
}

// FromEnv reads the K6_* environment variables this runtime supports from env (KEY=VALUE
// pairs, as os.Environ gives them).
func FromEnv(env []string) (Options, error) {
	var o Options
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "K6_") {
			continue
		}
		var err error
		switch k {
		case "K6_VUS":
			o.VUs, err = parseInt(v)
		case "K6_ITERATIONS":
			o.Iterations, err = parseInt(v)
		case "K6_DURATION":
			o.Duration, err = parseDur(v)
		case "K6_STAGES":
			o.Stages, err = ParseStages(v)
		case "K6_MAX_REDIRECTS":
			o.MaxRedirects, err = parseInt(v)
		case "K6_INSECURE_SKIP_TLS_VERIFY":
			o.InsecureSkipTLSVerify, err = parseBool(v)
		case "K6_DISCARD_RESPONSE_BODIES":
			o.DiscardResponseBodies, err = parseBool(v)
		case "K6_NO_COOKIES_RESET":
			o.NoCookiesReset, err = parseBool(v)
		case "K6_USER_AGENT":
			o.UserAgent = &v
		case "K6_SUMMARY_TREND_STATS":
			o.SummaryTrendStats = strings.Split(v, ",")
		case "K6_SETUP_TIMEOUT":
			o.SetupTimeout, err = parseDur(v)
		case "K6_TEARDOWN_TIMEOUT":
			o.TeardownTimeout, err = parseDur(v)
		case "K6_EXECUTION_SEGMENT":
			o.ExecutionSegment = &v
		case "K6_EXECUTION_SEGMENT_SEQUENCE":
			o.ExecutionSegmentSequence = &v
		}
		if err != nil {
			return Options{}, fmt.Errorf("%w: %s: %w", ErrInvalid, k, err)
		}
	}
	return o, nil
}

func parseInt(s string) (*int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func parseBool(s string) (*bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func parseDur(s string) (*Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return nil, err
	}
	dd := Duration(d)
	return &dd, nil
}

// ParseStages reads the CLI/env form "30s:10,1m:0" (duration:target, comma separated).
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, part := range strings.Split(s, ",") {
		d, t, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("stage %q must be written duration:target", part)
		}
		dur, err := ParseDuration(d)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stage %q: target: %w", part, err)
		}
		out = append(out, Stage{Duration: Duration(dur), Target: n})
	}
	return out, nil
}

// Scenario is one consolidated scenario: an executor configuration and what it runs.
type Scenario struct {
	Name   string
	Config executor.Config
	// Exec is the exported function each iteration calls ("default" unless set).
	Exec string
	Env  map[string]string
	Tags map[string]string
}

var scenarioName = regexp.MustCompile(`^[0-9a-zA-Z_-]+$`)

// Consolidate maps the shortcuts (iterations -> shared-iterations, duration -> constant-vus,
// stages -> ramping-vus, vus alone -> shared-iterations with one iteration per VU, nothing -> one
// VU running one iteration) or the scenarios onto executor configurations, with k6's defaults
// filled and k6's validation messages; scenarios are returned by name.
func (o Options) Consolidate() ([]Scenario, error) {
	if len(o.Scenarios) == 0 {
		c := executor.Config{Set: map[string]bool{}}
		vus := int64(1)
		if o.VUs != nil {
			vus = *o.VUs
			c.Set["vus"] = true
		}
		c.VUs = vus
		switch {
		case o.Stages != nil:
			c.Executor = executor.RampingVUs
			c.StartVUs, c.Set["startVUs"] = vus, true
			for _, s := range o.Stages {
				c.Stages = append(c.Stages, executor.Stage{Duration: time.Duration(s.Duration), Target: s.Target})
			}
		case o.Iterations != nil:
			c.Executor = executor.SharedIterations
			c.Iterations, c.Set["iterations"] = *o.Iterations, true
			if o.Duration != nil {
				c.MaxDuration, c.Set["maxDuration"] = time.Duration(*o.Duration), true
			}
		case o.Duration != nil:
			c.Executor = executor.ConstantVUs
			c.Duration = time.Duration(*o.Duration)
		default:
			c.Executor = executor.SharedIterations
			c.Iterations, c.Set["iterations"] = vus, true
		}
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%w: scenario default: %w", ErrInvalid, err)
		}
		return []Scenario{{Name: "default", Config: c, Exec: "default"}}, nil
	}
	names := make([]string, 0, len(o.Scenarios))
	for n := range o.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Scenario, 0, len(names))
	for _, n := range names {
		if !scenarioName.MatchString(n) {
			return nil, fmt.Errorf("%w: scenario name %q must match %s", ErrInvalid, n, scenarioName)
		}
		s, err := decodeScenario(n, o.Scenarios[n])
		if err != nil {
			return nil, fmt.Errorf("%w: scenario %s: %w", ErrInvalid, n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

type rawScenario struct {
	Executor         string            `json:"executor"`
	StartTime        *Duration         `json:"startTime"`
	GracefulStop     *Duration         `json:"gracefulStop"`
	VUs              *int64            `json:"vus"`
	Iterations       *int64            `json:"iterations"`
	MaxDuration      *Duration         `json:"maxDuration"`
	Duration         *Duration         `json:"duration"`
	StartVUs         *int64            `json:"startVUs"`
	GracefulRampDown *Duration         `json:"gracefulRampDown"`
	Stages           []Stage           `json:"stages"`
	Rate             *int64            `json:"rate"`
	StartRate        *int64            `json:"startRate"`
	TimeUnit         *Duration         `json:"timeUnit"`
	PreAllocatedVUs  *int64            `json:"preAllocatedVUs"`
	MaxVUs           *int64            `json:"maxVUs"`
	Exec             string            `json:"exec"`
	Env              map[string]string `json:"env"`
	Tags             map[string]string `json:"tags"`
}

func decodeScenario(name string, b json.RawMessage) (Scenario, error) {
	var r rawScenario
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Scenario{}, err
	}
	c := executor.Config{Executor: r.Executor, Set: map[string]bool{}}
	ints := []struct {
		name string
		src  *int64
		dst  *int64
	}{
		{"vus", r.VUs, &c.VUs}, {"iterations", r.Iterations, &c.Iterations}, {"startVUs", r.StartVUs, &c.StartVUs},
		{"rate", r.Rate, &c.Rate}, {"startRate", r.StartRate, &c.StartRate},
		{"preAllocatedVUs", r.PreAllocatedVUs, &c.PreAllocatedVUs}, {"maxVUs", r.MaxVUs, &c.MaxVUs},
	}
	for _, f := range ints {
		if f.src != nil {
			*f.dst, c.Set[f.name] = *f.src, true
		}
	}
	durs := []struct {
		name string
		src  *Duration
		dst  *time.Duration
	}{
		{"startTime", r.StartTime, &c.StartTime}, {"gracefulStop", r.GracefulStop, &c.GracefulStop},
		{"maxDuration", r.MaxDuration, &c.MaxDuration}, {"duration", r.Duration, &c.Duration},
		{"gracefulRampDown", r.GracefulRampDown, &c.GracefulRampDown}, {"timeUnit", r.TimeUnit, &c.TimeUnit},
	}
	for _, f := range durs {
		if f.src != nil {
			*f.dst, c.Set[f.name] = time.Duration(*f.src), true
		}
	}
	for _, s := range r.Stages {
		c.Stages = append(c.Stages, executor.Stage{Duration: time.Duration(s.Duration), Target: s.Target})
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Scenario{}, err
	}
	exec := r.Exec
	if exec == "" {
		exec = "default"
	}
	return Scenario{Name: name, Config: c, Exec: exec, Env: r.Env, Tags: r.Tags}, nil
}

// ParsedThresholds parses every threshold key and expression, sorted by key.
func (o Options) ParsedThresholds() ([]threshold.Set, error) {
	keys := make([]string, 0, len(o.Thresholds))
	for k := range o.Thresholds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []threshold.Set
	for _, k := range keys {
		s, err := threshold.Parse(k, o.Thresholds[k])
		if err != nil {
			return nil, fmt.Errorf("%w: thresholds: %w", ErrInvalid, err)
		}
		out = append(out, s)
	}
	return out, nil
}
