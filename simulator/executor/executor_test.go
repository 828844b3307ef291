package executor

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func mustTuple(t *testing.T, seg, seq string) *Tuple {
	t.Helper()
	s, err := ParseSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseSequence(seq)
	if err != nil {
		t.Fatal(err)
	}
	tu, err := NewTuple(s, q)
	if err != nil {
		t.Fatal(err)
	}
	return tu
}

func TestDefaultsAreK6s(t *testing.T) {
	c := Config{Executor: SharedIterations}.WithDefaults()
	if c.VUs != 1 || c.Iterations != 1 || c.MaxDuration != 10*time.Minute || c.GracefulStop != 30*time.Second {
		t.Errorf("shared-iterations defaults = %+v", c)
	}
	r := Config{Executor: RampingVUs, Stages: []Stage{{time.Second, 1}}}.WithDefaults()
	if r.StartVUs != 1 || r.GracefulRampDown != 30*time.Second {
		t.Errorf("ramping-vus defaults = %+v", r)
	}
	a := Config{Executor: ConstantArrivalRate, Rate: 1, Duration: time.Minute, PreAllocatedVUs: 5}.WithDefaults()
	if a.TimeUnit != time.Second || a.MaxVUs != 5 {
		t.Errorf("constant-arrival-rate defaults = %+v", a)
	}
	set := Config{Executor: ConstantVUs, VUs: 0, Set: map[string]bool{"vus": true}}.WithDefaults()
	if set.VUs != 0 {
		t.Errorf("an explicit vus: 0 was overwritten by the default")
	}
}

func TestValidationSpeaksK6(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{Executor: ConstantArrivalRate, Rate: 10, TimeUnit: time.Second, Duration: time.Minute, PreAllocatedVUs: 10, MaxVUs: 5}, "maxVUs: maxVUs can't be less than preAllocatedVUs"},
		{Config{Executor: ConstantArrivalRate, Rate: 0, TimeUnit: time.Second, Duration: time.Minute, PreAllocatedVUs: 1, MaxVUs: 1}, "rate: the iteration rate must be more than 0"},
		{Config{Executor: RampingVUs, StartVUs: 1}, "stages: at least one stage has to be specified"},
		{Config{Executor: ConstantVUs, VUs: 1}, "duration: the duration must be at least 1s, but was 0s"},
		{Config{Executor: SharedIterations, VUs: 10, Iterations: 5, MaxDuration: time.Minute}, "iterations: the number of iterations (5) can't be less than the number of VUs (10)"},
		{Config{Executor: "constant-users"}, `executor: unknown executor "constant-users"; choose one of [shared-iterations per-vu-iterations constant-vus ramping-vus constant-arrival-rate ramping-arrival-rate]`},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%s) = %v, want %q", tc.c.Executor, err, tc.want)
		}
	}
}

func TestRampingVUsInterpolatesAndTruncatesTowardsTheStageStart(t *testing.T) {
	c := Config{Executor: RampingVUs, StartVUs: 0, Stages: []Stage{{10 * time.Second, 10}, {5 * time.Second, 10}, {10 * time.Second, 0}}}
	want := map[time.Duration]int64{
		0: 0, 999 * time.Millisecond: 0, time.Second: 1, 5500 * time.Millisecond: 5, 10 * time.Second: 10,
		14 * time.Second: 10, 15 * time.Second: 10, 16 * time.Second: 9, 24500 * time.Millisecond: 1, 25 * time.Second: 0,
	}
	for at, v := range want {
		if got := c.VUsAt(nil, at); got != v {
			t.Errorf("VUsAt(%s) = %d, want %d", at, got, v)
		}
	}
	steps := c.Steps(nil)
	if len(steps) != 21 || steps[1] != (Step{time.Second, 1}) || steps[10] != (Step{10 * time.Second, 10}) || steps[11] != (Step{16 * time.Second, 9}) {
		t.Errorf("Steps = %v", steps)
	}
	// Steps and VUsAt agree at every step time.
	for _, s := range steps {
		if got := c.VUsAt(nil, s.At); got != s.VUs {
			t.Errorf("at %s: step says %d, VUsAt says %d", s.At, s.VUs, got)
		}
	}
}

func TestZeroDurationStageJumps(t *testing.T) {
	c := Config{Executor: RampingVUs, StartVUs: 2, Stages: []Stage{{0, 8}, {time.Second, 8}}}
	if got := c.VUsAt(nil, 0); got != 8 {
		t.Errorf("VUsAt(0) = %d, want 8", got)
	}
}

func TestConstantArrivalRateSchedule(t *testing.T) {
	c := Config{Executor: ConstantArrivalRate, Rate: 30, TimeUnit: time.Minute, Duration: 10 * time.Second}
	times := c.ArrivalTimes(nil, 0)
	if len(times) != 5 || times[0] != 0 || times[1] != 2*time.Second || times[4] != 8*time.Second {
		t.Errorf("ArrivalTimes = %v, want every 2s from 0", times)
	}
	if r := c.RateAt(3 * time.Second); r != 0.5 {
		t.Errorf("RateAt = %v, want 0.5/s", r)
	}
}

func TestRampingArrivalRateIntegratesTheRate(t *testing.T) {
	// 0 -> 10/s over 10s is 50 iterations; then 10/s for 5s is 50 more.
	c := Config{Executor: RampingArrivalRate, StartRate: 0, TimeUnit: time.Second, Stages: []Stage{{10 * time.Second, 10}, {5 * time.Second, 10}}}
	times := c.ArrivalTimes(nil, 0)
	if len(times) != 100 {
		t.Fatalf("got %d iterations, want 100", len(times))
	}
	// The j-th iteration of the ramp (integral j+1 = t^2/2) is at sqrt(2(j+1)) seconds.
	if got := times[0]; got < 1414*time.Millisecond || got > 1415*time.Millisecond {
		t.Errorf("first arrival at %s, want ~1.414s", got)
	}
	if got := times[49]; got != 10*time.Second {
		t.Errorf("50th arrival at %s, want 10s", got)
	}
	for i := 1; i < len(times); i++ {
		if times[i] < times[i-1] {
			t.Fatalf("arrivals out of order at %d: %v", i, times[i-1:i+1])
		}
	}
	if r := c.RateAt(5 * time.Second); r != 5 {
		t.Errorf("RateAt(5s) = %v, want 5", r)
	}
}

func TestSegmentsSumToTheTotal(t *testing.T) {
	for _, seq := range []string{"0,1/3,2/3,1", "0,1/4,1/2,1", "0,0.1,0.5,0.7,1", "0,1"} {
		q, err := ParseSequence(seq)
		if err != nil {
			t.Fatal(err)
		}
		var tuples []*Tuple
		for i := 0; i+1 < len(q); i++ {
			tu, err := NewTuple(Segment{From: q[i], To: q[i+1]}, q)
			if err != nil {
				t.Fatal(err)
			}
			tuples = append(tuples, tu)
		}
		for _, total := range []int64{0, 1, 2, 7, 10, 100, 1000, 9999} {
			var sum int64
			for _, tu := range tuples {
				sum += tu.Scale(total)
			}
			if sum != total {
				t.Errorf("sequence %s: shares of %d sum to %d", seq, total, sum)
			}
		}
		// Every arrival-rate iteration is run by exactly one instance.
		c := Config{Executor: ConstantArrivalRate, Rate: 97, TimeUnit: time.Second, Duration: 3 * time.Second}
		var n int
		for _, tu := range tuples {
			n += len(c.ArrivalTimes(tu, 0))
		}
		if n != len(c.ArrivalTimes(nil, 0)) {
			t.Errorf("sequence %s: instances ran %d arrivals, the whole test has %d", seq, n, len(c.ArrivalTimes(nil, 0)))
		}
		// Ramping VUs: at every time, the instances' VUs add up to the whole test's.
		r := Config{Executor: RampingVUs, StartVUs: 3, Stages: []Stage{{10 * time.Second, 100}, {10 * time.Second, 7}}}
		for at := time.Duration(0); at < 20*time.Second; at += 250 * time.Millisecond {
			var sum int64
			for _, tu := range tuples {
				sum += r.VUsAt(tu, at)
			}
			// Each instance interpolates its own scaled targets, so rounding may differ by at most
			// one VU per instance mid-stage, and not at all at stage boundaries.
			whole := r.VUsAt(nil, at)
			if d := sum - whole; d < -int64(len(tuples)) || d > int64(len(tuples)) {
				t.Errorf("sequence %s at %s: instances have %d VUs, whole test %d", seq, at, sum, whole)
			}
		}
		for _, at := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
			var sum int64
			for _, tu := range tuples {
				sum += r.VUsAt(tu, at)
			}
			if sum != r.VUsAt(nil, at) {
				t.Errorf("sequence %s at stage boundary %s: %d != %d", seq, at, sum, r.VUsAt(nil, at))
			}
		}
	}
}

func TestSegmentShareIsEvenAndStriped(t *testing.T) {
	tu := mustTuple(t, "1/3:2/3", "0,1/3,2/3,1")
	if got := tu.Scale(100); got != 33 && got != 34 {
		t.Errorf("middle third of 100 = %d", got)
	}
	// Striped: within any window of 3 consecutive units the middle segment owns exactly one.
	for k := int64(0); k < 30; k += 3 {
		n := 0
		for j := k; j < k+3; j++ {
			if tu.Owns(j) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("window %d..%d: owns %d units", k, k+2, n)
		}
	}
	// Without a sequence, the segment is placed in 0,from,to,1.
	alone := mustTuple(t, "0:1/2", "")
	if got := alone.Scale(10); got != 5 {
		t.Errorf("first half of 10 = %d", got)
	}
}

func TestSegmentParsingErrors(t *testing.T) {
	for _, bad := range []string{"1/2:1/3", "x:1", "0:2"} {
		if _, err := ParseSegment(bad); err == nil {
			t.Errorf("ParseSegment(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"0,1/2", "0,1/2,1/3,1", "1/4,1"} {
		if _, err := ParseSequence(bad); err == nil {
			t.Errorf("ParseSequence(%q) accepted", bad)
		}
	}
	if _, err := NewTuple(Segment{From: big.NewRat(1, 4), To: big.NewRat(1, 2)}, EvenSequence(3)); err == nil {
		t.Error("a segment outside the sequence was accepted")
	}
	if s, _ := ParseSegment("25%:50%"); s.String() != "1/4:1/2" {
		t.Errorf("percentages parsed to %s", s)
	}
}

func TestRunConstantVUsRunsBackToBackUntilTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Config{Executor: ConstantVUs, VUs: 3, Duration: 10 * time.Second, Set: map[string]bool{"vus": true}}.WithDefaults()
		var iters atomic.Int64
		var maxActive atomic.Int64
		err := Run(context.Background(), c, nil, func(ctx context.Context, vu VU) error {
			iters.Add(1)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			return nil
		}, Hooks{ActiveVUs: func(n int64) {
			if n > maxActive.Load() {
				maxActive.Store(n)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if iters.Load() != 30 || maxActive.Load() != 3 {
			t.Errorf("iterations = %d, max active = %d; want 30 and 3", iters.Load(), maxActive.Load())
		}
	})
}

func TestRunInterruptsAfterGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Config{Executor: ConstantVUs, VUs: 2, Duration: 2 * time.Second, GracefulStop: 3 * time.Second, Set: map[string]bool{"vus": true, "gracefulStop": true}}.WithDefaults()
		var interrupted atomic.Int64
		began := time.Now()
		err := Run(context.Background(), c, nil, func(ctx context.Context, vu VU) error {
			<-ctx.Done() // never finishes by itself, ignores Stopping
			return ctx.Err()
		}, Hooks{IterationDone: func(_ VU, _ time.Duration, _ error, intr bool) {
			if intr {
				interrupted.Add(1)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took != 5*time.Second {
			t.Errorf("run took %s, want duration + gracefulStop = 5s", took)
		}
		if interrupted.Load() != 2 {
			t.Errorf("interrupted = %d, want 2", interrupted.Load())
		}
	})
}

func TestRunRampingVUsFollowsTheSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Config{Executor: RampingVUs, StartVUs: 0, GracefulRampDown: time.Second,
			Stages: []Stage{{4 * time.Second, 4}, {4 * time.Second, 0}},
			Set:    map[string]bool{"startVUs": true, "gracefulRampDown": true}}.WithDefaults()
		var mu sync.Mutex
		seen := map[time.Duration]int64{}
		began := time.Now()
		var active atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			err := Run(context.Background(), c, nil, func(ctx context.Context, vu VU) error {
				select {
				case <-time.After(100 * time.Millisecond):
				case <-vu.Stopping:
				}
				return nil
			}, Hooks{ActiveVUs: func(n int64) { active.Store(n) }})
			if err != nil {
				t.Error(err)
			}
		}()
		for at := 500 * time.Millisecond; at < 8*time.Second; at += time.Second {
			time.Sleep(at - time.Since(began))
			synctest.Wait()
			mu.Lock()
			seen[at] = active.Load()
			mu.Unlock()
		}
		<-done
		for at, n := range seen {
			if want := c.VUsAt(nil, at); n != want {
				t.Errorf("at %s: %d VUs active, want %d", at, n, want)
			}
		}
	})
}

func TestRunArrivalRateDropsWhenNoVUIsFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Config{Executor: ConstantArrivalRate, Rate: 10, Duration: 2 * time.Second, PreAllocatedVUs: 2, MaxVUs: 5,
			Set: map[string]bool{"maxVUs": true}}.WithDefaults()
		var started, dropped atomic.Int64
		err := Run(context.Background(), c, nil, func(ctx context.Context, vu VU) error {
			started.Add(1)
			time.Sleep(time.Second) // every iteration holds its VU for 1s: 5 VUs serve 5 of each 10
			return nil
		}, Hooks{Dropped: func() { dropped.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		if started.Load()+dropped.Load() != 20 {
			t.Errorf("started %d + dropped %d != 20 scheduled", started.Load(), dropped.Load())
		}
		if started.Load() != 10 || dropped.Load() != 10 {
			t.Errorf("started = %d, dropped = %d; want 10 and 10", started.Load(), dropped.Load())
		}
	})
}

func TestRunIterationExecutors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []Config{
			{Executor: SharedIterations, VUs: 4, Iterations: 10, Set: map[string]bool{"vus": true, "iterations": true}},
			{Executor: PerVUIterations, VUs: 4, Iterations: 10, Set: map[string]bool{"vus": true, "iterations": true}},
		} {
			c = c.WithDefaults()
			var n atomic.Int64
			if err := Run(context.Background(), c, nil, func(context.Context, VU) error { n.Add(1); return nil }, Hooks{}); err != nil {
				t.Fatal(err)
			}
			want := int64(10)
			if c.Executor == PerVUIterations {
				want = 40
			}
			if n.Load() != want {
				t.Errorf("%s ran %d iterations, want %d", c.Executor, n.Load(), want)
			}
		}
	})
}

func ExampleTuple_Scale() {
	seq := EvenSequence(3)
	for i := 0; i < 3; i++ {
		tu, _ := NewTuple(Segment{From: seq[i], To: seq[i+1]}, seq)
		fmt.Print(tu.Scale(100), " ")
	}
	fmt.Println()
	// Output: 34 33 33
}
