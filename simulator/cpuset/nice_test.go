package cpuset

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTheWorldsServersRunBelowTheLoadGeneratorWhenPinnedUnlessTheScenarioSaysOtherwise(t *testing.T) {
	ten, zero, nineteen, twenty, negative := 10, 0, 19, 20, -1
	tests := []struct {
		name    string
		set     *int
		pinned  bool
		want    int
		wantErr string
	}{
		{name: "pinned, not given: the default", pinned: true, want: DefaultServersNice},
		{name: "not pinned, not given: left alone", want: 0},
		{name: "pinned, turned off", set: &zero, pinned: true, want: 0},
		{name: "not pinned, asked for", set: &ten, want: 10},
		{name: "the lowest priority", set: &nineteen, pinned: true, want: 19},
		{name: "beyond the lowest", set: &twenty, pinned: true, wantErr: "serversNice 20 is not between 0 (the load generator's priority) and 19"},
		{name: "ahead of the generator", set: &negative, pinned: true, wantErr: "serversNice -1 is not between 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveNice(tt.set, tt.pinned)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrCPUs) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want ErrCPUs containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ResolveNice = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestTheGatewaySideKeepsTheSimulatorsPriorityAndTheWorldsServersGetTheirs(t *testing.T) {
	a := Assignment{Pinned: true, Gateway: []int{1}, World: []int{0}, ServersNice: 10}
	for name, want := range map[string]int{"gateway": 0, "gateway-2": 0, "floor": 0, "fakewa": 10, "fakelaravel": 10, "redis-server": 10, "postgres": 10} {
		if got := a.NiceFor(name); got != want {
			t.Errorf("NiceFor(%q) = %d, want %d", name, got, want)
		}
	}
	for name, want := range map[string][]int{"gateway-2": {1}, "postgres": {0}} {
		if got := a.ForProcess(name); len(got) != 1 || got[0] != want[0] {
			t.Errorf("ForProcess(%q) = %v, want %v", name, got, want)
		}
	}
	for _, tt := range []struct{ own, steps, want int }{{0, 10, 10}, {-15, 10, -5}, {5, 10, 15}, {15, 10, MaxNice}, {0, 0, 0}} {
		if got := Below(tt.own, tt.steps); got != tt.want {
			t.Errorf("%d steps below nice %d = %d, want %d", tt.steps, tt.own, got, tt.want)
		}
	}
	for n, want := range map[Nice]string{{10, 10}: "10", {0, 0}: "0", {0, 10}: "0 to 10"} {
		if got := n.String(); got != want {
			t.Errorf("%+v says %q, want %q", n, got, want)
		}
	}
}

// helperEnv makes this test binary a child that starts threads and sleeps (TestHelperThreads).
const helperEnv = "WAGATE_CPUSET_THREADS_HELPER"

// TestHelperThreads is not a test: run as a child with helperEnv set, it keeps creating OS
// threads for 200 ms (each goroutine locked to a new thread) and sleeps, so that Renice meets
// threads that already run and threads being created while it runs.
func TestHelperThreads(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("a helper process for TestReniceSetsEveryThreadOfAProcessEvenThoseStartingMeanwhile")
	}
	for range 8 {
		go func() {
			runtime.LockOSThread()
			time.Sleep(30 * time.Second)
		}()
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(30 * time.Second)
}

func TestReniceSetsEveryThreadOfAProcessEvenThoseStartingMeanwhile(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc here")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperThreads$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(60 * time.Millisecond) // the helper runs on several threads and starts more
	if err := Renice(cmd.Process.Pid, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the helper's threads are all started
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task")
	if err != nil || len(entries) < 8 {
		t.Fatalf("the helper has %d threads (%v), want at least 8", len(entries), err)
	}
	if got, err := NiceOf(cmd.Process.Pid); err != nil || got != (Nice{10, 10}) {
		t.Errorf("the helper's %d threads are at nice %v (%v), want every one at 10", len(entries), got, err)
	}
	if got, err := NiceOf(0); err != nil || got.Highest != got.Lowest {
		t.Errorf("this process's threads are at nice %v (%v), want them unchanged and equal", got, err)
	}
}
