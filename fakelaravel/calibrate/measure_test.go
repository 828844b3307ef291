package calibrate

import (
	"testing"
	"time"
)

func TestQuietKeepsTheRunsNearTheQuietestOne(t *testing.T) {
	runs := []*Result{
		{OthersCores: 1.4, Elapsed: time.Second, ok: []time.Duration{900}},
		{OthersCores: 0.3, Elapsed: time.Second, ok: []time.Duration{10, 10}},
		{OthersCores: 0.5, Elapsed: time.Second, ok: []time.Duration{20, 20, 20, 20}},
		{OthersCores: 0.9, Elapsed: time.Second, ok: []time.Duration{500}},
	}
	q := Quiet(runs)
	if len(q) != 2 || q[0] != runs[1] || q[1] != runs[2] {
		t.Fatalf("quiet runs %v, want the 0.3 and 0.5 ones", q)
	}
	// Throughput: median of 2 and 4 answers per second; latencies pooled from both.
	if got := Throughput(runs); got != 3 {
		t.Fatalf("throughput %v, want 3", got)
	}
	if got := Latency(runs, 100); got != 20 {
		t.Fatalf("max latency %v, want 20 (the busy runs' 500 and 900 left out)", got)
	}
	// Unknown CPU figures keep every run.
	if got := Quiet([]*Result{{OthersCores: -1}, {OthersCores: -1}}); len(got) != 2 {
		t.Fatalf("kept %d of 2 runs without CPU figures", len(got))
	}
}
