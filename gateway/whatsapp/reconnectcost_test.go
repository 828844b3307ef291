package whatsapp_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"wagate/gateway/session"
)

// childCPU is the CPU time (user + system) process pid has used so far, from /proc (0 elsewhere).
func childCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) in parentheses; utime and stime
	// are the 14th and 15th fields of the line, the 12th and 13th after it.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// BenchmarkReconnectAfterRestart reports what bringing every session back after a WhatsApp
// restart costs (make bench-scale's fakewa-restart at 10,000 sessions, target: all back within
// 30 s): n sessions paired and connected on the real whatsmeow driver, fakewa (a child process)
// sends every connection a 503 stream error, and the benchmark waits until every session is
// connected again. It reports the wall time and the rate, and the CPU each reconnect cost this
// process (the session layer, whatsmeow, the device store) and fakewa's, so the wave's bound can be
// read on a loaded machine: at one core for the gateway, 10,000 reconnects in 30 s need at most
// 3 ms of gateway CPU each. Times move with the machine's load: read the CPU figures and ratios.
//
//	go test ./gateway/whatsapp -run '^$' -bench ReconnectAfterRestart -benchtime 1x
//
// WAGATE_RECONNECT_SESSIONS changes n (200); WAGATE_RECONNECT_CONCURRENCY sets the session
// layer's RestoreConcurrency (its default otherwise); WAGATE_RECONNECT_CPUPROFILE=FILE writes a
// CPU profile of the wave.
func BenchmarkReconnectAfterRestart(b *testing.B) {
	if testing.Short() {
		b.Skip("pairs hundreds of sessions")
	}
	n := envInt(b, "WAGATE_RECONNECT_SESSIONS", 200)
	cfg := session.Config{RestoreConcurrency: envInt(b, "WAGATE_RECONNECT_CONCURRENCY", 0)}
	w := newIdleCostWorldWith(b, cfg)
	w.pairSessions(n)
	settle()
	ctx := context.Background()
	var wall, cpu, fakewaCPU time.Duration
	rounds := 0
	for b.Loop() {
		stopProfile := startCPUProfile(b, os.Getenv("WAGATE_RECONNECT_CPUPROFILE"))
		connected0 := w.sink.connected.Load()
		cpu0, wa0, t0 := processCPU(), childCPU(w.fakewaPID), time.Now()
		if err := w.wa.Restart(ctx); err != nil {
			b.Fatal(err)
		}
		w.waitReconnected(n, t0, connected0)
		wall += time.Since(t0)
		cpu += processCPU() - cpu0
		fakewaCPU += childCPU(w.fakewaPID) - wa0
		stopProfile()
		rounds++
		settle()
	}
	per := float64(rounds * n)
	b.ReportMetric(wall.Seconds()/float64(rounds), "s/wave")
	b.ReportMetric(per/wall.Seconds(), "reconnects/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/per, "gateway-cpu-ms/reconnect")
	b.ReportMetric(float64(fakewaCPU.Microseconds())/1000/per, "fakewa-cpu-ms/reconnect")
}

// waitReconnected waits until each of n sessions dropped at t0 reported connected again (its
// status event; connected0 is the count before), at most a minute plus 50 ms per session.
func (w *idleCostWorld) waitReconnected(n int, t0 time.Time, connected0 int64) {
	w.tb.Helper()
	deadline := t0.Add(time.Minute + time.Duration(n)*50*time.Millisecond)
	for time.Now().Before(deadline) {
		if _, live := w.m.Counts(); live >= n && w.sink.connected.Load()-connected0 >= int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	byStatus, live := w.m.Counts()
	w.tb.Fatalf("%d of %d sessions live, %d reported connected again, %s after the restart (by status: %v)",
		live, n, w.sink.connected.Load()-connected0, time.Since(t0), byStatus)
}

// envInt reads a positive integer from the environment variable name, def when unset.
func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}
