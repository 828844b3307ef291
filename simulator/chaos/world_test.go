package chaos

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
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

// chaosWithFaults is scenarios/chaos.yaml with faults (a YAML faults: section) appended.
func chaosWithFaults(t *testing.T, faults string) []byte {
	t.Helper()
	base, err := os.ReadFile("../../scenarios/chaos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return append(base, faults...)
}
