package chaos

import (
	"regexp"
	"strings"
	"testing"
)

// The generation-3 kind, whatsapp-handshake-cut, is really played on a whole world (bin/gateway,
// bin/fakelaravel, redis-server, fakewa in-process): a 4 s cut with half the online sessions
// dropped into it, then a 3 s cut with all of them. fakewa closes their reconnects' sockets after
// the client's hello, before its own; the gateway gives each such attempt up at the close (not
// after whatsmeow's 20 s) and reconnects on its backoff, so both faults recover within seconds
// of their end. The invariants are the campaign's verdict; the outcome is logged.
func TestTheHandshakeCutKindIsPlayedOnAWholeWorldAndRecoveredWithinSeconds(t *testing.T) {
	out, tl := playOnAWholeWorld(t, "handshake-cut.yaml", chaosWithFaults(t, `
faults:
  - {name: wa-cut-half, at: 3s, duration: 4s, whatsapp: {action: handshake-cut, share: 0.5}}
  - {name: wa-cut-all, at: 10s, duration: 3s, whatsapp: {action: handshake-cut}}
`))
	checkEachPlayedCounting(t, tl, 2, regexp.MustCompile(`; (\d+) handshakes failed`), "handshakes cut")
	for _, w := range tl.Faults {
		// Generous (a loaded machine, backoffs of 1-2 s and 2-4 s after the cut): whatsmeow's
		// own wait for the hello is 20 s.
		if !w.Recovered || w.RecoveryMS > 12000 {
			t.Errorf("%s: recovered %v in %.0f ms, want within 12 s of its end", w.Name, w.Recovered, w.RecoveryMS)
		}
	}
	gwLog := gatewayLog(t, out)
	if n := strings.Count(string(gwLog), "the socket closed during the noise handshake"); n == 0 {
		t.Error("the gateway never gave up a connect whose socket closed during the handshake")
	} else {
		t.Logf("%d connects given up at the socket's close", n)
	}
	// No connect waits for whatsmeow's handshake timeout: a session's start, restore or
	// reconnect, nor the login after pairing's 515, which whatsmeow dials on the pairing client
	// itself (the login watch gives it up at the socket's close since e9e2681).
	for _, line := range strings.Split(string(gwLog), "\n") {
		if strings.Contains(line, "timed out waiting for handshake response") {
			t.Errorf("a connect waited for whatsmeow's handshake timeout: %s", line)
		}
	}
	t.Logf("%d logins after a 515 failed (each given up at once, not after the timeout)", strings.Count(string(gwLog), "login reconnect after 515 failed"))
	logOutcome(t, out)
}
