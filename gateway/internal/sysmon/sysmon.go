// Package sysmon keeps the Go runtime's system monitor of the gateway process ticking at its
// steady period instead of sleeping between timers, which costs an idle gateway with thousands
// of WhatsApp sessions about a third of its CPU (issue 18).
//
// The runtime's sysmon thread sleeps until the next timer while every P is idle ("deep
// sleep"), and any system call a goroutine enters meanwhile wakes it at once with its period
// reset to 20 µs (runtime/proc.go: sysmon, entersyscall). An idle gateway is woken by nothing
// but whatsmeow's keepalives (one ping every 20-30 s per session, each a socket write, a read
// and a few goroutine hand-offs): with 1000 sessions that is ~40 wakes a second, and each one
// also woke sysmon for one or more 20 µs sleeps and a futex sleep: 27% of the process's CPU in a
// perf profile of BenchmarkIdleConnectedSession (1010 sessions, 60 s window), the largest single
// part of the idle cost. Go has no setting for sysmon's period, but sysmon never enters deep
// sleep while a scheduler trace is due (GODEBUG=schedtrace=N): it then sleeps 20 µs doubling to
// 10 ms while nothing needs it, a fixed ~100 wakes a second whatever the number of sessions.
//
// Setting is that trace at its longest period (2^31-1 ms, 24.8 days): the runtime prints a
// one-line "SCHED" summary on stderr at most once every 24.8 days (the first once the machine's
// monotonic clock passes 24.8 days) and, with a fatal runtime error, the scheduler's state
// before the crash report. GODEBUG is read by the runtime only as
// the process starts, so Reexec starts the gateway again in its own process (execve: same PID,
// same CPU affinity) with it added.
package sysmon

import (
	"strconv"
	"strings"
)

// Key is the GODEBUG key Setting sets.
const Key = "schedtrace"

// Setting is the GODEBUG setting that keeps sysmon out of its deep sleep: a scheduler trace
// every 2^31-1 ms.
const Setting = Key + "=2147483647"

// Env returns env with Setting added to its GODEBUG (kept as it is otherwise), and whether it
// had to be added: false when GODEBUG already names schedtrace, whatever its value (the
// operator's own trace, or this process already started again).
func Env(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for _, field := range strings.Split(v, ",") {
			if k, _, _ := strings.Cut(field, "="); strings.TrimSpace(k) == Key {
				return env, false
			}
		}
		if found {
			continue // a later GODEBUG= entry: getenv reads the first one
		}
		found = true
		if strings.TrimSpace(v) == "" {
			out = append(out, "GODEBUG="+Setting)
		} else {
			out = append(out, "GODEBUG="+v+","+Setting)
		}
	}
	if !found {
		out = append(out, "GODEBUG="+Setting)
	}
	return out, true
}

// Steady reports whether env's GODEBUG keeps sysmon out of its deep sleep: a schedtrace above 0
// in its first GODEBUG entry (schedtrace=0, the operator's way to keep Go's default, does not).
func Steady(env []string) bool {
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			continue
		}
		steady := false
		for _, field := range strings.Split(v, ",") { // the last setting of a key wins, as in the runtime
			if k, val, _ := strings.Cut(field, "="); strings.TrimSpace(k) == Key {
				n, err := strconv.ParseInt(val, 10, 32)
				steady = err == nil && n > 0
			}
		}
		return steady
	}
	return false
}
