package js

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/google/uuid"

	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

var customMetricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{1,128}$`)

// moduleMetrics is k6/metrics: Counter, Gauge, Rate, Trend, declared in the init context.
func (vu *VU) moduleMetrics() goja.Value {
	o := vu.RT.NewObject()
	for _, typ := range []struct{ ctor, typ string }{
		{"Counter", threshold.Counter}, {"Gauge", threshold.Gauge}, {"Rate", threshold.Rate}, {"Trend", threshold.Trend},
	} {
		must(o.Set(typ.ctor, func(call goja.ConstructorCall) *goja.Object {
			return vu.newMetric(call, typ.typ)
		}))
	}
	return o
}

func (vu *VU) newMetric(call goja.ConstructorCall, typ string) *goja.Object {
	if !vu.initCtx {
		vu.Throw("metrics must be declared in the init context")
	}
	name := call.Argument(0).String()
	if !customMetricName.MatchString(name) {
		vu.Throw("invalid metric name %q: it must match %s", name, customMetricName)
	}
	contains := metrics.ContainsDefault
	if typ == threshold.Trend && call.Argument(1).ToBoolean() {
		contains = metrics.ContainsTime
	}
	if prev, loaded := vu.S.custom.LoadOrStore(name, typ); loaded && prev != typ {
		vu.Throw("metric %q is already defined as a %s", name, prev)
	}
	if err := vu.S.Registry.Define(name, typ, contains); err != nil {
		vu.Throw("metric %q: %v", name, err)
	}
	obj := call.This
	must(obj.Set("name", name))
	must(obj.Set("add", func(c goja.FunctionCall) goja.Value {
		if vu.initCtx {
			vu.Throw("metric %s: add() can't be called in the init context", name)
		}
		arg := c.Argument(0)
		var v float64
		switch {
		case arg == nil || goja.IsUndefined(arg) || goja.IsNull(arg):
			v = math.NaN()
		default:
			if b, ok := arg.Export().(bool); ok {
				v = 0
				if b {
					v = 1
				}
			} else {
				v = arg.ToFloat()
			}
		}
		if math.IsNaN(v) {
			if vu.S.Throw {
				vu.Throw("metric %s: %s is an invalid value", name, arg)
			}
			vu.S.Log("WARN", fmt.Sprintf("the value %s added to metric %s is not a number; it was ignored", arg, name))
			return vu.RT.ToValue(false)
		}
		tags := vu.Tags()
		for k, val := range vu.tagsArg(c.Argument(1)) {
			tags[k] = val
		}
		switch typ {
		case threshold.Counter:
			vu.S.Registry.Add(name, v, tags)
		case threshold.Gauge:
			vu.S.Registry.Set(name, v, tags)
		case threshold.Rate:
			vu.S.Registry.Rate(name, v != 0, tags)
		case threshold.Trend:
			vu.S.Registry.Observe(name, v, contains, tags)
		}
		return vu.RT.ToValue(true)
	}))
	return nil
}

// CustomMetricType returns the type of a custom metric the script declared ("" when none).
func (s *Shared) CustomMetricType(name string) string {
	if t, ok := s.custom.Load(name); ok {
		return t.(string)
	}
	return ""
}

// moduleExecution is k6/execution: vu, scenario, instance and test, read live. Each of the four
// is a liveObject: its properties are computed when the script reads them, as getters would be,
// without a getter function object per property in every VU (18 native functions, each with its
// own property map, were a fifth of an idle VU's heap).
func (vu *VU) moduleExecution() goja.Value {
	rt := vu.RT
	o := rt.NewObject()
	var tags, meta *goja.Object // made on first read, then the same objects
	must(o.Set("vu", rt.NewDynamicObject(&liveObject{names: execVUNames, get: func(name string) goja.Value {
		switch name {
		case "idInInstance", "idInTest":
			return rt.ToValue(vu.ID)
		case "iterationInInstance", "iterationInScenario":
			return rt.ToValue(vu.Iter)
		case "tags", "metrics":
			if tags == nil {
				tags = rt.NewDynamicObject(&vuTags{vu: vu})
				meta = rt.NewObject()
				must(meta.Set("tags", tags))
				must(meta.Set("metadata", rt.NewObject()))
			}
			if name == "tags" {
				return tags
			}
			return meta
		}
		return nil
	}})))

	must(o.Set("scenario", rt.NewDynamicObject(&liveObject{names: execScenarioNames, get: func(name string) goja.Value {
		if vu.initCtx || vu.Scenario == "" {
			vu.Throw("getting scenario information outside of a scenario (in the init context, setup or teardown) is not supported")
		}
		info := vu.S.Scenarios[vu.Scenario]
		switch name {
		case "name":
			return rt.ToValue(vu.Scenario)
		case "executor":
			return rt.ToValue(info.Executor)
		case "startTime":
			return rt.ToValue(info.Start.UnixMilli())
		case "iterationInInstance", "iterationInTest":
			return rt.ToValue(vu.IterInScenario)
		case "progress":
			// The share of the scheduled duration elapsed (iteration executors: of maxDuration).
			if info.Duration <= 0 {
				return rt.ToValue(0)
			}
			return rt.ToValue(min(1, max(0, float64(time.Since(info.Start))/float64(info.Duration))))
		}
		return nil
	}})))

	c := vu.S.Counters
	must(o.Set("instance", rt.NewDynamicObject(&liveObject{names: execInstanceNames, get: func(name string) goja.Value {
		switch name {
		case "vusActive":
			return rt.ToValue(c.VUsActive.Load())
		case "vusInitialized":
			return rt.ToValue(c.VUsInitialized.Load())
		case "iterationsCompleted":
			return rt.ToValue(c.IterationsCompleted.Load())
		case "iterationsInterrupted":
			return rt.ToValue(c.IterationsInterrupted.Load())
		case "currentTestRunDuration":
			if c.Start.IsZero() {
				return rt.ToValue(0)
			}
			return rt.ToValue(float64(time.Since(c.Start).Microseconds()) / 1000)
		}
		return nil
	}})))

	var abort, fail goja.Value // made on first read, then the same functions
	must(o.Set("test", rt.NewDynamicObject(&liveObject{names: execTestNames, get: func(name string) goja.Value {
		switch name {
		case "abort":
			if abort == nil {
				abort = rt.ToValue(vu.testAbort)
			}
			return abort
		case "fail":
			if fail == nil {
				fail = rt.ToValue(vu.testFail)
			}
			return fail
		case "options":
			v, err := vu.parseJSON(string(vu.S.Options))
			if err != nil {
				return goja.Null()
			}
			return v
		}
		return nil
	}})))
	return o
}

// The properties of k6/execution's objects, in the order Object.keys lists them.
var (
	execVUNames       = []string{"idInInstance", "idInTest", "iterationInInstance", "iterationInScenario", "tags", "metrics"}
	execScenarioNames = []string{"name", "executor", "startTime", "iterationInInstance", "iterationInTest", "progress"}
	execInstanceNames = []string{"vusActive", "vusInitialized", "iterationsCompleted", "iterationsInterrupted", "currentTestRunDuration"}
	execTestNames     = []string{"abort", "fail", "options"}
)

// testAbort is exec.test.abort([reason]): the whole test stops with exit code 108.
func (vu *VU) testAbort(call goja.FunctionCall) goja.Value {
	if vu.initCtx {
		vu.Throw("test.abort() can't be called in the init context")
	}
	reason := "test aborted"
	if a := call.Argument(0); !goja.IsUndefined(a) {
		reason = "test aborted: " + a.String()
	}
	err := &AbortError{Reason: reason, Code: 108}
	if vu.S.Abort != nil {
		vu.S.Abort(reason, 108)
	}
	vu.RT.Interrupt(err)
	return goja.Undefined()
}

// testFail is exec.test.fail([reason]): the test goes on and ends failed (exit code 110).
func (vu *VU) testFail(call goja.FunctionCall) goja.Value {
	reason := "test failed"
	if a := call.Argument(0); !goja.IsUndefined(a) {
		reason = a.String()
	}
	if vu.S.Fail != nil {
		vu.S.Fail(reason)
	}
	return goja.Undefined()
}

// liveObject is a read-only object whose properties names are computed by get when read (a goja
// DynamicObject): assigning or deleting one fails (a TypeError in strict code, as for a getter
// without a setter).
type liveObject struct {
	names []string
	get   func(name string) goja.Value
}

func (o *liveObject) Get(key string) goja.Value {
	if !o.Has(key) {
		return nil
	}
	return o.get(key)
}

func (o *liveObject) Set(string, goja.Value) bool { return false }
func (o *liveObject) Has(key string) bool         { return slices.Contains(o.names, key) }
func (o *liveObject) Delete(string) bool          { return false }
func (o *liveObject) Keys() []string              { return slices.Clone(o.names) }

// vuTags is exec.vu.tags: the current tags, writable (a script's own tags apply to the VU's
// later samples).
type vuTags struct{ vu *VU }

func (t *vuTags) Get(key string) goja.Value {
	tags := t.vu.Tags()
	if v, ok := tags[key]; ok {
		return t.vu.RT.ToValue(v)
	}
	return nil
}

func (t *vuTags) Set(key string, val goja.Value) bool {
	if t.vu.scenarioTags == nil {
		t.vu.scenarioTags = map[string]string{}
	}
	t.vu.scenarioTags[key] = val.String()
	return true
}

func (t *vuTags) Has(key string) bool { _, ok := t.vu.Tags()[key]; return ok }

func (t *vuTags) Delete(key string) bool { delete(t.vu.scenarioTags, key); return true }

func (t *vuTags) Keys() []string {
	var out []string
	for k := range t.vu.Tags() {
		out = append(out, k)
	}
	return out
}

// sharedArray is one SharedArray's data, built once and shared by every VU as JSON.
type sharedArray struct {
	once  sync.Once
	items []string // each element as JSON
	err   error
}

// moduleData is k6/data: SharedArray(name, fn) runs fn once per test; each VU gets a frozen
// array of read-only copies.
func (vu *VU) moduleData() goja.Value {
	o := vu.RT.NewObject()
	must(o.Set("SharedArray", func(call goja.ConstructorCall) *goja.Object {
		if !vu.initCtx {
			vu.Throw("new SharedArray must be called in the init context")
		}
		name := call.Argument(0).String()
		if name == "" || goja.IsUndefined(call.Argument(0)) {
			vu.Throw("empty name provided to SharedArray's constructor")
		}
		fn, ok := goja.AssertFunction(call.Argument(1))
		if !ok {
			vu.Throw("a function is expected as the second argument of SharedArray's constructor")
		}
		v, _ := vu.S.arrays.LoadOrStore(name, &sharedArray{})
		sa := v.(*sharedArray)
		sa.once.Do(func() {
			r, err := fn(goja.Undefined())
			if err != nil {
				sa.err = err
				return
			}
			arr, ok := r.(*goja.Object)
			if !ok || arr.ClassName() != "Array" {
				sa.err = fmt.Errorf("only arrays can be made into SharedArray")
				return
			}
			n := int(arr.Get("length").ToInteger())
			for i := 0; i < n; i++ {
				s, err := vu.stringify(arr.Get(fmt.Sprint(i)))
				if err != nil {
					sa.err = err
					return
				}
				sa.items = append(sa.items, s)
			}
		})
		if sa.err != nil {
			panic(vu.RT.NewGoError(fmt.Errorf("SharedArray %s: %w", name, sa.err)))
		}
		items := make([]any, len(sa.items))
		for i, s := range sa.items {
			e, err := vu.parseJSON(s)
			if err != nil {
				panic(err)
			}
			deepFreeze(vu.RT, e)
			items[i] = e
		}
		arr := vu.RT.NewArray(items...)
		deepFreeze(vu.RT, arr)
		return arr
	}))
	return o
}

func deepFreeze(rt *goja.Runtime, v goja.Value) {
	o, ok := v.(*goja.Object)
	if !ok {
		return
	}
	for _, k := range o.Keys() {
		deepFreeze(rt, o.Get(k))
	}
	freeze, _ := goja.AssertFunction(rt.Get("Object").ToObject(rt).Get("freeze"))
	_, _ = freeze(goja.Undefined(), o)
}

// moduleEncoding is k6/encoding: b64encode/b64decode with "std", "rawstd", "url", "rawurl".
func (vu *VU) moduleEncoding() goja.Value {
	o := vu.RT.NewObject()
	enc := func(v goja.Value) *base64.Encoding {
		switch s := v.String(); {
		case goja.IsUndefined(v), s == "", s == "std":
			return base64.StdEncoding
		case s == "rawstd":
			return base64.RawStdEncoding
		case s == "url":
			return base64.URLEncoding
		case s == "rawurl":
			return base64.RawURLEncoding
		default:
			vu.Throw("unknown base64 encoding %q (std, rawstd, url, rawurl)", s)
			return nil
		}
	}
	must(o.Set("b64encode", func(call goja.FunctionCall) goja.Value {
		return vu.RT.ToValue(enc(call.Argument(1)).EncodeToString(vu.bytesOf(call.Argument(0))))
	}))
	must(o.Set("b64decode", func(call goja.FunctionCall) goja.Value {
		b, err := enc(call.Argument(1)).DecodeString(call.Argument(0).String())
		if err != nil {
			vu.Throw("b64decode: %v", err)
		}
		if call.Argument(2).String() == "s" {
			return vu.RT.ToValue(string(b))
		}
		return vu.RT.ToValue(vu.RT.NewArrayBuffer(b))
	}))
	return o
}

// bytesOf reads a string, ArrayBuffer or typed array argument.
func (vu *VU) bytesOf(v goja.Value) []byte {
	switch x := v.Export().(type) {
	case goja.ArrayBuffer:
		return x.Bytes()
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	if o, ok := v.(*goja.Object); ok {
		if buf := o.Get("buffer"); buf != nil {
			if ab, ok := buf.Export().(goja.ArrayBuffer); ok {
				off := int(o.Get("byteOffset").ToInteger())
				n := int(o.Get("byteLength").ToInteger())
				return ab.Bytes()[off : off+n]
			}
		}
	}
	return []byte(v.String())
}

// moduleJSLibUtils is the built-in equivalent of https://jslib.k6.io/k6-utils/*/index.js.
func (vu *VU) moduleJSLibUtils() goja.Value {
	o := vu.RT.NewObject()
	must(o.Set("randomIntBetween", func(lo, hi int64) int64 {
		if hi < lo {
			lo, hi = hi, lo
		}
		return lo + rand.Int64N(hi-lo+1)
	}))
	must(o.Set("randomItem", func(call goja.FunctionCall) goja.Value {
		arr := call.Argument(0).ToObject(vu.RT)
		n := arr.Get("length").ToInteger()
		if n == 0 {
			return goja.Undefined()
		}
		return arr.Get(fmt.Sprint(rand.Int64N(n)))
	}))
	must(o.Set("randomString", func(call goja.FunctionCall) goja.Value {
		n := int(call.Argument(0).ToInteger())
		chars := "abcdefghijklmnopqrstuvwxyz"
		if c := call.Argument(1); !goja.IsUndefined(c) && c.String() != "" {
			chars = c.String()
		}
		rs := []rune(chars)
		var b strings.Builder
		for range n {
			b.WriteRune(rs[rand.IntN(len(rs))])
		}
		return vu.RT.ToValue(b.String())
	}))
	must(o.Set("uuidv4", func() string { return uuid.NewString() }))
	must(o.Set("findBetween", func(content, left, right string) string {
		_, after, ok := strings.Cut(content, left)
		if !ok {
			return ""
		}
		before, _, ok := strings.Cut(after, right)
		if !ok {
			return ""
		}
		return before
	}))
	must(o.Set("normalDistributionStages", vu.unsupported("k6-utils normalDistributionStages")))
	return o
}
