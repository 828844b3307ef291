package reports

import (
	"strings"
	"testing"
)

func TestTheGeneratorLineSaysHowLongItsGoroutinesWaitedAndWhyItsLatencyIsNotValid(t *testing.T) {
	tests := []struct {
		name      string
		gen       Generator
		want      []string
		wantEntry string // latencyInvalid of an entry with this report
	}{
		{
			name: "CPU only (a report from before the delays were measured)",
			gen:  Generator{CPUPercent: 41, Cores: 1, LatencyValid: true},
			want: []string{"load generator CPU: 41% of a core on 1 core(s), not saturated: latency valid for the targets"},
		},
		{
			name: "delays measured, under the limit",
			gen:  Generator{CPUPercent: 41, Cores: 1, GOMAXPROCS: 1, SchedP99Ms: 0.26, SchedMaxMs: 8.4, PauseMaxMs: 0.3, RunSeconds: 70, WaitSeconds: 3, LatencyValid: true},
			want: []string{"GOMAXPROCS 1", "its goroutines waited to run 0.260 ms at p99 (longest 8.40 ms", "its threads ran 70 s and waited 3 s for a CPU", "latency valid for the targets"},
		},
		{
			name: "not saturated but its goroutines waited",
			gen: Generator{CPUPercent: 41, Cores: 1, GOMAXPROCS: 1, SchedP99Ms: 41.9, SchedMaxMs: 201, LatencyValid: false,
				Reason: "the load generator's goroutines waited up to 41.9ms to run at the 99th percentile (limit 1ms, longest 201ms): its latency includes its own queueing"},
			want:      []string{"**not valid for latency targets**: the load generator's goroutines waited up to 41.9ms"},
			wantEntry: "not valid: the load generator's goroutines waited up to 41.9ms",
		},
		{
			name: "who used its CPU set",
			gen: Generator{CPUPercent: 40, Cores: 1, LatencyValid: true,
				Set: &SetUse{CPUs: "0", CapacitySeconds: 200, HarnessSeconds: 90, OthersSeconds: 50, InterruptSeconds: 4, StealSeconds: 1}},
			want: []string{"load generator's CPU 0 over the run (200 s): the harness's processes there 90 s (45%), other processes 50 s (25%), interrupts 4 s, steal 1 s"},
		},
		{
			name: "the load it drove within the delay limit, interval by interval",
			gen: Generator{CPUPercent: 40, Cores: 1, LatencyValid: true,
				Rates: &GeneratorRates{IntervalSeconds: 5, DelayLimitMs: 1, ValidUpTo: 3512, InvalidFrom: 5230, Valid: 9, Busy: 30}},
			want: []string{"load generator in 5 s intervals: its goroutines waited at most 1 ms at p99 in 9 of 30 with requests, the busiest of them at 3,512 requests/s; longer from 5,230 requests/s"},
		},
		{
			name: "no interval within the limit",
			gen: Generator{CPUPercent: 40, Cores: 1, LatencyValid: true,
				Rates: &GeneratorRates{IntervalSeconds: 5, DelayLimitMs: 1, InvalidFrom: 300, Busy: 30}},
			want: []string{"in 0 of 30 with requests; longer from 300 requests/s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := Environment{Generator: &tt.gen}
			lines := strings.Join(cpuLines(env), "\n")
			for _, w := range tt.want {
				if !strings.Contains(lines, w) {
					t.Errorf("lines\n%s\nlack %q", lines, w)
				}
			}
			got := latencyInvalid(&Entry{Reports: []*Report{{Environment: env}}})
			if !strings.HasPrefix(got, tt.wantEntry) || (tt.wantEntry == "") != (got == "") {
				t.Errorf("latencyInvalid = %q, want %q...", got, tt.wantEntry)
			}
		})
	}
}

func TestTheCPUSetsLineSaysEachProcesssNiceWhenTheRunSetOne(t *testing.T) {
	tests := []struct {
		name string
		sets CPUSets
		want string
	}{
		{
			name: "pinned, before priorities were set (unchanged)",
			sets: CPUSets{Pinned: true, Processes: map[string]string{"gateway": "1", "simulator": "0", "fakewa": "0"}},
			want: "CPU sets: fakewa on CPU 0, gateway on CPU 1, simulator on CPU 0",
		},
		{
			name: "pinned, the world's servers below the generator",
			sets: CPUSets{Pinned: true, Processes: map[string]string{"gateway": "1", "simulator": "0", "fakewa": "0", "redis-server": "0"},
				Nice: map[string]string{"gateway": "0", "simulator": "0", "fakewa": "10", "redis-server": "0 to 10"}},
			want: "CPU sets: fakewa on CPU 0 at nice 10, gateway on CPU 1 at nice 0, redis-server on CPU 0 at nice 0 to 10, simulator on CPU 0 at nice 0",
		},
		{
			name: "the harness's scheduler group, where the kernel groups by session",
			sets: CPUSets{Pinned: true, Processes: map[string]string{"gateway": "1", "fakewa": "0"}, Nice: map[string]string{"gateway": "0", "fakewa": "10"},
				Autogroup: "/autogroup-12 nice -15"},
			want: "CPU sets: fakewa on CPU 0 at nice 10, gateway on CPU 1 at nice 0; scheduler group of the harness /autogroup-12 nice -15",
		},
		{
			name: "not pinned, a nice asked for",
			sets: CPUSets{Note: "not requested", Nice: map[string]string{"fakelaravel": "5", "simulator": "0"}},
			want: "CPU sets: not pinned, not requested; fakelaravel at nice 5, simulator at nice 0",
		},
		{
			name: "not pinned",
			sets: CPUSets{Note: "not requested"},
			want: "CPU sets: not pinned, not requested",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuLines(Environment{CPUSets: &tt.sets}); len(got) != 1 || got[0] != tt.want {
				t.Errorf("lines %q, want [%q]", got, tt.want)
			}
		})
	}
}
