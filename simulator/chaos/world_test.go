package chaos

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"wagate/simulator/run"
)

// playOnAWholeWorld writes doc (a scenario document) as name in a fresh folder and plays it on a
// whole world (bin/gateway, bin/fakelaravel, redis-server, fakewa in-process) until settled, the
// simulator's log kept beside it; it returns the run's folder and the faults it played. It skips
// in -short and without redis-server (unless WAGATE_REQUIRE_SERVERS says it is required).
func playOnAWholeWorld(t *testing.T, name string, doc []byte) (out string, tl run.FaultTimeline) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole world for about 40 s")
	}
	bin := binDir(t)
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
		if os.Getenv("WAGATE_REQUIRE_SERVERS") != "" {
			t.Fatal("redis-server is required")
		}
		t.Skip("no redis-server")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "out")
	lf, err := os.Create(filepath.Join(dir, "simulator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := run.Run(ctx, run.Options{Scenario: file, Out: out, BinDir: bin, NoNDJSON: true, DrainUntilSettled: true,
		Logger: slog.New(slog.NewTextHandler(lf, nil))}); err != nil {
		t.Fatalf("run: %v", err)
	}
	tl, err = run.ReadFaultTimeline(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, tl
}

// checkPlayed fails the test unless the fault of window w was played: without error, started,
// and ended after its start.
func checkPlayed(t *testing.T, w run.FaultWindow) {
	t.Helper()
	if w.Error != "" || w.Start.IsZero() || !w.End.After(w.Start) {
		t.Errorf("%s: not played: error %q, window %s..%s", w.Name, w.Error, w.Start, w.End)
	}
}

// checkEachPlayedCounting logs each fault of tl with its recovery and checks that it was played
// (checkPlayed) and that its detail counts what it did (re's first group, a number, above 0: want
// otherwise fails it), and that tl holds n faults.
func checkEachPlayedCounting(t *testing.T, tl run.FaultTimeline, n int, re *regexp.Regexp, want string) {
	t.Helper()
	for _, w := range tl.Faults {
		t.Logf("%s: %s (recovered %v in %.0f ms)", w.Name, w.Detail, w.Recovered, w.RecoveryMS)
		checkPlayed(t, w)
		if m := re.FindStringSubmatch(w.Detail); m == nil || m[1] == "0" {
			t.Errorf("%s: %q, want %s", w.Name, w.Detail, want)
		}
	}
	if len(tl.Faults) != n {
		t.Errorf("%d faults played, want %d", len(tl.Faults), n)
	}
}

// gatewayLog returns the gateway's log of the run in out.
func gatewayLog(t *testing.T, out string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "logs", "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logOutcome reads the outcome of the run in out, fails the test if the ground truth checked no
// session, and logs the rest: whether the invariants held is the campaign's verdict, not the
// played tests'.
func logOutcome(t *testing.T, out string) {
	t.Helper()
	oc, err := run.ReadOutcome(out)
	if err != nil {
		t.Fatal(err)
	}
	if oc.Sessions == 0 {
		t.Error("the ground truth checked no session")
	}
	t.Logf("outcome (the campaign judges it): %d sessions, %d lost, %d stale, %d gateway mismatches %v", oc.Sessions, oc.Lost, oc.Stale, oc.GatewayMismatches, oc.Mismatches)
}

// chaosWithFaults is scenarios/chaos.yaml with faults (a YAML faults: section) appended.
func chaosWithFaults(t *testing.T, faults string) []byte {
	t.Helper()
	base, err := os.ReadFile("../../scenarios/chaos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return append(base, faults...)
}
