package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"wagate/reports"
)

// ExitThresholdsFailed is the simulator's exit code when a threshold failed (k6's 99).
const ExitThresholdsFailed = 99

// Runner starts one simulator run as a child process in its own process group and makes sure
// nothing of it survives: when the run ends, times out or its context is cancelled, the whole
// group gets SIGINT, then SIGKILL after Grace, and a final SIGKILL sweeps any process left in it.
//
// The simulator is invoked as
//
//	<Simulator...> run -out DIR [-label NAME] [-no-ndjson] [-set key=value]... SCENARIO.yaml
//
// (flags before the scenario file, so Go's flag package parses them). Its processes (gateway,
// fakelaravel) must stay in its process group, which exec's default gives them.
type Runner struct {
	// Simulator is the command prefix, e.g. ["bin/simulator"].
	Simulator []string
	// Grace is the time between SIGINT and SIGKILL when a run is stopped (default 15 s).
	Grace time.Duration
	// Timeout bounds one run (0: no bound beyond the context's).
	Timeout time.Duration
	// Echo, when set, receives the simulator's output lines prefixed with "  | " as they come.
	Echo io.Writer
	// NoNDJSON passes -no-ndjson to `simulator run SCENARIO.yaml` (not to floor, k6-cost or a k6
	// script's run, which write no metrics.ndjson): the run folder then has none. Set from
	// !Matrix.NDJSON.
	NoNDJSON bool
}

// LogFileName is the simulator's captured stdout and stderr inside its output folder.
const LogFileName = "simulator.log"

// RunResult is the outcome of one simulator run.
type RunResult struct {
	// ExitCode is the simulator's exit code; -1 when it was killed by a signal or never started.
	ExitCode int
	// Err is set when the run did not complete normally (start failure, timeout, cancellation,
	// exit code other than 0 and 99).
	Err error
	// Elapsed is the run's wall-clock time.
	Elapsed time.Duration
	// Report is the run's report.json, when it wrote one.
	Report *reports.Report
}

// OK reports whether the run completed and every threshold held.
func (r RunResult) OK() bool {
	return r.Err == nil && r.ExitCode == 0 && r.Report != nil && r.Report.ThresholdsOK()
}

// ErrRun reports a simulator run that did not complete.
var ErrRun = errors.New("simulator run")

// Args returns the simulator's argument list for one run (without the command itself).
func Args(scenario, outDir, label string, set []string) []string {
	return CommandArgs(KindRun, scenario, outDir, label, set)
}

// CommandArgs is Args for the simulator's command ("run", or "floor" for a floor entry).
func CommandArgs(command, scenario, outDir, label string, set []string) []string {
	return commandArgs(command, scenario, outDir, label, set, false)
}

// commandArgs is CommandArgs, with -no-ndjson after the label when noNDJSON is set and the
// command runs a YAML scenario (a k6 script's run writes points only to -out json=FILE).
func commandArgs(command, scenario, outDir, label string, set []string, noNDJSON bool) []string {
	args := []string{command, "-out", outDir}
	if label != "" {
		args = append(args, "-label", label)
	}
	if noNDJSON && command == KindRun && (strings.HasSuffix(scenario, ".yaml") || strings.HasSuffix(scenario, ".yml")) {
		args = append(args, "-no-ndjson")
	}
	for _, kv := range set {
		args = append(args, "-set", kv)
	}
	return append(args, scenario)
}

// Run runs the simulator once for scenario with the given overrides, writing into outDir (created
// if needed); label names the run in its report. It returns when the simulator and every process
// of its group are gone.
func (r *Runner) Run(ctx context.Context, scenario, label string, set []string, outDir string) RunResult {
	return r.RunCommand(ctx, KindRun, scenario, label, set, outDir)
}

// RunCommand is Run with the simulator's command: "run", or "floor" for a floor entry.
func (r *Runner) RunCommand(ctx context.Context, command, scenario, label string, set []string, outDir string) RunResult {
	start := time.Now()
	res := RunResult{ExitCode: -1}
	if len(r.Simulator) == 0 {
		res.Err = fmt.Errorf("%w: no simulator command", ErrRun)
		return res
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		res.Err = fmt.Errorf("%w: %w", ErrRun, err)
		return res
	}
	logFile, err := os.Create(filepath.Join(outDir, LogFileName))
	if err != nil {
		res.Err = fmt.Errorf("%w: %w", ErrRun, err)
		return res
	}
	defer logFile.Close()

	args := append(append([]string(nil), r.Simulator[1:]...), commandArgs(command, scenario, outDir, label, set, r.NoNDJSON)...)
	cmd := exec.Command(r.Simulator[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The child writes straight into the log file (no pipe), so Wait returns as soon as the
	// simulator exits even if a grandchild still holds the file open; Echo tails the file.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	fmt.Fprintf(logFile, "# %s %v\n", cmd.Path, args)

	if err := cmd.Start(); err != nil {
		res.Err = fmt.Errorf("%w: start %s: %w", ErrRun, r.Simulator[0], err)
		return res
	}
	pgid := cmd.Process.Pid
	stopEcho := r.echo(logFile.Name())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	runCtx := ctx
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	grace := r.Grace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	var waitErr error
	var stopped error
	select {
	case waitErr = <-done:
	case <-runCtx.Done():
		stopped = runCtx.Err()
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		timer := time.NewTimer(grace)
		select {
		case waitErr = <-done:
			timer.Stop()
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			waitErr = <-done
		}
	}
	killGroup(pgid)
	sweepOrphans()
	stopEcho()
	res.Elapsed = time.Since(start)
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if rep, err := reports.Load(filepath.Join(outDir, reports.FileName)); err == nil {
		res.Report = rep
	} else if !errors.Is(err, os.ErrNotExist) {
		res.Err = fmt.Errorf("%w: %w", ErrRun, err)
	}
	var exitErr *exec.ExitError
	switch {
	case stopped != nil:
		res.Err = fmt.Errorf("%w: stopped: %w", ErrRun, stopped)
	case waitErr != nil && !errors.As(waitErr, &exitErr):
		res.Err = fmt.Errorf("%w: %w", ErrRun, waitErr)
	case res.ExitCode != 0 && res.ExitCode != ExitThresholdsFailed:
		res.Err = fmt.Errorf("%w: exit code %d (see %s)", ErrRun, res.ExitCode, filepath.Join(outDir, LogFileName))
	case res.Report == nil && res.Err == nil:
		res.Err = fmt.Errorf("%w: exited %d without writing %s", ErrRun, res.ExitCode, reports.FileName)
	}
	return res
}

// BecomeSubreaper makes this process the reaper of its orphaned descendants (Linux
// PR_SET_CHILD_SUBREAPER): a process the simulator started in another process group that outlives
// the simulator is re-parented here instead of to init, and Run stops it. Call it once at start.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	return nil
}

// sweepOrphans kills every process re-parented to this one (see BecomeSubreaper) and all their
// descendants, and reaps them. Run calls it after the simulator exited, when no other child of
// this process should exist.
func sweepOrphans() {
	self := os.Getpid()
	children := map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := procParent(e.Name()); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	direct := children[self]
	queue := append([]int(nil), direct...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		_ = syscall.Kill(pid, syscall.SIGKILL)
		queue = append(queue, children[pid]...)
	}
	for _, pid := range direct {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	}
}

// procParent reads a process's parent pid from /proc/PID/stat.
func procParent(pid string) (int, bool) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:]) // state ppid ...
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// killGroup sends SIGKILL to every process left in the process group pgid and waits (bounded,
// 5 s) until none of them runs any more. Zombies waiting for their parent to reap them count as
// gone: they hold no resources but a process table slot.
func killGroup(pgid int) {
	for i := 0; i < 250; i++ {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) || !groupRunning(pgid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupRunning reports whether a process of group pgid is running (not a zombie), from /proc.
func groupRunning(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: keep killing until the bound
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		state, group, ok := procState(e.Name())
		if ok && group == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// procState reads a process's state and process group from /proc/PID/stat.
func procState(pid string) (state byte, pgrp int, ok bool) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces and parentheses
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+1:]) // state ppid pgrp ...
	if len(fields) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(fields[2])
	return fields[0][0], pgrp, err == nil
}

// echo copies the log file's new lines to r.Echo, prefixed with "  | " so the simulator's output
// is told apart from the orchestrator's progress lines, until the returned stop function is
// called (which copies what is left and returns when the copying is done).
func (r *Runner) echo(path string) (stop func()) {
	if r.Echo == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		var pending []byte
		buf := make([]byte, 32<<10)
		ticker := time.NewTicker(250 * time.Millisecond)
		defer ticker.Stop()
		for last := false; ; {
			for {
				n, _ := f.Read(buf)
				if n == 0 {
					break
				}
				pending = append(pending, buf[:n]...)
				for {
					i := indexLineEnd(pending)
					if i < 0 {
						break
					}
					if line := pending[:i]; len(line) > 0 {
						fmt.Fprintf(r.Echo, "  | %s\n", line)
					}
					pending = pending[i+1:]
				}
			}
			if last {
				if len(pending) > 0 {
					fmt.Fprintf(r.Echo, "  | %s\n", pending)
				}
				return
			}
			select {
			case <-quit:
				last = true
			case <-ticker.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// indexLineEnd finds a '\n' or '\r' (live progress lines redraw with '\r').
func indexLineEnd(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}
