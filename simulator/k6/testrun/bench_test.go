package testrun

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"wagate/reports"
	"wagate/simulator/k6/bundle"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/k6/wagate/wagatejs"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// apiWorld is a wagate.World over a bare gateway API client (no phones, no Laravel view): enough
// for the calls the benchmarks make (status).
type apiWorld struct{ env *user.Env }

func (w apiWorld) Env() *user.Env { return w.env }
func (w apiWorld) GroundTruth(context.Context) (reports.GroundTruth, error) {
	return reports.GroundTruth{}, nil
}

// statusServer answers GET /sessions/{id} as the gateway does, with a small JSON body.
func statusServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"session_id":"s1","status":"connected"}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchShared compiles src into what its VUs share, with k6/x/wagate over reg and api.
func benchShared(b *testing.B, src string, env map[string]string, api *user.API, reg *metrics.Registry) *js.Shared {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.js")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	return benchScript(b, path, env, api, reg)
}

// benchScript compiles the script at path into what its VUs share, with k6/x/wagate over reg and
// api.
func benchScript(b *testing.B, path string, env map[string]string, api *user.API, reg *metrics.Registry) *js.Shared {
	b.Helper()
	bun, err := bundle.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	ext := &wagatejs.Extension{}
	ext.SetDriver(wagate.New(apiWorld{env: &user.Env{API: api, Reg: reg}}, 0))
	s := &js.Shared{Bundle: bun, Env: env, Registry: reg, Groups: js.NewGroupTree(), Counters: &js.Counters{},
		HTTP: js.HTTPConfig{MaxRedirects: 10}, Scenarios: map[string]js.ScenarioInfo{},
		Extensions: map[string]js.ModuleFactory{wagatejs.ModuleName: ext.Module}}
	return s
}

// benchVU returns one initialized VU of src.
func benchVU(b *testing.B, src string, env map[string]string, api *user.API, reg *metrics.Registry) *js.VU {
	b.Helper()
	vu, err := js.NewVU(context.Background(), benchShared(b, src, env, api, reg), 1)
	if err != nil {
		b.Fatal(err)
	}
	return vu
}

func runIterations(b *testing.B, vu *js.VU) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := vu.RunIteration(ctx, js.Iteration{Scenario: "default", Exec: "default", Iter: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusRequest compares the cost of one gateway status request made by the native Go
// users (simulator/user's API client), by a k6 script through k6/x/wagate, and by a k6 script
// through k6/http, against the same loopback server; k6-wagate-calls makes all its calls in one
// iteration (the module bridge without the per-iteration overhead). The ratio js/native is the
// runtime's CPU overhead per request (the server's share, identical in all, dilutes it slightly).
func BenchmarkStatusRequest(b *testing.B) {
	b.Run("native", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
		tags := metrics.Tags{"scenario": "default"}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := api.Status(ctx, "s1", tags); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("k6-wagate", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
		vu := benchVU(b, `import wagate from "k6/x/wagate";
export default function () { if (wagate.status("s1") !== "connected") throw new Error("status"); }`, nil, api, reg)
		runIterations(b, vu)
	})
	// The module bridge alone: b.N status calls in one iteration (no per-iteration overhead).
	b.Run("k6-wagate-calls", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
		vu := benchVU(b, `import wagate from "k6/x/wagate";
export default function () {
  for (let i = 0; i < Number(__ENV.CALLS); i++) if (wagate.status("s1") !== "connected") throw new Error("status");
}`, map[string]string{"CALLS": fmt.Sprint(b.N)}, api, reg)
		b.ReportAllocs()
		b.ResetTimer()
		if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
			b.Fatal(err)
		}
	})
	// The status polls k6-cost's workload makes: a native poller (its request and tags built once)
	// against k6/x/wagate's pollStatus called in one iteration.
	b.Run("native-poll", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
		p := api.NewPoller(context.Background(), user.EndpointStatus, "s1", metrics.Tags{"scenario": "default"})
		defer p.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := p.Poll(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("k6-wagate-poll-calls", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
		vu := benchVU(b, `import wagate from "k6/x/wagate";
export default function () {
  for (let i = 0; i < Number(__ENV.CALLS); i++) wagate.pollStatus("s1");
}`, map[string]string{"CALLS": fmt.Sprint(b.N)}, api, reg)
		b.ReportAllocs()
		b.ResetTimer()
		if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
			b.Fatal(err)
		}
	})
	// A script's own poll loop, lib/laravel-app.js's pairAndLive with pollsInline (k6-cost -e
	// POLLS=inline), in two shapes: the countdown it had (seven timers counted down and a
	// Math.min of seven on every wake) and its deadlines (a wake reads the poll's deadline and
	// the soonest of the others). sleep(0) returns at once, so these measure the loop's work
	// per poll in a warm cache; in k6-cost each wake also finds what it reads out of the caches,
	// so there the values a wake touches weigh more than here.
	for _, loop := range []struct{ name, src string }{
		{"k6-wagate-inline-poll-countdown", `import wagate from "k6/x/wagate";
import { sleep } from "k6";
export default function () {
  let polls = Number(__ENV.CALLS), nextPoll = 0, nextMsg = Infinity, nextIn = Infinity, nextDrop = Infinity, nextReplace = Infinity, nextRemote = Infinity, left = 1e9;
  for (;;) {
    const step = Math.min(left, nextMsg, nextIn, nextDrop, nextReplace, nextRemote, nextPoll);
    if (!isFinite(step)) return;
    sleep(step);
    left -= step; nextMsg -= step; nextIn -= step; nextDrop -= step; nextReplace -= step; nextRemote -= step; nextPoll -= step;
    if (left <= 0) return;
    if (nextPoll <= 0) {
      if (polls-- <= 0) return;
      wagate.pollStatus("s1");
      nextPoll = 0 * (1 - wagate.pollJitter + 2 * wagate.pollJitter * Math.random());
    }
  }
}`},
		{"k6-wagate-inline-poll-deadlines", `import wagate from "k6/x/wagate";
import { sleep } from "k6";
export default function () {
  const pollStatus = wagate.pollStatus, end = 1e9, pollLow = 0, pollSpan = 0;
  let polls = Number(__ENV.CALLS), pollAt = 0, t = 0, msgAt = Infinity, other = Math.min(end, msgAt);
  for (;;) {
    const next = pollAt < other ? pollAt : other;
    if (next === Infinity) return;
    sleep(next - t);
    t = next;
    if (t >= end) return;
    if (t >= pollAt) {
      if (polls-- <= 0) return;
      pollStatus("s1");
      pollAt = t + pollLow + pollSpan * Math.random();
    }
    if (t < other) continue;
    other = Math.min(end, msgAt);
  }
}`},
	} {
		b.Run(loop.name, func(b *testing.B) {
			srv := statusServer(b)
			reg := metrics.NewRegistry(nil)
			api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
			vu := benchVU(b, loop.src, map[string]string{"CALLS": fmt.Sprint(b.N)}, api, reg)
			b.ReportAllocs()
			b.ResetTimer()
			if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("k6-http", func(b *testing.B) {
		srv := statusServer(b)
		reg := metrics.NewRegistry(nil)
		vu := benchVU(b, `import http from "k6/http";
export default function () { if (http.get(__ENV.BASE + "/sessions/s1").status !== 200) throw new Error("status"); }`,
			map[string]string{"BASE": srv.URL}, user.NewAPI(srv.URL, "t", &http.Client{}, reg), reg)
		runIterations(b, vu)
	})
}

// BenchmarkVUMemory reports the heap each VU of a wagate lifecycle script keeps after its init
// context and one iteration (B/VU), the runtime's own memory beyond the world. Run it with
// -benchtime 1x: each round initializes 200 VUs.
func BenchmarkVUMemory(b *testing.B) {
	const vus = 200
	srv := statusServer(b)
	reg := metrics.NewRegistry(nil)
	api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
	src := `import wagate from "k6/x/wagate";
import http from "k6/http";
import { check, group, sleep } from "k6";
import { Trend } from "k6/metrics";
const lag = new Trend("lifecycle_lag", true);
export const options = { vus: 1000, duration: "10m" };
export default function () {
  group("status", () => {
    const st = wagate.status("s1");
    check(st, { "connected": (s) => s === "connected" });
    lag.add(1);
  });
}`
	shared := benchShared(b, src, nil, api, reg)
	for range b.N {
		reportVUHeap(b, shared, vus, true)
	}
}

// reportVUHeap makes vus VUs of shared (each running one iteration when iterate) and reports the
// heap each keeps once they are made (B/VU, after a GC) and what making them allocated
// (alloc-B/VU, allocs/VU, the iteration's included when iterate).
func reportVUHeap(b *testing.B, shared *js.Shared, vus int, iterate bool) {
	b.Helper()
	keep := make([]*js.VU, 0, vus)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range vus {
		vu, err := js.NewVU(context.Background(), shared, int64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		if iterate {
			if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
				b.Fatal(err)
			}
		}
		keep = append(keep, vu)
	}
	runtime.ReadMemStats(&after)
	allocated, allocs := after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(vus), "B/VU")
	b.ReportMetric(float64(allocated)/float64(vus), "alloc-B/VU")
	b.ReportMetric(float64(allocs)/float64(vus), "allocs/VU")
	runtime.KeepAlive(keep)
}

// BenchmarkLifecycleVUInit initializes VUs of scenarios/k6/lifecycle-1000.js itself, the script
// k6-cost measures (its init context: the lib, k6/x/wagate, k6, k6/execution), and reports the
// heap each keeps after its init (B/VU, what k6_cost_vu_init_memory_bytes reads at 1000 VUs)
// and what its init allocated (alloc-B/VU, allocs/VU). Run it with -benchtime 1x: each round
// initializes 300 VUs.
func BenchmarkLifecycleVUInit(b *testing.B) {
	const vus = 300
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scenarios", "k6", "lifecycle-1000.js"))
	if err != nil {
		b.Fatal(err)
	}
	reg := metrics.NewRegistry(nil)
	api := user.NewAPI("http://127.0.0.1:1", "t", &http.Client{}, reg)
	shared := benchScript(b, script, map[string]string{"USERS": "1000"}, api, reg)
	for range b.N {
		reportVUHeap(b, shared, vus, false)
	}
}

// BenchmarkGlobalBuiltins measures a script's reads of the built-ins bundle binds at compile time
// (Math, Infinity): one op is one round of a loop reading Math.random and Infinity, as a poll
// loop's wake does. No request is made: this is the interpreter alone, in a warm cache.
func BenchmarkGlobalBuiltins(b *testing.B) {
	reg := metrics.NewRegistry(nil)
	vu := benchVU(b, `export default function () {
  let x = 0;
  for (let i = Number(__ENV.CALLS); i > 0; i--) if (Math.random() < Infinity) x++;
  if (x !== Number(__ENV.CALLS)) throw new Error("lost rounds");
}`, map[string]string{"CALLS": fmt.Sprint(b.N)}, user.NewAPI("http://127.0.0.1:1", "t", &http.Client{}, reg), reg)
	b.ReportAllocs()
	b.ResetTimer()
	if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInlinePollWakes runs scenarios/k6/lib/laravel-app.js's live loop itself (pollsInline:
// the status polled from the VU's own loop, nothing else due) in 1000 VUs at once, as k6-cost's
// script half does: the VUs' goja runtimes are far larger than the CPU's caches, so each wake
// finds what it reads of its VU cold, which the single-VU loops of BenchmarkStatusRequest do not
// show. Polls go to a loopback server every pollWakeInterval; each VU polls b.N/1000 times.
// vu-cpu-ns/poll is the CPU of the VUs' goroutines (a CPU profile's samples labelled load=vu, as
// k6-cost counts them: the interpreter, the sleeps and the polls' client side) per status poll,
// cpu-ns/poll the whole process's (getrusage: the server and the GC too); ns/op is wall time,
// mostly sleeping. Run it with -benchtime 50000x (about 10 s of load and 1 s of VU init; the
// profile's 10 ms samples make vu-cpu-ns/poll good to about 10%).
func BenchmarkInlinePollWakes(b *testing.B) {
	const vus = 1000
	const pollWakeInterval = 0.2 // seconds
	lib, err := filepath.Abs(filepath.Join("..", "..", "..", "scenarios", "k6", "lib", "laravel-app.js"))
	if err != nil {
		b.Fatal(err)
	}
	polls := (b.N + vus - 1) / vus
	lifetime := float64(polls) * pollWakeInterval
	src := fmt.Sprintf(`import { live } from %q;
const b = { pollsInline: true, statusPollInterval: %g, sessionLifetime: [%g, %g], logoutAtEnd: 0, messagesPerMinute: 0 };
export default function () { live("s" + __VU, b, Math.random() * b.statusPollInterval); }`, lib, pollWakeInterval, lifetime, lifetime)
	srv := statusServer(b)
	reg := metrics.NewRegistry(nil)
	api := user.NewAPI(srv.URL, "t", &http.Client{}, reg)
	shared := benchShared(b, src, nil, api, reg)
	all := make([]*js.VU, vus)
	for i := range all {
		if all[i], err = js.NewVU(context.Background(), shared, int64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		b.Skipf("a CPU profile is already running (-cpuprofile?): %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := rusageCPU(b)
	var wg sync.WaitGroup
	for _, vu := range all {
		wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels(vuLabel, vuLabelValue), func(ctx context.Context) {
				if err := vu.RunIteration(ctx, js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
					b.Error(err)
				}
			})
		})
	}
	wg.Wait()
	cpu := rusageCPU(b) - cpu0
	b.StopTimer()
	pprof.StopCPUProfile()
	n := reg.Total("http_reqs", nil)
	if n < float64(b.N)*0.8 {
		b.Fatalf("%v polls, want about %d", n, b.N)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/poll")
	b.ReportMetric(float64(labelledCPU(b, &prof).Nanoseconds())/n, "vu-cpu-ns/poll")
}

// The pprof label of the VUs' goroutines in BenchmarkInlinePollWakes (k6-cost's: load=vu).
const vuLabel, vuLabelValue = "load", "vu"

// labelledCPU is the CPU of a profile's samples labelled vuLabel=vuLabelValue.
func labelledCPU(b *testing.B, prof *bytes.Buffer) time.Duration {
	p, err := profile.Parse(prof)
	if err != nil {
		b.Fatal(err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		b.Fatal("cpu profile: no cpu/nanoseconds samples")
	}
	var sum int64
	for _, s := range p.Sample {
		if slices.Contains(s.Label[vuLabel], vuLabelValue) {
			sum += s.Value[idx]
		}
	}
	return time.Duration(sum)
}

// rusageCPU is the process's user and system CPU so far.
func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
