package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// profiling is what `simulator run` is asked to record of its own process (the load generator:
// users, pollers, in-process fakewa): a CPU profile of the whole run and an execution trace of
// a window of it (go tool pprof FILE, go tool trace FILE). They say where the generator's time
// goes, e.g. why the client's latency is above the gateway's own.
type profiling struct {
	cpuProfile string
	trace      string
	traceFrom  time.Duration
	traceFor   time.Duration
	// memProfile is written at the end of the trace window (traceFrom+traceFor), mid-run, when the
	// world's heap is at its working size.
	memProfile string
}

// start begins the CPU profile now and the trace after traceFrom; stop ends both (the trace at
// the latest when its window closes) and reports what it could not write.
func (p profiling) start(ctx context.Context, stderr io.Writer) (stop func()) {
	var stops []func()
	if p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "simulator run: cpu profile:", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "simulator run: cpu profile:", err)
			_ = f.Close()
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); _ = f.Close() })
		}
	}
	if p.trace != "" || p.memProfile != "" {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.traceWindow(ctx, stderr)
		}()
		stops = append(stops, func() { cancel(); <-done })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// traceWindow writes the execution trace from traceFrom for traceFor (or until ctx ends), then
// the heap profile.
func (p profiling) traceWindow(ctx context.Context, stderr io.Writer) {
	wait := time.NewTimer(p.traceFrom)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return
	case <-wait.C:
	}
	if p.trace != "" {
		p.writeTrace(ctx, stderr)
	} else {
		wait.Reset(p.traceFor)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
	}
	if p.memProfile != "" && ctx.Err() == nil {
		p.writeHeap(stderr)
	}
}

// writeHeap writes the heap profile (live objects as of the last GC).
func (p profiling) writeHeap(stderr io.Writer) {
	f, err := os.Create(p.memProfile)
	if err != nil {
		fmt.Fprintln(stderr, "simulator run: heap profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintln(stderr, "simulator run: heap profile:", err)
	}
}

// writeTrace writes the execution trace for traceFor (or until ctx ends).
func (p profiling) writeTrace(ctx context.Context, stderr io.Writer) {
	f, err := os.Create(p.trace)
	if err != nil {
		fmt.Fprintln(stderr, "simulator run: trace:", err)
		return
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		fmt.Fprintln(stderr, "simulator run: trace:", err)
		return
	}
	defer trace.Stop()
	window := time.NewTimer(p.traceFor)
	defer window.Stop()
	select {
	case <-ctx.Done():
	case <-window.C:
	}
}
