package cpuset

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResolveSplitsTheMachineOrSaysWhatIsWrong(t *testing.T) {
	two := []int{0, 1}
	four := []int{0, 1, 2, 3}
	tests := []struct {
		name           string
		gateway, world string
		online         []int
		wantGateway    []int
		wantWorld      []int
		wantNote       string
		wantErr        string
	}{
		{name: "nothing asked pins nothing", online: two, wantNote: "not requested"},
		{name: "off pins nothing", gateway: "off", online: two, wantNote: "not requested"},
		{name: "auto on two cores: gateway on the last", gateway: "auto", online: two, wantGateway: []int{1}, wantWorld: []int{0}},
		{name: "auto on four cores: world gets the other three", gateway: "auto", online: four, wantGateway: []int{3}, wantWorld: []int{0, 1, 2}},
		{name: "auto on one core: not pinned, said why", gateway: "auto", online: []int{0}, wantNote: "one core (CPU 0), which the gateway shares"},
		{name: "explicit sets", gateway: "1", world: "0", online: two, wantGateway: []int{1}, wantWorld: []int{0}},
		{name: "explicit gateway, world the rest", gateway: "0", online: four, wantGateway: []int{0}, wantWorld: []int{1, 2, 3}},
		{name: "ranges and lists", gateway: "2-3", world: "0,1", online: four, wantGateway: []int{2, 3}, wantWorld: []int{0, 1}},
		{name: "a CPU that does not exist", gateway: "2", world: "0", online: two, wantErr: "gateway: CPU 2 does not exist on this machine, which has CPUs 0-1"},
		{name: "a world CPU that does not exist", gateway: "1", world: "0,5-6", online: two, wantErr: "world: CPU 5-6 does not exist"},
		{name: "overlapping sets", gateway: "0-1", world: "1-2", online: four, wantErr: "share CPU 1; give each its own CPUs"},
		{name: "gateway takes every CPU", gateway: "0-1", online: two, wantErr: "leave at least one for the world"},
		{name: "not a CPU list", gateway: "one", online: two, wantErr: `"one" in "one" is not a CPU id`},
		{name: "backwards range", gateway: "3-1", online: four, wantErr: "is not a CPU id or a range"},
		{name: "world without gateway", world: "0", online: two, wantErr: "give the gateway its CPUs too"},
		{name: "auto gateway with a named world", gateway: "auto", world: "0", online: two, wantErr: "leave world out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.gateway, tt.world, tt.online)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrCPUs) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q, %q) error = %v, want ErrCPUs containing %q", tt.gateway, tt.world, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tt.gateway, tt.world, err)
			}
			if got.Pinned != (tt.wantGateway != nil) || !slices.Equal(got.Gateway, tt.wantGateway) || !slices.Equal(got.World, tt.wantWorld) {
				t.Errorf("Resolve(%q, %q) = %+v, want gateway %v world %v", tt.gateway, tt.world, got, tt.wantGateway, tt.wantWorld)
			}
			if !strings.Contains(got.Note, tt.wantNote) {
				t.Errorf("note = %q, want it to contain %q", got.Note, tt.wantNote)
			}
		})
	}
}

func TestFormatCollapsesRangesAndParseReadsThemBack(t *testing.T) {
	for _, tt := range []struct {
		ids  []int
		text string
	}{
		{[]int{0}, "0"},
		{[]int{0, 1, 2, 5}, "0-2,5"},
		{[]int{1, 3, 4}, "1,3-4"},
		{nil, ""},
	} {
		if got := Format(tt.ids); got != tt.text {
			t.Errorf("Format(%v) = %q, want %q", tt.ids, got, tt.text)
		}
		if tt.text == "" {
			continue
		}
		if back, err := Parse(tt.text); err != nil || !slices.Equal(back, tt.ids) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.text, back, err, tt.ids)
		}
	}
}

func TestTheGatewayAndTheFloorRunOnTheGatewaySetEverythingElseOnTheWorld(t *testing.T) {
	a := Assignment{Pinned: true, Gateway: []int{1}, World: []int{0}}
	for name, want := range map[string][]int{"gateway": {1}, "fakelaravel": {0}, "redis-server": {0}, "floor": {1}} {
		if got := a.ForProcess(name); !slices.Equal(got, want) {
			t.Errorf("ForProcess(%q) = %v, want %v", name, got, want)
		}
	}
	if got := (Assignment{}).ForProcess("gateway"); got != nil {
		t.Errorf("unpinned ForProcess = %v, want nil", got)
	}
}

func TestALoadGeneratorThatSaturatesItsCoresOrDelaysItsGoroutinesInvalidatesLatency(t *testing.T) {
	tests := []struct {
		name       string
		gen        Generator
		wantValid  bool
		wantReason string
	}{
		{"idle generator", Generator{CPUPercent: 5, Cores: 1}, true, ""},
		{"busy but under the limit", Generator{CPUPercent: 89, Cores: 1}, true, ""},
		{"exactly at the limit", Generator{CPUPercent: 90, Cores: 1}, true, ""},
		{"saturated single core", Generator{CPUPercent: 97, Cores: 1}, false, ""},
		{"two cores, one and a half busy", Generator{CPUPercent: 150, Cores: 2}, true, ""},
		{"two cores, both saturated", Generator{CPUPercent: 185, Cores: 2}, false, ""},
		{"cores unknown: not judged", Generator{CPUPercent: 300}, true, ""},
		{"idle, goroutines run within the delay limit", Generator{CPUPercent: 40, Cores: 1, SchedP99: 800 * time.Microsecond, SchedMax: 30 * time.Millisecond}, true, ""},
		{"exactly at the delay limit", Generator{CPUPercent: 40, Cores: 1, SchedP99: DelayLimit}, true, ""},
		{"not saturated but goroutines wait beyond the limit", Generator{CPUPercent: 41, Cores: 1, SchedP99: 12 * time.Millisecond, SchedMax: 250 * time.Millisecond}, false, ""},
		{"delays not measured: judged on CPU alone", Generator{CPUPercent: 41, Cores: 1}, true, ""},
		{"delayed while other processes held its CPU", Generator{CPUPercent: 10, Cores: 1, SchedP99: 470 * time.Millisecond,
			Threads: Sched{Run: 19 * time.Second, Wait: 127 * time.Second},
			Set:     Use([]int{0}, CPUTime{Tasks: 90 * time.Second}, 25*time.Second, 150*time.Second)},
			false, "waited for a CPU 87% of the time they could run: other processes of the machine ran 65.0 s on CPU 0 (43% of it)"},
		{"delayed while it had its CPU: its own work", Generator{CPUPercent: 41, Cores: 1, SchedP99: 40 * time.Millisecond,
			Threads: Sched{Run: 70 * time.Second, Wait: 5 * time.Second}}, false, "the delay is the generator's own work"},
		{"delayed, waiting a third of the time while the harness's other processes ran on its set", Generator{CPUPercent: 40, Cores: 1, SchedP99: 6300 * time.Microsecond,
			Threads: Sched{Run: 54 * time.Second, Wait: 33 * time.Second},
			Set:     SetUse{CPUs: []int{0}, Capacity: 150 * time.Second, Own: 84 * time.Second, Self: 54 * time.Second, Others: 3 * time.Second}},
			false, "its threads waited for a CPU 38% of the time they could run: the harness's other processes on CPU 0 ran 30.0 s (20%)"},
		{"delayed, its set to itself: its own work", Generator{CPUPercent: 40, Cores: 1, SchedP99: 6300 * time.Microsecond,
			Threads: Sched{Run: 54 * time.Second, Wait: 33 * time.Second},
			Set:     SetUse{CPUs: []int{0}, Capacity: 150 * time.Second, Own: 56 * time.Second, Self: 54 * time.Second, Others: 3 * time.Second}},
			false, "its threads had their CPU (waited 38% of the time they could run): the delay is the generator's own work"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			valid, reason := LatencyValidity(tt.gen)
			if valid != tt.wantValid {
				t.Errorf("LatencyValidity(%+v) = %v (%s), want %v", tt.gen, valid, reason, tt.wantValid)
			}
			if !valid && !strings.Contains(reason, "its own queueing") {
				t.Errorf("reason %q does not say why", reason)
			}
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason %q does not say %q", reason, tt.wantReason)
			}
		})
	}
}

func TestSchedstatLines(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Sched
		ok   bool
	}{
		{"7413059 79696577 84\n", Sched{Run: 7413059, Wait: 79696577}, true},
		{"0 0 0", Sched{}, true},
		{"123", Sched{}, false},
		{"a b c", Sched{}, false},
		{"-1 5 1", Sched{}, false},
	} {
		got, err := ParseSchedstat(tc.line)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%q: %+v %v, want %+v ok %v", tc.line, got, err, tc.want, tc.ok)
		}
	}
}

// The gateway (or the floor) had its core unless it waited for a CPU more than it ran.
func TestTheGatewayHadItsCoreUnlessItWaitedMoreThanItRan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		run, wait time.Duration
		valid     bool
	}{
		{"never ran (no accounting)", 0, 0, true},
		{"its own core: little wait", 10 * time.Second, 300 * time.Millisecond, true},
		{"as long waiting as running", 5 * time.Second, 5 * time.Second, true},
		{"a shared core: waited more than it ran", 2 * time.Second, 9 * time.Second, false},
	} {
		valid, reason := CoreValidity("gateway", Sched{Run: tc.run, Wait: tc.wait}, SetUse{})
		if valid != tc.valid || (reason == "") != tc.valid {
			t.Errorf("%s: valid %v (%q), want %v", tc.name, valid, reason, tc.valid)
		}
	}
}

// A live process's accounting is read from /proc: this test's own threads ran.
func TestReadSchedOfThisProcess(t *testing.T) {
	s, err := ReadSched(os.Getpid())
	if err != nil {
		t.Skipf("no /proc schedstat here: %v", err)
	}
	if s.Run <= 0 {
		t.Errorf("this process ran %v", s.Run)
	}
}
