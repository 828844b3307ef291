package whatsapp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"wagate/gateway/event"
	"wagate/gateway/internal/sysmon"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
	"wagate/gateway/whatsapp"
	"wagate/simulator/fakewa"
)

// The idle cost of a connected session is measured with fakewa in a child process (this test
// binary run again with idleCostFakewaEnv set), so that this process holds only what the gateway
// holds: the session manager, the whatsmeow clients and their store. The figures are counts and
// bytes after a GC, not times: they do not move with the machine's load.
const idleCostFakewaEnv = "WAGATE_IDLECOST_FAKEWA"

// idleCostFakewaReady is the line the child prints once fakewa serves.
type idleCostFakewaReady struct {
	Control string `json:"control"`
}

func init() {
	if os.Getenv(idleCostFakewaEnv) != "1" {
		return
	}
	if err := serveIdleCostFakewa(os.Stdout, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "idlecost fakewa:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveIdleCostFakewa runs fakewa and its control API on loopback until stdin closes (the
// benchmark ended or died).
func serveIdleCostFakewa(stdout io.Writer, stdin io.Reader) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := fakewa.New(fakewa.Config{RootKey: fakewa.GenerateRootKey(), Receipts: fakewa.ReceiptsNone, Logger: logger})
	if err != nil {
		return fmt.Errorf("new fakewa: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("start fakewa: %w", err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	api := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go api.Serve(ln)
	defer api.Close()
	if err := json.NewEncoder(stdout).Encode(idleCostFakewaReady{Control: ln.Addr().String()}); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

// startIdleCostFakewa starts the fakewa child and returns its control client and process id.
func startIdleCostFakewa(tb testing.TB) (*fakewa.ControlClient, int) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), idleCostFakewaEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		tb.Fatalf("fakewa child did not start: %v", err)
	}
	var ready idleCostFakewaReady
	if err := json.Unmarshal(line, &ready); err != nil {
		tb.Fatalf("fakewa child said %q: %v", line, err)
	}
	return fakewa.NewControlClient(ready.Control), cmd.Process.Pid
}

// discardDelivery accepts every event and keeps nothing but counts: the delivery's own costs are
// not part of a session's.
type discardDelivery struct {
	accepted  atomic.Int64
	connected atomic.Int64 // status events "connected"
}

func (d *discardDelivery) Deliver(ctx context.Context, ev event.Event) error {
	d.accepted.Add(1)
	if ev.Kind == event.KindStatus && ev.Payload == string(laravel.StatusConnected) {
		d.connected.Add(1)
	}
	return nil
}

func (d *discardDelivery) Close(ctx context.Context) error { return nil }

// idleCostWorld is a gateway's session layer on the real whatsmeow driver, dialling a fakewa
// child process.
type idleCostWorld struct {
	tb        testing.TB
	wa        *fakewa.ControlClient
	fakewaPID int
	m         *session.Manager
	sink      *discardDelivery
	seq       int
}

func newIdleCostWorld(tb testing.TB) *idleCostWorld {
	return newIdleCostWorldWith(tb, session.Config{})
}

// newIdleCostWorldWith is newIdleCostWorld with the session layer's settings cfg (its Logger is
// the world's).
func newIdleCostWorldWith(tb testing.TB, cfg session.Config) *idleCostWorld {
	tb.Helper()
	ctx := context.Background()
	wa, pid := startIdleCostFakewa(tb)
	addr, rootPub, err := wa.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	db, err := storage.Open(ctx, storage.Options{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	reg := storage.NewRegistry(db, quiet)
	drv, err := whatsapp.New(ctx, whatsapp.Config{DB: db, Logger: quiet, Dial: &wadial.Config{Addr: addr, RootPubKey: rootPub}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Logger = quiet
	sink := &discardDelivery{}
	m, err := session.New(ctx, cfg, drv, reg, sink)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = m.Close(ctx)
		drv.Close()
		_ = reg.Close(ctx)
		_ = db.Close()
	})
	return &idleCostWorld{tb: tb, wa: wa, fakewaPID: pid, m: m, sink: sink}
}

// pairSessions pairs n new sessions, at most 8 at a time, and waits until all are connected.
func (w *idleCostWorld) pairSessions(n int) {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*time.Second+time.Minute)
	defer cancel()
	ids := make([]string, n)
	for i := range ids {
		w.seq++
		ids[i] = fmt.Sprintf("idle-%05d", w.seq)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.pairOne(ctx, id, fmt.Sprintf("1555%07d", w.seq-n+i+1)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		w.tb.Fatalf("%d of %d pairings failed, first: %v", len(errs), n, errs[0])
	}
}

func (w *idleCostWorld) pairOne(ctx context.Context, id, phone string) error {
	if _, err := w.m.Start(ctx, id); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	for {
		info, err := w.m.Get(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case info.Connected && info.Status == laravel.StatusConnected:
			return nil
		case info.QR != "" && !info.Paired:
			if _, err := w.wa.Pair(ctx, info.QR, phone); err != nil {
				return fmt.Errorf("pair %s: %w", id, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("session %s not connected (status %s): %w", id, info.Status, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processCost is what this process holds right now, after its background work settled and a GC.
type processCost struct {
	goroutines int
	heapBytes  uint64 // live heap objects
	stackBytes uint64 // goroutine stacks
	heapGoal   uint64 // the heap size at which the next GC starts (GOGC, GOMEMLIMIT)
	goMapped   uint64 // memory the Go runtime holds from the OS and has not released
	rss        uint64 // resident set size (not deterministic: the kernel and the scavenger decide)
}

// residentBytes reads this process's resident set size from /proc/self/statm (0 elsewhere).
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// goMappedBytes is the memory the Go runtime has mapped and not returned to the OS.
func goMappedBytes() uint64 {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(samples)
	return samples[0].Value.Uint64() - samples[1].Value.Uint64()
}

// settle waits until the goroutine count stops moving (the clients' post-login work ended),
// then collects garbage and reads the costs.
func settle() processCost {
	last, stable := -1, 0
	for range 200 { // bounded: at most 200 x 50 ms
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			stable = 0
		}
		if stable >= 10 {
			break
		}
		last = n
		time.Sleep(50 * time.Millisecond)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return processCost{goroutines: runtime.NumGoroutine(), heapBytes: ms.HeapAlloc, stackBytes: ms.StackInuse, heapGoal: ms.NextGC,
		goMapped: goMappedBytes(), rss: residentBytes()}
}

// goroutinesByStart counts this process's goroutines by the function that started them.
func goroutinesByStart() map[string]int {
	var sb strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&sb, 2)
	out := map[string]int{}
	for _, block := range strings.Split(sb.String(), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		// A goroutine's stack ends with the function it runs, then "created by ...".
		start := "?"
		for i, l := range lines {
			if strings.HasPrefix(l, "created by ") && i > 0 {
				start = lines[i-2]
				if j := strings.LastIndexByte(start, '('); j > 0 {
					start = start[:j]
				}
			}
		}
		out[start]++
	}
	return out
}

// idleCPUWindow is how long BenchmarkIdleConnectedSession watches the idle sessions' CPU (reported
// in the target's unit, CPU seconds per 10 s per 1000 sessions): one whole keepalive period
// (whatsmeow pings every 20-30 s per session), so every session pings once or twice in it. A 10 s
// window caught 0-40% of the sessions' pings depending on when they paired: 0.010 and 0.098 s per
// 10 s in two runs of 500 sessions minutes apart.
const idleCPUWindow = 30 * time.Second

// processCPU is the CPU time (user + system) this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runtimeCosts are CPU seconds the Go runtime says it spent on the GC and on returning memory to
// the OS (runtime/metrics' estimates) since the process started.
type runtimeCosts struct{ gc, scavenge float64 }

func runtimeCPU() runtimeCosts {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/scavenge/total:cpu-seconds"}}
	metrics.Read(s)
	return runtimeCosts{gc: s[0].Value.Float64(), scavenge: s[1].Value.Float64()}
}

// startCPUProfile starts a CPU profile into path when path is set; the returned func stops it.
func startCPUProfile(tb testing.TB, path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

// writeHeapProfile writes the heap profile to path+suffix when path is set.
func writeHeapProfile(tb testing.TB, path, suffix string) {
	if path == "" {
		return
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkIdleConnectedSession reports what one idle connected session costs the gateway: the
// marginal goroutines, live heap and stack bytes of 200 sessions paired and connected on the real
// whatsmeow driver over a baseline of 10, after a GC (targets: <= 4.5 goroutines, <= 150 KiB),
// the heap goal the GC settings (GOGC, GOMEMLIMIT) give per session, and the CPU the idle
// sessions use over a keepalive period (30 s, once all are past their first) with nobody polling (target: <= 0.1 s per 10 s per 1000 sessions).
// The timings are meaningless (pairing dominates): read the reported metrics. Run with
//
//	go test ./gateway/whatsapp -run '^$' -bench IdleConnectedSession -benchtime 1x -v
//
// -v logs the goroutines per session by start function. WAGATE_IDLECOST_SESSIONS changes 200;
// WAGATE_IDLECOST_WINDOW lengthens the idle CPU window (30 s); WAGATE_IDLECOST_CPUPROFILE=FILE
// writes a CPU profile of the idle window to FILE;
// WAGATE_IDLECOST_HEAPPROFILE=FILE samples every allocation and writes FILE.base and FILE, heap
// profiles at the baseline and after (go tool pprof -sample_index inuse_space -base FILE.base FILE).
func BenchmarkIdleConnectedSession(b *testing.B) {
	if testing.Short() {
		b.Skip("pairs hundreds of sessions")
	}
	n := 200
	if s := os.Getenv("WAGATE_IDLECOST_SESSIONS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("WAGATE_IDLECOST_SESSIONS=%q", s)
		}
	}
	heapProfile := os.Getenv("WAGATE_IDLECOST_HEAPPROFILE")
	if heapProfile != "" {
		runtime.MemProfileRate = 1
	}
	w := newIdleCostWorld(b)
	w.pairSessions(10)
	base := settle()
	baseStarts := goroutinesByStart()
	writeHeapProfile(b, heapProfile, ".base")
	w.pairSessions(n)
	pairedAt := time.Now()
	b.ResetTimer()
	var after processCost
	for b.Loop() {
		after = settle()
	}
	b.StopTimer()
	per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(n) }
	b.ReportMetric(float64(after.goroutines-base.goroutines)/float64(n), "goroutines/session")
	b.ReportMetric(per(base.heapBytes, after.heapBytes), "heap-B/session")
	b.ReportMetric(per(base.stackBytes, after.stackBytes), "stack-B/session")
	b.ReportMetric(per(base.heapBytes+base.stackBytes, after.heapBytes+after.stackBytes)/1024, "KiB/session")
	// What the heap may grow to per session before the next GC: with GOGC alone, RSS under load
	// approaches it (docs/deploy.md, Memory and GC).
	b.ReportMetric(per(base.heapGoal, after.heapGoal)/1024, "heap-goal-KiB/session")
	// Beside them, not deterministic: what the Go runtime holds from the OS and the resident set
	// (which also holds memory outside the Go heap: SQLite's, the binary's pages).
	b.ReportMetric(per(base.goMapped, after.goMapped)/1024, "go-mapped-KiB/session")
	b.ReportMetric(per(base.rss, after.rss)/1024, "rss-KiB/session")
	// What the idle sessions cost in CPU with nobody polling (whatsmeow's keepalives, every
	// 20-30 s per session, are most of it): CPU time, not wall time, so a busy machine moves it
	// less than latencies, but it is not a count: read medians of several runs. All n+10
	// sessions are idle in the window.
	// Steady state first: every session past its first keepalive period (a session's first
	// ping comes 20-30 s after it connected) and its post-login work.
	time.Sleep(time.Until(pairedAt.Add(whatsmeow.KeepAliveIntervalMax)))
	window := idleCPUWindow
	if s := os.Getenv("WAGATE_IDLECOST_WINDOW"); s != "" {
		var err error
		if window, err = time.ParseDuration(s); err != nil || window < idleCPUWindow {
			b.Fatalf("WAGATE_IDLECOST_WINDOW=%q: want a duration of at least %s (one keepalive period)", s, idleCPUWindow)
		}
	}
	stopProfile := startCPUProfile(b, os.Getenv("WAGATE_IDLECOST_CPUPROFILE"))
	// Said as it starts, for a profiler attached from outside (perf record -p PID).
	fmt.Fprintf(os.Stderr, "idle window of %s starts (pid %d, %d sessions)\n", window, os.Getpid(), n+10)
	cpu0, gc0 := processCPU(), runtimeCPU()
	time.Sleep(window)
	idleCPU, gc1 := processCPU()-cpu0, runtimeCPU()
	stopProfile()
	b.ReportMetric(idleCPU.Seconds()*float64(10*time.Second)/float64(window)*1000/float64(n+10), "idle-cpu-s-per-10s-per-1000-sessions")
	// 1 when the process ran with the gateway's steady sysmon (TestMain; GODEBUG=schedtrace set).
	steady := 0.0
	if sysmon.Steady(os.Environ()) {
		steady = 1
	}
	b.ReportMetric(steady, "steady-sysmon")
	// How much of it the GC and the scavenger took (the runtime's own estimate; a forced GC comes
	// every 2 min when nothing allocates enough to start one, so a window of 2 min or more shows it).
	if idleCPU > 0 {
		b.ReportMetric((gc1.gc-gc0.gc)/idleCPU.Seconds()*100, "gc-%-of-idle-cpu")
		b.ReportMetric((gc1.scavenge-gc0.scavenge)/idleCPU.Seconds()*100, "scavenge-%-of-idle-cpu")
	}
	writeHeapProfile(b, heapProfile, "")
	afterStarts := goroutinesByStart()
	var lines []string
	for start, c := range afterStarts {
		if d := c - baseStarts[start]; d != 0 {
			lines = append(lines, fmt.Sprintf("%6.2f  %s", float64(d)/float64(n), start))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(lines)))
	b.Logf("goroutines per session by start function:\n%s", strings.Join(lines, "\n"))
}
