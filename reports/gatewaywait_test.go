package reports

import (
	"strings"
	"testing"
	"time"
)

// Which part dominates the client's p99: the largest of the handler's p99, the gateway's
// goroutine wait p99, and what the client's p99 leaves beyond both.
func TestWhichPartDominatesTheClientsP99(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		client, handler, sched float64
		want                   WaitPart
		wantOutside            float64
	}{
		{"the quiet make bench at 1000 users: a 25 ms wait for the CPU under a 39.9 ms p99", 39.9, 0.1, 25, PartGatewayCPU, 14.8},
		{"the waits are short: the rest is the client's", 39.9, 0.1, 0.25, PartOutside, 39.55},
		{"a slow handler", 12, 10, 1, PartHandler, 1},
		{"the wait's bucket bound above the client's p99: nothing left outside", 18, 0.1, 25, PartGatewayCPU, 0},
		{"handler and wait equal: the handler is named", 10, 4, 4, PartHandler, 2},
		{"the outside equal to the largest: the gateway's part is named", 12, 4, 4, PartHandler, 4},
		{"no client p99: nothing to decide", 0, 0.1, 25, "", 0},
	} {
		part, outside := DominantPart(tc.client, tc.handler, tc.sched)
		if part != tc.want || !closeTo(outside, tc.wantOutside) {
			t.Errorf("%s: %q with %v ms outside, want %q with %v", tc.name, part, outside, tc.want, tc.wantOutside)
		}
	}
}

func closeTo(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// The entry's latency-validity lines end with the sentence naming the dominant part and its three
// figures, and the entry lists the gateway's side interval by interval beside the client's p99.
func TestTheEntrySaysWhichPartDominatesTheStatusP99AndListsItsIntervals(t *testing.T) {
	w := &GatewayWait{ClientP99Ms: 39.9, HandlerP99Ms: 0.1, SchedP99Ms: 25, SchedOverLimitPercent: 3.4, Dominant: PartGatewayCPU}
	lines := cpuLines(Environment{GatewayWait: w})
	if len(lines) != 1 {
		t.Fatalf("lines %q, want the one sentence", lines)
	}
	for _, want := range []string{"status API p99 at the client 39.9 ms", "handler at most 0.100 ms at p99",
		"waited for a CPU at most 25 ms at p99 (3.40% of their waits over 10 ms)", "14.8 ms outside both",
		"the gateway's goroutines' wait for its CPU dominates"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("%q lacks %q", lines[0], want)
		}
	}
	if got := cpuLines(Environment{GatewayWait: &GatewayWait{HandlerP99Ms: 0.1, SchedP99Ms: 1}}); len(got) != 0 {
		t.Errorf("a wait without a client p99 says %q", got)
	}

	series := []SeriesPoint{
		{Elapsed: Duration(5 * time.Second), APILatency: Percentiles{P99: 1.2}, GatewayWait: &IntervalWait{HandlerP99Ms: 0.1, SchedP99Ms: 0.25, SchedOverLimitPercent: 0.3}},
		{Elapsed: Duration(10 * time.Second)}, // the gateway's metrics not read in this interval
		{Elapsed: Duration(15 * time.Second), APILatency: Percentiles{P99: 48}, GatewayWait: &IntervalWait{HandlerP99Ms: 0.1, SchedP99Ms: 50, SchedOverLimitPercent: 6.8}},
		{Elapsed: Duration(20 * time.Second), GatewayWait: &IntervalWait{SchedP99Ms: 1}}, // the drain: no client requests
	}
	want := "by series interval (at its end: client p99 / handler p99 / gateway goroutine wait p99 in ms, share of waits over 10 ms): " +
		"5 s: 1.20 / 0.100 / 0.250, 0.300%; 15 s: 48 / 0.100 / 50, 6.80%; 20 s: — / 0 / 1, 0%"
	if got := intervalWaitLine(series); got != want {
		t.Errorf("interval line\n%s\nwant\n%s", got, want)
	}
	if got := intervalWaitLine(series[1:2]); got != "" {
		t.Errorf("a series without the gateway's side: %q", got)
	}
}
