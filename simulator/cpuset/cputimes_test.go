package cpuset

import (
	"strings"
	"testing"
	"time"
)

const statBefore = `cpu  4000947 74613 731309 1638868 30501 0 60383 48142 0 0
cpu0 2006021 35362 363735 825258 8448 0 26745 24513 0 0
cpu1 1994925 39251 367573 813610 22052 0 33637 23629 0 0
intr 1 2 3
`

const statAfter = `cpu  4001806 74654 731413 1638868 30501 0 60385 48143 0 0
cpu0 2006448 35389 363783 825258 8448 0 26745 24514 0 0
cpu1 1995357 39265 367629 813710 22052 0 33639 23629 0 0
`

func TestPerCPUAccountingIsReadFromProcStatInTicks(t *testing.T) {
	before, err := ParseCPUTimes(statBefore)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseCPUTimes(statAfter)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 {
		t.Fatalf("CPUs %v, want 0 and 1 (the machine-wide line is not a CPU)", after)
	}
	// CPU 1: user +432, nice +14, system +56 ticks = 5.02 s; idle +100 = 1 s; softirq +2 = 20 ms.
	got := after.Sub(before, []int{1})
	want := CPUTime{Tasks: 5020 * time.Millisecond, Idle: time.Second, Interrupts: 20 * time.Millisecond}
	if got != want {
		t.Errorf("CPU 1 = %+v, want %+v", got, want)
	}
	both := after.Sub(before, []int{0, 1})
	if both.Steal != 10*time.Millisecond || both.Tasks != 5020*time.Millisecond+(427+27+48)*10*time.Millisecond {
		t.Errorf("CPUs 0-1 = %+v", both)
	}
	for _, bad := range []string{"cpu0 1 2 3\n", "cpuX 1 2 3 4 5 6 7 8\n", "cpu0 1 2 3 4 5 6 7 -8\n", "intr 1\n"} {
		if _, err := ParseCPUTimes(bad); err == nil {
			t.Errorf("ParseCPUTimes(%q) accepted", bad)
		}
	}
}

// A process that waited for a CPU waited for someone: the set's accounting says whom.
func TestTheWaitIsPutDownToWhoeverRanOnTheSet(t *testing.T) {
	wall := 100 * time.Second
	tests := []struct {
		name string
		use  SetUse
		want []string
	}{
		{"other processes ran a third of the core", Use([]int{1}, CPUTime{Tasks: 60 * time.Second}, 27*time.Second, wall),
			[]string{"other processes of the machine ran 33.0 s on CPU 1 (33% of it)"}},
		{"the hypervisor stole", Use([]int{1}, CPUTime{Tasks: 30 * time.Second, Steal: 9 * time.Second}, 29*time.Second, wall),
			[]string{"the hypervisor took 9.0 s of CPU 1 (steal, 9%)"}},
		{"both", Use([]int{0}, CPUTime{Tasks: 80 * time.Second, Steal: 6 * time.Second}, 40*time.Second, wall),
			[]string{"other processes of the machine ran 40.0 s", "; the hypervisor took 6.0 s"}},
		{"nobody else: its own threads", Use([]int{1}, CPUTime{Tasks: 52 * time.Second}, 50*time.Second, wall),
			[]string{"ran only 2.0 s on CPU 1 (2.0%)", "it waited for its own threads"}},
		{"tick rounding above the task time counts nobody", Use([]int{1}, CPUTime{Tasks: 50 * time.Second}, 50*time.Second+15*time.Millisecond, wall),
			[]string{"ran only 0.0 s"}},
		{"not measured", SetUse{}, []string{"not measured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.use.Neighbours()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Neighbours() = %q, want it to contain %q", got, w)
				}
			}
		})
	}
	valid, reason := CoreValidity("gateway", Sched{Run: 24 * time.Second, Wait: 33 * time.Second}, tests[0].use)
	if valid || !strings.Contains(reason, "waited for a CPU 58% of the time") || !strings.Contains(reason, "other processes of the machine ran 33.0 s") {
		t.Errorf("CoreValidity = %v, %q", valid, reason)
	}
}

// This machine's own /proc/stat parses and its CPUs count forward.
func TestReadCPUTimesOfThisMachine(t *testing.T) {
	a, err := ReadCPUTimes()
	if err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	ids, err := Online()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, ok := a[id]; !ok {
			t.Errorf("CPU %d of this process's set is not in /proc/stat", id)
		}
	}
	spin := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(spin) {
	}
	b, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Sub(a, ids); d.Tasks < 0 || d.Idle < 0 || d.Tasks+d.Idle+d.Interrupts+d.Steal <= 0 {
		t.Errorf("accounting over 30 ms of spinning = %+v", d)
	}
}
