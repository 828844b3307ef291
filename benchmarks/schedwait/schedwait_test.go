package schedwait

import (
	"bytes"
	"runtime"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"
)

// spinAndWake holds the only processor: it spins in rounds of 3 ms and wakes the waiter after
// each round without ever blocking itself, so the waiter, runnable, waits for it.
func spinAndWake(wake chan<- struct{}, rounds int, done chan<- struct{}) {
	for range rounds {
		for end := time.Now().Add(3 * time.Millisecond); time.Now().Before(end); {
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	close(done)
}

// waitForWakes is the measured goroutine: it blocks until woken, again and again.
func waitForWakes(wake <-chan struct{}, stop <-chan struct{}) {
	for {
		select {
		case <-wake:
		case <-stop:
			return
		}
	}
}

// traceOfAWaiterBehindASpinner traces, on one processor, a goroutine woken again and again by one
// that never gives the processor up.
func traceOfAWaiterBehindASpinner(t *testing.T) []byte {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("tracing is already on: %v", err)
	}
	wake, stop, done := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go waitForWakes(wake, stop)
	runtime.Gosched() // the waiter blocks first
	go spinAndWake(wake, 20, done)
	<-done
	close(stop)
	trace.Stop()
	return buf.Bytes()
}

func TestAGoroutineWokenBehindOneThatNeverYieldsWaitsAndTheSpinnerIsWhatRan(t *testing.T) {
	opts := DefaultOptions()
	opts.Root = "wagate/benchmarks/schedwait.waitForWakes"
	rep, err := Analyze(bytes.NewReader(traceOfAWaiterBehindASpinner(t)), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LongWaits == 0 {
		t.Fatalf("no wait of %v or more among %d waits %v: the waiter was woken while the spinner held the only processor", opts.LongWait, len(rep.Waits), rep.Waits)
	}
	top, topRan := "", time.Duration(0)
	for class, d := range rep.RanDuringLong {
		if d > topRan {
			top, topRan = class, d
		}
	}
	if !strings.HasPrefix(top, "wagate/benchmarks/schedwait.spinAndWake") {
		t.Errorf("what ran most during the long waits = %q (%v), want the spinner; all: %v", top, topRan, rep.RanDuringLong)
	}
	if rep.Ran > rep.LongWindows {
		t.Errorf("ran %v during long waits spanning only %v", rep.Ran, rep.LongWindows)
	}
	if len(rep.LongSlices) == 0 || !strings.HasPrefix(rep.LongSlices[0].Class, "wagate/benchmarks/schedwait.spinAndWake") {
		t.Errorf("longest runs %v: want the spinner's first", rep.LongSlices)
	}
	var out bytes.Buffer
	rep.Write(&out, opts, 5)
	for _, want := range []string{"waits for a processor of goroutines rooted at wagate/benchmarks/schedwait.waitForWakes", "spinAndWake"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestWhatIsNoTraceIsAnErrorNamingTheTrace(t *testing.T) {
	_, err := Analyze(strings.NewReader("not a trace"), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "read trace") {
		t.Fatalf("err = %v, want a read trace error", err)
	}
}

func TestOptionsTheAnalysisCannotUseAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"no root", func(o *Options) { o.Root = "" }, "root function is empty"},
		{"zero long wait", func(o *Options) { o.LongWait = 0 }, "long wait 0s: must be positive"},
		{"negative long slice", func(o *Options) { o.LongSlice = -time.Millisecond }, "long slice -1ms: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIntervalsAreMergedAndLookedUpByOverlap(t *testing.T) {
	iv := func(a, b xtrace.Time) interval { return interval{a, b} }
	merged := union([]interval{iv(50, 60), iv(1, 5), iv(4, 10), iv(10, 12), iv(30, 40)})
	want := []interval{iv(1, 12), iv(30, 40), iv(50, 60)}
	if len(merged) != len(want) {
		t.Fatalf("union = %v, want %v", merged, want)
	}
	for i := range want {
		if merged[i] != want[i] {
			t.Fatalf("union = %v, want %v", merged, want)
		}
	}
	for _, tc := range []struct {
		run  interval
		want int
	}{
		{iv(0, 1), 0},   // ends where the first begins
		{iv(11, 31), 2}, // spans the gap
		{iv(12, 30), 0}, // in the gap exactly
		{iv(0, 100), 3},
		{iv(59, 70), 1},
	} {
		if got := len(overlapping(merged, tc.run)); got != tc.want {
			t.Errorf("overlapping(%v) = %d windows, want %d", tc.run, got, tc.want)
		}
	}
}
