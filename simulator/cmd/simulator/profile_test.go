package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestProfilingWritesTheCPUProfileTheTraceWindowAndTheHeapAfterIt(t *testing.T) {
	dir := t.TempDir()
	p := profiling{
		cpuProfile: filepath.Join(dir, "cpu.pprof"),
		trace:      filepath.Join(dir, "run.trace"),
		memProfile: filepath.Join(dir, "heap.pprof"),
		traceFrom:  20 * time.Millisecond,
		traceFor:   50 * time.Millisecond,
	}
	stop := p.start(context.Background(), io.Discard)
	end := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(end) { // something for the CPU profile
	}
	stop()
	for _, f := range []string{p.cpuProfile, p.memProfile} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := profile.Parse(fh); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		fh.Close()
	}
	if st, err := os.Stat(p.trace); err != nil || st.Size() == 0 {
		t.Errorf("trace: %v, %v", st, err)
	}
}

func TestARunEndingBeforeTheWindowWritesNoTrace(t *testing.T) {
	dir := t.TempDir()
	p := profiling{trace: filepath.Join(dir, "run.trace"), memProfile: filepath.Join(dir, "heap.pprof"), traceFrom: time.Hour, traceFor: time.Second}
	p.start(context.Background(), io.Discard)()
	for _, f := range []string{p.trace, p.memProfile} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s written by a run that ended before the window: %v", filepath.Base(f), err)
		}
	}
}
