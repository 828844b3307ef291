// Package schedwait reads a Go execution trace (runtime/trace; the gateway serves one at
// /debug/pprof/trace when pprof-addr is set) and answers the question a latency tail asks: how
// long did the goroutines that answer requests wait for a processor after they became runnable,
// and what held the processor meanwhile? A status poll that takes 15 ms on a gateway whose handler
// runs in 0.1 ms waited behind something; the trace says whether that was the GC's mark worker,
// SQLite work in whatsmeow's event handlers, a burst of other requests, or nothing Go ran (the
// thread itself was off the CPU).
//
// It uses golang.org/x/exp/trace, the parser of the go tool trace format published outside the
// standard library. See docs/deploy.md ("Where a latency tail comes from") for how to take a trace
// of the gateway under the harness's workload and what one showed.
package schedwait

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// Options says which goroutines' waits are measured and what counts as a long wait.
type Options struct {
	// Root is the function the measured goroutines were started with, or several separated by
	// commas (by default the gateway's two per-connection goroutines: gateway/http1's lean path
	// and net/http's, which between them serve every API request).
	Root string
	// LongWait is the wait from which a wait is examined: what ran on the processors during it.
	LongWait time.Duration
	// LongSlice is the running time from which a goroutine's uninterrupted run is listed.
	LongSlice time.Duration
	// Frames are the prefixes of function names that name a class of work inside a goroutine (the
	// first frame from the top of a stack that has one): a whatsmeow handler in SQLite is told
	// from one sending a frame.
	Frames []string
}

// DefaultOptions measures API requests' goroutines.
func DefaultOptions() Options {
	return Options{
		Root:      "wagate/gateway/http1.(*conn).serve,net/http.(*conn).serve",
		LongWait:  2 * time.Millisecond,
		LongSlice: time.Millisecond,
		Frames:    []string{"wagate/", "go.mau.fi/", "modernc.org/sqlite", "github.com/redis/", "crypto/"},
	}
}

// Validate reports options the analysis cannot use.
func (o Options) Validate() error {
	var errs []error
	if o.Root == "" {
		errs = append(errs, errors.New("the measured goroutines' root function is empty"))
	}
	if o.LongWait <= 0 {
		errs = append(errs, fmt.Errorf("long wait %v: must be positive", o.LongWait))
	}
	if o.LongSlice <= 0 {
		errs = append(errs, fmt.Errorf("long slice %v: must be positive", o.LongSlice))
	}
	return errors.Join(errs...)
}

// Report is what a trace says about the measured goroutines' waits.
type Report struct {
	Window time.Duration
	// Procs is the number of Go processors (Ps) seen running goroutines.
	Procs int
	// GCMarks is the number of GC mark phases that ended in the window and GCMarkTime their length.
	GCMarks    int
	GCMarkTime time.Duration
	// Waits are the measured goroutines' waits for a processor, shortest first.
	Waits []time.Duration
	// LongWaits is how many waits were at least Options.LongWait, LongInGC how many of those
	// overlapped a GC mark phase, and LongWindows the time covered by at least one of them.
	LongWaits, LongInGC int
	LongWindows         time.Duration
	// RanDuringLong is what ran on the processors during LongWindows, by class of work; Ran is its
	// total (LongWindows minus Ran is time in which no goroutine ran: the threads were off the CPU
	// or in the scheduler).
	RanDuringLong map[string]time.Duration
	Ran           time.Duration
	// LongSlices are the uninterrupted runs of at least Options.LongSlice, longest first.
	LongSlices []Slice
}

// Slice is one goroutine's uninterrupted run on a processor.
type Slice struct {
	Length time.Duration
	// Class is the goroutine's root function and the first frame matching Options.Frames where the
	// run ended (a goroutine blocked in a write shows the write).
	Class string
}

// Quantile returns the q-quantile (0..1) of the waits; 0 without waits.
func (r *Report) Quantile(q float64) time.Duration {
	if len(r.Waits) == 0 {
		return 0
	}
	return r.Waits[int(q*float64(len(r.Waits)-1))]
}

type interval struct{ from, to trace.Time }

func (i interval) overlaps(j interval) bool { return i.from < j.to && j.from < i.to }

// goroutine is what the analysis keeps of one goroutine.
type goroutine struct {
	root     string
	measured bool
	runnable trace.Time // when it last became runnable (0: not waiting)
	running  trace.Time // when it last started running (0: not running)
}

// Analyze reads a whole trace.
func Analyze(r io.Reader, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	roots := strings.Split(opts.Root, ",")
	var (
		gs          = map[trace.GoID]*goroutine{}
		procs       = map[trace.ProcID]bool{}
		waits       []interval
		runs        []run
		marks       []interval
		markFrom    trace.Time
		first, last trace.Time
		rep         = &Report{RanDuringLong: map[string]time.Duration{}}
		get         = func(id trace.GoID) *goroutine {
			g := gs[id]
			if g == nil {
				g = &goroutine{}
				gs[id] = g
			}
			return g
		}
	)
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read trace: %w", err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		switch ev.Kind() {
		case trace.EventRangeBegin:
			if ev.Range().Name == "GC concurrent mark phase" {
				markFrom = ev.Time()
			}
		case trace.EventRangeEnd:
			if ev.Range().Name == "GC concurrent mark phase" {
				from := markFrom
				if from == 0 { // begun before the trace
					from = first
				}
				marks = append(marks, interval{from, ev.Time()})
				markFrom = 0
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := st.Resource.Goroutine()
			from, to := st.Goroutine()
			g := get(id)
			if g.root == "" {
				if root := rootOf(st.Stack); root != "" {
					g.root = root
					g.measured = slices.Contains(roots, root)
				}
			}
			if from == trace.GoRunning && g.running != 0 {
				runs = append(runs, run{interval{g.running, ev.Time()}, g.root, frameOf(st.Stack, opts.Frames)})
				g.running = 0
			}
			switch to {
			case trace.GoRunnable:
				g.runnable = ev.Time()
			case trace.GoRunning:
				if ev.Proc() != trace.NoProc {
					procs[ev.Proc()] = true
				}
				if g.measured && g.runnable != 0 {
					waits = append(waits, interval{g.runnable, ev.Time()})
				}
				g.runnable, g.running = 0, ev.Time()
			}
		}
	}
	rep.Window, rep.Procs, rep.GCMarks = time.Duration(last-first), len(procs), len(marks)
	for _, m := range marks {
		rep.GCMarkTime += time.Duration(m.to - m.from)
	}
	var long []interval
	for _, w := range waits {
		d := time.Duration(w.to - w.from)
		rep.Waits = append(rep.Waits, d)
		if d < opts.LongWait {
			continue
		}
		rep.LongWaits++
		long = append(long, w)
		if slices.ContainsFunc(marks, w.overlaps) {
			rep.LongInGC++
		}
	}
	slices.Sort(rep.Waits)
	windows := union(long)
	for _, w := range windows {
		rep.LongWindows += time.Duration(w.to - w.from)
	}
	for _, r := range runs {
		class := r.class()
		if d := time.Duration(r.to - r.from); d >= opts.LongSlice {
			rep.LongSlices = append(rep.LongSlices, Slice{d, class})
		}
		for _, w := range overlapping(windows, r.interval) {
			d := time.Duration(min(r.to, w.to) - max(r.from, w.from))
			rep.RanDuringLong[class] += d
			rep.Ran += d
		}
	}
	sort.SliceStable(rep.LongSlices, func(i, j int) bool { return rep.LongSlices[i].Length > rep.LongSlices[j].Length })
	return rep, nil
}

// run is one goroutine's run on a processor, with where it stopped.
type run struct {
	interval
	root, frame string
}

func (r run) class() string {
	root := r.root
	if root == "" {
		root = "(began before the trace)"
	}
	if r.frame == "" {
		return root
	}
	return root + " | " + r.frame
}

// rootOf is the outermost function of a stack ("" when the stack is empty).
func rootOf(st trace.Stack) string {
	root := ""
	for f := range st.Frames() {
		root = f.Func
	}
	return root
}

// frameOf is the first frame from the top of a stack whose function starts with one of prefixes.
func frameOf(st trace.Stack, prefixes []string) string {
	for f := range st.Frames() {
		for _, p := range prefixes {
			if strings.HasPrefix(f.Func, p) {
				return f.Func
			}
		}
	}
	return ""
}

// union merges intervals sorted or not into disjoint ones, in order.
func union(in []interval) []interval {
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b interval) int { return cmp.Compare(a.from, b.from) })
	var out []interval
	for _, x := range s {
		if n := len(out); n > 0 && x.from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, x.to)
			continue
		}
		out = append(out, x)
	}
	return out
}

// overlapping returns the windows (disjoint, in order) that overlap iv.
func overlapping(windows []interval, iv interval) []interval {
	i := sort.Search(len(windows), func(i int) bool { return windows[i].to > iv.from })
	j := i
	for j < len(windows) && windows[j].from < iv.to {
		j++
	}
	return windows[i:j]
}

// Write prints the report for a reader: the waits' distribution, how many long ones fell in a GC
// mark phase, what ran during them (the top rows) and the longest runs.
func (r *Report) Write(w io.Writer, opts Options, rows int) {
	fmt.Fprintf(w, "trace window %v, %d Go processor(s)\n", r.Window.Round(time.Millisecond), r.Procs)
	fmt.Fprintf(w, "GC mark phases: %d, %v (%.1f%% of the window)\n", r.GCMarks, r.GCMarkTime.Round(time.Millisecond), pct(r.GCMarkTime, r.Window))
	fmt.Fprintf(w, "waits for a processor of goroutines rooted at %s: %d; p50 %v, p90 %v, p99 %v, p99.9 %v, max %v\n",
		opts.Root, len(r.Waits), r.Quantile(0.5), r.Quantile(0.9), r.Quantile(0.99), r.Quantile(0.999), r.Quantile(1))
	fmt.Fprintf(w, "waits >= %v: %d, %d of them during a GC mark phase; together they span %v\n",
		opts.LongWait, r.LongWaits, r.LongInGC, r.LongWindows.Round(10*time.Microsecond))
	fmt.Fprintf(w, "what ran during those spans (%v; the rest of the span nothing ran):\n", r.Ran.Round(10*time.Microsecond))
	type row struct {
		class string
		d     time.Duration
	}
	var byClass []row
	for c, d := range r.RanDuringLong {
		byClass = append(byClass, row{c, d})
	}
	sort.Slice(byClass, func(i, j int) bool {
		if byClass[i].d != byClass[j].d {
			return byClass[i].d > byClass[j].d
		}
		return byClass[i].class < byClass[j].class
	})
	for i, x := range byClass {
		if i == rows {
			fmt.Fprintf(w, "  (%d more)\n", len(byClass)-rows)
			break
		}
		fmt.Fprintf(w, "  %10v %5.1f%%  %s\n", x.d.Round(10*time.Microsecond), pct(x.d, r.Ran), x.class)
	}
	fmt.Fprintf(w, "runs >= %v without giving up the processor: %d\n", opts.LongSlice, len(r.LongSlices))
	for i, s := range r.LongSlices {
		if i == rows {
			fmt.Fprintf(w, "  (%d more)\n", len(r.LongSlices)-rows)
			break
		}
		fmt.Fprintf(w, "  %10v  %s\n", s.Length.Round(10*time.Microsecond), s.Class)
	}
}

func pct(part, whole time.Duration) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
