package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/simulator/run"
)

// Faults on the gateway process drawn over each other are played one after the other, and the
// world keeps track of the gateway that runs: a SIGTERM, a redis-restart-while-gateway-down drawn
// while the SIGTERM's stop was still under way and a SIGKILL drawn during both are each played,
// without error, the run ends with the gateway answering, and no gateway process outlives it.
// Two redis-evict faults drawn over each other are played in turn too, each restoring Redis's own
// memory settings (before, the second restored the first's pressure: allkeys-lru at 2 MB until
// the run ended, seed 1 redis-evict schedule 1).
// Before, the SIGTERM (still scraping the gateway's metrics before its signal) found the gateway
// SIGKILLed and restarted by the Redis fault, failed its signal with "process already finished"
// and set the dead process back as the world's gateway: the run judged "the gateway exited by
// itself" and the restarted gateway was left running after it (chaos seed 1 schedule 161).
func TestFaultsOnTheGatewayProcessDrawnOverEachOtherArePlayedInTurn(t *testing.T) {
	out, tl := playOnAWholeWorld(t, "overlap.yaml", chaosWithFaults(t, `
faults:
  - {name: term, at: 3s, duration: 1s, process: {action: gateway-term}}
  - {name: redis-gw-down, at: 3200ms, duration: 2s, process: {action: redis-restart-while-gateway-down}}
  - {name: kill, at: 3400ms, duration: 500ms, process: {action: gateway-kill}}
  - {name: evict-a, at: 9s, duration: 2s, process: {action: redis-evict}}
  - {name: evict-b, at: 9500ms, duration: 2s, process: {action: redis-evict}}
`))
	if len(tl.Faults) != 5 {
		t.Errorf("%d faults recorded, want 5", len(tl.Faults))
	}
	for _, w := range tl.Faults {
		t.Logf("%s: %s..%s %s", w.Name, w.Start.Format("15:04:05.000"), w.End.Format("15:04:05.000"), w.Detail)
		checkPlayed(t, w)
		switch {
		case strings.HasPrefix(w.Name, "evict"):
			// Each restores Redis's own settings, not the other's pressure.
			if !strings.Contains(w.Detail, "maxmemory 0 and policy noeviction restored") {
				t.Errorf("%s: %q, want Redis's own maxmemory 0 and noeviction restored", w.Name, w.Detail)
			}
		case !strings.Contains(w.Detail, "restarted as pid"):
			t.Errorf("%s: %q, want the gateway restarted", w.Name, w.Detail)
		}
	}
	oc, err := run.ReadOutcome(out)
	if err != nil {
		t.Fatal(err)
	}
	if oc.GatewayDied || !oc.GatewayAnswered {
		t.Errorf("outcome: gateway died %v, answered %v; want the restarted gateway running and answering to the end", oc.GatewayDied, oc.GatewayAnswered)
	}
	// No gateway of this run is left running: its command line names the run's gateway.yaml.
	cfg := filepath.Join(out, "gateway.yaml")
	time.Sleep(500 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), cfg) {
			t.Errorf("a gateway of this run is still running after it: %s (%s)", filepath.Dir(p), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}
