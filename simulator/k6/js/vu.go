// Package js runs k6 scripts' JavaScript: one goja runtime per VU evaluating the shared compiled
// bundle (the init context), k6's globals (__ENV, __VU, __ITER, open, console, require) and k6's
// built-in modules (k6, k6/http, k6/metrics, k6/execution, k6/data, k6/encoding, k6/crypto, the jslib
// equivalents, and extension modules such as k6/x/wagate registered by the caller). Iterations
// run one at a time per VU and are interrupted when their context is cancelled.
package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"wagate/simulator/k6/bundle"
	"wagate/simulator/metrics"
)

// HTTPConfig are the k6 options that shape k6/http.
type HTTPConfig struct {
	Hosts                 map[string]string
	InsecureSkipTLSVerify bool
	MaxRedirects          int64
	DiscardResponseBodies bool
	NoCookiesReset        bool
	UserAgent             string
}

// ModuleFactory builds an extension module's exports for one VU (called once per VU that
// requires it, in the init context).
type ModuleFactory func(vu *VU) (goja.Value, error)

// Counters are the instance's execution counters k6/execution reads.
type Counters struct {
	Start                 time.Time
	VUsActive             atomic.Int64
	VUsInitialized        atomic.Int64
	IterationsCompleted   atomic.Int64
	IterationsInterrupted atomic.Int64
}

// Shared is what every VU of a test run shares: the compiled script, the metrics, the group tree,
// files opened in the init context, SharedArrays and the test-wide options.
type Shared struct {
	Bundle   *bundle.Bundle
	Env      map[string]string
	Registry *metrics.Registry
	Groups   *GroupTree
	HTTP     HTTPConfig
	// Tags are options.tags, added to every sample.
	Tags map[string]string
	// Console receives console.* output (k6 writes it to stderr).
	Console io.Writer
	// Options is the consolidated options as JSON, for exec.test.options.
	Options json.RawMessage
	// Throw makes metric.add with a bad value throw instead of warning (options.throw).
	Throw bool
	// Extensions are extra modules by import name ("k6/x/wagate").
	Extensions map[string]ModuleFactory
	// Abort stops the whole test (exec.test.abort, fail); code is the exit code.
	Abort func(reason string, code int)
	// Fail marks the test as failed without stopping it (exec.test.fail).
	Fail func(reason string)
	// Counters are the instance's execution counters.
	Counters *Counters
	// Scenarios describes each scenario for k6/execution (name -> executor name, start).
	Scenarios map[string]ScenarioInfo

	files  sync.Map // absolute path -> []byte
	arrays sync.Map // SharedArray name -> *sharedArray
	custom sync.Map // custom metric name -> type
	conmu  sync.Mutex
}

// ScenarioInfo is what k6/execution reports about a scenario.
type ScenarioInfo struct {
	Executor string
	Start    time.Time
	// Duration is the executor's scheduled duration (maxDuration for the iteration executors).
	Duration time.Duration
}

// AbortError is the interrupt value of exec.test.abort (and of an aborting threshold).
type AbortError struct {
	Reason string
	Code   int
}

func (e *AbortError) Error() string { return "test aborted: " + e.Reason }

// errIterationInterrupted is the interrupt value when an iteration's context ends.
var errIterationInterrupted = errors.New("iteration interrupted")

// ScriptError is an exception thrown by the script.
type ScriptError struct {
	Message string
	Stack   string
}

func (e *ScriptError) Error() string { return e.Message }

// VU is one virtual user: its own goja runtime with the script's exports.
type VU struct {
	S  *Shared
	RT *goja.Runtime
	// ID is __VU (0 for the init, setup and teardown VUs).
	ID      int64
	exports *goja.Object
	modules map[string]goja.Value
	initCtx bool

	// State of the current call.
	ctx            context.Context
	Scenario       string
	Iter           int64 // __ITER: this VU's iterations in the current scenario
	IterInScenario int64
	scenarioTags   map[string]string
	groupPath      string
	jarMu          sync.Mutex     // guards jar: http.batch's requests run at once
	jar            *cookiejar.Jar // nil until the current iteration needs it (cookies())
	// tags are the current call's sample tags (Tags), built once per scenario and group path.
	tags                   metrics.Tags
	tagsScenario, tagsPath string
	client                 *httpClient
	data                   goja.Value
	dataJSON               string
	// ends run when the current call returns (AtCallEnd).
	ends []func()
	// sleepTimer serves every sleep of the VU (one at a time: a VU runs one call at a time).
	sleepTimer *time.Timer
}

// NewVU creates a VU's runtime and evaluates the init context in it.
func NewVU(ctx context.Context, s *Shared, id int64) (*VU, error) {
	rt := goja.New()
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("js", true))
	vu := &VU{S: s, RT: rt, ID: id, modules: map[string]goja.Value{}, initCtx: true, ctx: ctx}
	env := rt.NewObject()
	for k, v := range s.Env {
		_ = env.Set(k, v)
	}
	must(rt.Set("__ENV", env))
	must(rt.Set("__VU", id))
	must(rt.Set("__ITER", 0))
	must(rt.Set("global", rt.GlobalObject()))
	must(rt.Set("open", vu.open))
	must(rt.Set("console", vu.console()))
	fnv, err := rt.RunProgram(s.Bundle.Program)
	if err != nil {
		return nil, vu.scriptError(err)
	}
	fn, ok := goja.AssertFunction(fnv)
	if !ok {
		return nil, fmt.Errorf("init: the bundle did not evaluate to a function")
	}
	module := rt.NewObject()
	exports := rt.NewObject()
	must(module.Set("exports", exports))
	if _, err := fn(goja.Undefined(), module, exports, rt.ToValue(vu.require)); err != nil {
		return nil, vu.scriptError(err)
	}
	vu.exports = module.Get("exports").ToObject(rt)
	vu.initCtx = false
	s.Counters.VUsInitialized.Add(1)
	return vu, nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Export returns the script's export name (undefined when absent).
func (vu *VU) Export(name string) goja.Value {
	v := vu.exports.Get(name)
	if v == nil {
		return goja.Undefined()
	}
	return v
}

// HasFunction reports whether the script exports a function called name.
func (vu *VU) HasFunction(name string) bool {
	_, ok := goja.AssertFunction(vu.Export(name))
	return ok
}

// OptionsJSON returns the script's exported options as JSON ("" when none).
func (vu *VU) OptionsJSON() (string, error) {
	v := vu.Export("options")
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return "", nil
	}
	return vu.stringify(v)
}

func (vu *VU) stringify(v goja.Value) (string, error) {
	var out string
	err := vu.try(func() {
		stringify, _ := goja.AssertFunction(vu.RT.Get("JSON").ToObject(vu.RT).Get("stringify"))
		r, err := stringify(goja.Undefined(), v)
		if err != nil {
			panic(err)
		}
		if goja.IsUndefined(r) {
			out = ""
			return
		}
		out = r.String()
	})
	return out, err
}

func (vu *VU) parseJSON(s string) (goja.Value, error) {
	if s == "" {
		return goja.Undefined(), nil
	}
	var out goja.Value
	err := vu.try(func() {
		parse, _ := goja.AssertFunction(vu.RT.Get("JSON").ToObject(vu.RT).Get("parse"))
		r, err := parse(goja.Undefined(), vu.RT.ToValue(s))
		if err != nil {
			panic(err)
		}
		out = r
	})
	return out, err
}

func (vu *VU) try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = vu.scriptError(e)
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// scriptError turns a goja error into a ScriptError, an *AbortError or an interruption.
func (vu *VU) scriptError(err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if a, ok := ie.Value().(*AbortError); ok {
			return a
		}
		if e, ok := ie.Value().(error); ok {
			return e
		}
		return err
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		msg := ex.Value().String()
		if o, ok := ex.Value().(*goja.Object); ok {
			if a, ok := o.Export().(*AbortError); ok {
				return a
			}
			if s := o.Get("stack"); s != nil && !goja.IsUndefined(s) {
				return &ScriptError{Message: msg, Stack: s.String()}
			}
		}
		return &ScriptError{Message: msg, Stack: ex.String()}
	}
	return err
}

// SetSetupData gives the VU setup()'s result, as JSON; each VU parses its own copy.
func (vu *VU) SetSetupData(dataJSON string) error {
	if vu.dataJSON == dataJSON && vu.data != nil {
		return nil
	}
	v, err := vu.parseJSON(dataJSON)
	if err != nil {
		return fmt.Errorf("setup data: %w", err)
	}
	vu.data, vu.dataJSON = v, dataJSON
	return nil
}

// Call runs the exported function name once with the setup data (setup, teardown,
// handleSummary use CallValue). The call is interrupted when ctx ends.
func (vu *VU) Call(ctx context.Context, name string, args ...goja.Value) (goja.Value, error) {
	fn, ok := goja.AssertFunction(vu.Export(name))
	if !ok {
		return nil, fmt.Errorf("function %q not found in exports", name)
	}
	vu.ctx = ctx
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		vu.RT.Interrupt(errIterationInterrupted)
		close(interrupted)
	})
	defer func() {
		if !stop() {
			// The interrupt fired (or is firing): wait for it, then clear it for the next call.
			<-interrupted
			vu.RT.ClearInterrupt()
		}
	}()
	defer vu.callEnded()
	v, err := fn(goja.Undefined(), args...)
	if err != nil {
		return nil, vu.scriptError(err)
	}
	return vu.settle(name, v)
}

// AtCallEnd registers f to run when the VU's current call (an iteration, setup, teardown) returns,
// however it ends: extension modules end there the background work the call started (k6/x/wagate's
// background pollers), so nothing of an iteration outlives it. Functions run last registered first.
func (vu *VU) AtCallEnd(f func()) { vu.ends = append(vu.ends, f) }

// callEnded runs and forgets the functions registered with AtCallEnd.
func (vu *VU) callEnded() {
	for len(vu.ends) > 0 {
		f := vu.ends[len(vu.ends)-1]
		vu.ends = vu.ends[:len(vu.ends)-1]
		f()
	}
}

// settle unwraps an async function's promise: its jobs ran when the call returned, so it is
// fulfilled (its value is the result) or rejected (the exception); one still pending waits on
// something only an event loop would resolve, which this runtime does not have.
func (vu *VU) settle(name string, v goja.Value) (goja.Value, error) {
	p, ok := v.Export().(*goja.Promise)
	if !ok {
		return v, nil
	}
	switch p.State() {
	case goja.PromiseStateFulfilled:
		return p.Result(), nil
	case goja.PromiseStateRejected:
		r := p.Result()
		msg := r.String()
		if o, ok := r.(*goja.Object); ok {
			if st := o.Get("stack"); st != nil && !goja.IsUndefined(st) {
				return nil, &ScriptError{Message: msg, Stack: st.String()}
			}
		}
		return nil, &ScriptError{Message: msg}
	}
	return nil, &ScriptError{Message: fmt.Sprintf("%s() returned a promise that is still pending: timers and asynchronous APIs (k6/timers, http.asyncRequest) are not supported by this runtime", name)}
}

// Iteration is one iteration's identity.
type Iteration struct {
	Scenario       string
	Exec           string
	Iter           int64 // this VU's iteration in the scenario (__ITER)
	IterInScenario int64
	Tags           map[string]string // the scenario's tags
	Env            map[string]string // the scenario's env (added to __ENV)
}

// RunIteration runs one iteration of it.Exec with the setup data, resetting the cookie jar
// first (unless noCookiesReset). It returns nil, a *ScriptError (the iteration threw), an
// *AbortError, or errIterationInterrupted-wrapping context errors when ctx ended it.
func (vu *VU) RunIteration(ctx context.Context, it Iteration) error {
	if vu.Scenario != it.Scenario {
		vu.Scenario = it.Scenario
		vu.scenarioTags = map[string]string{}
		for k, v := range vu.S.Tags {
			vu.scenarioTags[k] = v
		}
		for k, v := range it.Tags {
			vu.scenarioTags[k] = v
		}
		vu.scenarioTags["scenario"] = it.Scenario
		if len(it.Env) > 0 {
			env := vu.RT.Get("__ENV").ToObject(vu.RT)
			for k, v := range it.Env {
				_ = env.Set(k, v)
			}
		}
	}
	vu.Iter, vu.IterInScenario, vu.groupPath = it.Iter, it.IterInScenario, ""
	_ = vu.RT.Set("__ITER", it.Iter)
	if !vu.S.HTTP.NoCookiesReset {
		vu.jarMu.Lock()
		vu.jar = nil // a new jar on first use: iterations that make no HTTP request allocate none
		vu.jarMu.Unlock()
	}
	data := vu.data
	if data == nil {
		data = goja.Undefined()
	}
	_, err := vu.Call(ctx, it.Exec, data)
	if err != nil && ctx.Err() != nil && !isAbort(err) {
		return fmt.Errorf("%w: %w", errIterationInterrupted, ctx.Err())
	}
	return err
}

func isAbort(err error) bool {
	var a *AbortError
	return errors.As(err, &a)
}

// IsInterrupted reports whether err is an iteration ended by its context.
func IsInterrupted(err error) bool { return errors.Is(err, errIterationInterrupted) }

// Context is the context of the VU's current call (the init context's outside calls).
func (vu *VU) Context() context.Context { return vu.ctx }

// InInit reports whether the VU is evaluating its init context.
func (vu *VU) InInit() bool { return vu.initCtx }

// Tags returns the tags every sample of the current call carries: options.tags, the scenario's
// tags, scenario and group. The map is the caller's to change.
func (vu *VU) Tags() metrics.Tags {
	t := make(metrics.Tags, len(vu.scenarioTags)+2)
	for k, v := range vu.S.Tags {
		t[k] = v
	}
	for k, v := range vu.scenarioTags {
		t[k] = v
	}
	t["group"] = vu.groupPath
	return t
}

// SampleTags is Tags shared, for callers that only read it (extension modules such as
// k6/x/wagate pass it to their metrics): built once per scenario and group path, not per call.
// It must not be changed.
func (vu *VU) SampleTags() metrics.Tags {
	if vu.tags == nil || vu.tagsScenario != vu.Scenario || vu.tagsPath != vu.groupPath {
		vu.tags, vu.tagsScenario, vu.tagsPath = vu.Tags(), vu.Scenario, vu.groupPath
	}
	return vu.tags
}

// cookies is the current iteration's cookie jar, made on first use (by one of http.batch's
// concurrent requests as well).
func (vu *VU) cookies() *cookiejar.Jar {
	vu.jarMu.Lock()
	defer vu.jarMu.Unlock()
	if vu.jar == nil {
		vu.jar, _ = cookiejar.New(nil)
	}
	return vu.jar
}

// GroupPath is the current group path ("" at the root, "::a::b" inside groups).
func (vu *VU) GroupPath() string { return vu.groupPath }

// Throw raises a JavaScript Error with message in the VU's runtime.
func (vu *VU) Throw(format string, args ...any) {
	panic(vu.RT.NewGoError(fmt.Errorf(format, args...)))
}

func (vu *VU) require(name string) goja.Value {
	if v, ok := vu.modules[name]; ok {
		return v
	}
	var v goja.Value
	var err error
	switch name {
	case "k6":
		v = vu.moduleK6()
	case "k6/http":
		v = vu.moduleHTTP()
	case "k6/metrics":
		v = vu.moduleMetrics()
	case "k6/execution":
		v = vu.moduleExecution()
	case "k6/data":
		v = vu.moduleData()
	case "k6/encoding":
		v = vu.moduleEncoding()
	case "k6/crypto":
		v = vu.moduleCrypto()
	case bundle.JSLibSummary:
		v = vu.moduleJSLibSummary()
	case bundle.JSLibUtils:
		v = vu.moduleJSLibUtils()
	default:
		f, ok := vu.S.Extensions[name]
		if !ok {
			vu.Throw("unsupported module %q: this runtime provides k6, k6/http, k6/metrics, k6/execution, k6/data, k6/encoding, k6/crypto%s", name, extensionList(vu.S.Extensions))
		}
		v, err = f(vu)
		if err != nil {
			vu.Throw("module %s: %v", name, err)
		}
	}
	v = vu.inheriting(v)
	vu.modules[name] = v
	return v
}

// inheriting returns what require gives a script for module m: an object without own properties
// that inherits m's, so that esbuild's import helper has nothing to copy. An import of a module's
// default or namespace (import http from "k6/http", import * as k6 from "k6") becomes
// __toESM(require(name)), which copied every own property of what require returned onto a new
// object as a getter: an arrow function, its scope and a property per export of each such
// module, made in every VU at its init (and an export read through that object, k6.sleep(1),
// called its getter). The helper's object inherits from the same prototype, so the script finds
// each export there (for...in lists them; Object.keys of a module lists none). A module that is
// not a plain object is returned as is.
func (vu *VU) inheriting(m goja.Value) goja.Value {
	o, ok := m.(*goja.Object)
	if !ok || o.ClassName() != "Object" {
		return m
	}
	return vu.RT.CreateObject(o)
}

func extensionList(m map[string]ModuleFactory) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return ", " + strings.Join(names, ", ")
}

// unsupported returns a function that throws, naming what is not supported.
func (vu *VU) unsupported(what string) func(goja.FunctionCall) goja.Value {
	return func(goja.FunctionCall) goja.Value {
		vu.Throw("%s is not supported by wagate's k6 runtime", what)
		return nil
	}
}

// open reads a file in the init context, relative to the script's folder; "b" returns an
// ArrayBuffer. Each file is read once per test run.
func (vu *VU) open(name string, mode ...string) goja.Value {
	if !vu.initCtx {
		vu.Throw("open() can only be called in the init context")
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(vu.S.Bundle.Dir, p)
	}
	var b []byte
	if c, ok := vu.S.files.Load(p); ok {
		b = c.([]byte)
	} else {
		var err error
		b, err = os.ReadFile(p)
		if err != nil {
			vu.Throw("open %s: %v", name, err)
		}
		vu.S.files.Store(p, b)
	}
	if len(mode) > 0 && mode[0] == "b" {
		return vu.RT.ToValue(vu.RT.NewArrayBuffer(append([]byte(nil), b...)))
	}
	return vu.RT.ToValue(string(b))
}

func (vu *VU) console() *goja.Object {
	o := vu.RT.NewObject()
	for _, lv := range []struct{ name, level string }{
		{"log", "INFO"}, {"info", "INFO"}, {"debug", "DEBU"}, {"warn", "WARN"}, {"error", "ERRO"},
	} {
		must(o.Set(lv.name, func(call goja.FunctionCall) goja.Value {
			parts := make([]string, len(call.Arguments))
			for i, a := range call.Arguments {
				parts[i] = vu.format(a)
			}
			vu.S.Log(lv.level, strings.Join(parts, " "), "source=console")
			return goja.Undefined()
		}))
	}
	return o
}

// format renders a console argument as k6 does: strings as they are, objects as JSON.
func (vu *VU) format(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if o, ok := v.(*goja.Object); ok {
		if _, isFn := goja.AssertFunction(o); !isFn && o.ClassName() != "Error" {
			if s, err := vu.stringify(o); err == nil && s != "" {
				return s
			}
		}
	}
	return v.String()
}

// Log writes one k6-style log line (INFO[0003] message  source=console) to the console writer.
func (s *Shared) Log(level, msg string, fields ...string) {
	if s.Console == nil {
		return
	}
	secs := 0
	if s.Counters != nil && !s.Counters.Start.IsZero() {
		secs = int(time.Since(s.Counters.Start).Seconds())
	}
	line := fmt.Sprintf("%s[%04d] %s", level, secs, msg)
	if len(fields) > 0 {
		line += "  " + strings.Join(fields, " ")
	}
	s.conmu.Lock()
	fmt.Fprintln(s.Console, line)
	s.conmu.Unlock()
}
