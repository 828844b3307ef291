package sysmon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
)

func TestEnvAddsTheSettingToGODEBUGOnlyWhenItNamesNoSchedulerTrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"HOME=/root", "GOGC=50"}, []string{"HOME=/root", "GOGC=50", "GODEBUG=" + Setting}, true},
		{"an empty GODEBUG", []string{"GODEBUG=", "HOME=/root"}, []string{"GODEBUG=" + Setting, "HOME=/root"}, true},
		{"other GODEBUG settings kept", []string{"GODEBUG=gctrace=1,madvdontneed=0"}, []string{"GODEBUG=gctrace=1,madvdontneed=0," + Setting}, true},
		{"already set (the process started again)", []string{"GODEBUG=" + Setting}, []string{"GODEBUG=" + Setting}, false},
		{"the operator's own trace", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, []string{"GODEBUG=gctrace=1,schedtrace=1000"}, false},
		{"a key that only ends like it", []string{"GODEBUG=xschedtrace=1"}, []string{"GODEBUG=xschedtrace=1," + Setting}, true},
		{"a second GODEBUG entry is dropped (getenv reads the first)", []string{"GODEBUG=gctrace=1", "GODEBUG=x=1"}, []string{"GODEBUG=gctrace=1," + Setting}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.env)
			got, changed := Env(in)
			if changed != tc.changed || !slices.Equal(got, tc.want) {
				t.Errorf("Env(%q) = %q, %v; want %q, %v", tc.env, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(in, tc.env) {
				t.Errorf("Env changed its argument: %q", in)
			}
		})
	}
}

func TestSteadyOnlyWithASchedulerTraceAboveZero(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"GODEBUG=gctrace=1"}, false},
		{[]string{"GODEBUG=" + Setting}, true},
		{[]string{"GODEBUG=gctrace=1,schedtrace=1000"}, true},
		{[]string{"GODEBUG=schedtrace=0"}, false}, // the operator keeps Go's default
		{[]string{"GODEBUG=schedtrace=1000,schedtrace=0"}, false},
		{[]string{"GODEBUG=x=1", "GODEBUG=" + Setting}, false}, // getenv reads the first entry
	} {
		if got := Steady(tc.env); got != tc.want {
			t.Errorf("Steady(%q) = %v, want %v", tc.env, got, tc.want)
		}
	}
	if env, _ := Env([]string{"GODEBUG=gctrace=1"}); !Steady(env) {
		t.Errorf("Env's environment %q is not steady", env)
	}
}

// reexecChildEnv makes this test binary, run again by the test below, call Reexec and say what
// it runs with.
const reexecChildEnv = "WAGATE_SYSMON_TEST_CHILD"

func init() {
	if os.Getenv(reexecChildEnv) != "1" {
		return
	}
	if err := Reexec(); err != nil {
		fmt.Println("reexec:", err)
		os.Exit(1)
	}
	fmt.Printf("pid=%d godebug=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
	os.Exit(0)
}

// A process started without the setting starts again in itself with it, once: the same process
// id and GODEBUG extended (the runtime reads it as the process starts).
func TestReexecStartsTheProgramAgainInItsOwnProcessWithTheSetting(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), reexecChildEnv+"=1", "GODEBUG=gctrace=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	want := fmt.Sprintf("pid=%d godebug=gctrace=0,%s\n", cmd.Process.Pid, Setting)
	if stdout.String() != want {
		t.Errorf("child said %q, want %q (stderr %q)", stdout.String(), want, stderr.String())
	}
}
