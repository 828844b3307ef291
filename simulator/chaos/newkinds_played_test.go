package chaos

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"wagate/simulator/run"
)

// The fault kinds added for guarantees fixed in issue 19 are really played on a whole world
// (bin/gateway, bin/fakelaravel, redis-server, fakewa in-process), not only drawn: Redis is
// restarted from its AOF losing its last writes while the gateway is down, and the gateway's next
// start notices it (its log says so); WhatsApp is unreachable for a share of the devices (logins
// cut) and then for all (dials refused), and fakewa counts what it refused. Whether the gateway
// then holds the invariants (recovery, truth) is the campaign's verdict, not this test's: the run's
// recoveries and outcome are logged (when this test was written, a full outage left one session
// disconnected for good: a campaign finding, reported in issue 19).
func TestTheNewFaultKindsArePlayedOnAWholeWorld(t *testing.T) {
	out, tl := playOnAWholeWorld(t, "new-kinds.yaml", chaosWithFaults(t, `
faults:
  - {name: redis-gw-down, at: 3s, duration: 2s, process: {action: redis-restart-while-gateway-down}}
  - {name: wa-down-half, at: 8s, duration: 3s, whatsapp: {action: down, share: 0.5}}
  - {name: wa-down-all, at: 12s, duration: 3s, whatsapp: {action: down}}
`))
	played := map[string]run.FaultWindow{}
	for _, w := range tl.Faults {
		played[w.Name] = w
		t.Logf("%s: %s (recovered %v in %.0f ms)", w.Name, w.Detail, w.Recovered, w.RecoveryMS)
		checkPlayed(t, w)
	}
	// Two processes restarted by the one fault: the gateway after redis-server.
	if d := played["redis-gw-down"].Detail; strings.Count(d, "restarted as pid") != 2 || !strings.Contains(d, "AOF off") {
		t.Errorf("redis-gw-down: %q, want the gateway and redis-server restarted after AOF was turned off", d)
	}
	gwLog := gatewayLog(t, out)
	if !strings.Contains(string(gwLog), "Redis restarted while this gateway was down") {
		t.Error("the gateway's next start did not notice that Redis restarted while it was down")
	}
	refused := regexp.MustCompile(`; (\d+) dials and logins refused`)
	for _, name := range []string{"wa-down-half", "wa-down-all"} {
		d := played[name].Detail
		m := refused.FindStringSubmatch(d)
		if m == nil || m[1] == "0" || strings.Contains(d, "; 0 connections cut") {
			t.Errorf("%s: %q, want connections cut and dials or logins refused", name, d)
		}
	}
	checkSessionsBackBeforeRecovery(t, tl, "redis-gw-down", "wa-down-half", "wa-down-all")
	logOutcome(t, out)
}

// checkSessionsBackBeforeRecovery checks that each fault of tl named in faults (faults that
// disconnect sessions) recorded when 90% of its sessions were online at WhatsApp again, and no
// later than its whole recovery, which also waits for Laravel to have been told.
func checkSessionsBackBeforeRecovery(t *testing.T, tl run.FaultTimeline, faults ...string) {
	t.Helper()
	for _, name := range faults {
		i := slices.IndexFunc(tl.Faults, func(w run.FaultWindow) bool { return w.Name == name })
		if i < 0 {
			t.Errorf("%s: not in the timeline", name)
			continue
		}
		w := tl.Faults[i]
		t.Logf("%s: 90%% online at WhatsApp again after %.0f ms, recovered after %.0f ms", name, w.SessionsBackMS, w.RecoveryMS)
		if w.SessionsBackMS <= 0 || w.SessionsBackMS > w.RecoveryMS {
			t.Errorf("%s: sessions back after %.0f ms, recovered after %.0f ms: want a time, no later than the recovery", name, w.SessionsBackMS, w.RecoveryMS)
		}
	}
}
