package truth

import (
	"strings"
	"testing"

	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
)

// A logout through the gateway's API has three outcomes for the ground truth: acknowledged (2xx:
// the gateway logged the session out and must never undo it, whatever kills it afterwards),
// refused or never delivered (connection refused, a 4xx/5xx: nothing changed), and unacknowledged
// (the request reached the gateway, which was killed before answering: it may have logged out or
// not). The truth accepts both final states only for the last, and only while Laravel never
// showed the logout; a logout Laravel showed and the gateway later undid is a mismatch.
func TestALogoutTheGatewayNeverAnsweredAcceptsEitherFinalStateButNeverAnUndo(t *testing.T) {
	type answer int
	const (
		acknowledged answer = iota
		refused
		unacknowledged
	)
	cases := []struct {
		name   string
		answer answer
		// laravelSawLogout: Laravel showed the logout (v3) before the gateway's final state.
		laravelSawLogout bool
		// gateway is the gateway's final state after its kill and restart (v4), which Laravel
		// shows too.
		gateway      laravel.Status
		wantMismatch bool
	}{
		{"acknowledged, the gateway kept the logout across its kill", acknowledged, false, loggedOut, false},
		{"acknowledged, the restarted gateway brought the device back", acknowledged, false, connected, true},
		{"refused (the gateway was down), the session stays connected", refused, false, connected, false},
		{"refused, yet the gateway logged out", refused, false, loggedOut, true},
		{"unacknowledged (cut by the kill), the gateway never acted on it", unacknowledged, false, connected, false},
		{"unacknowledged, the gateway had logged out before the kill", unacknowledged, false, loggedOut, false},
		{"unacknowledged, Laravel showed the logout, then the gateway undid it", unacknowledged, true, connected, true},
		{"unacknowledged, the gateway ends in neither state", unacknowledged, false, disconnected, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
			l.Started("s", "1555", at(0), nil)
			l.Caused("s", connected, at(100))
			l.ObserveLaravel("s", Observation{Status: connected, StatusVersion: 2, At: at(150)})
			logout := l.Attempt("s", loggedOut, at(200))
			if c.laravelSawLogout {
				l.ObserveLaravel("s", Observation{Status: loggedOut, StatusVersion: 3, At: at(250)})
			}
			switch c.answer {
			case refused:
				logout.Undo()
			case unacknowledged:
				logout.Unacknowledged()
			}
			l.ObserveLaravel("s", Observation{Status: c.gateway, StatusVersion: 4, At: at(900)})
			got := l.Finish(map[string]State{"s": {Status: c.gateway, Version: 4}}, at(1000))
			if mismatch := got.GatewayMismatches == 1; mismatch != c.wantMismatch || got.Lost+got.Stale > 0 {
				t.Fatalf("Finish = %+v, want a gateway mismatch: %v", got, c.wantMismatch)
			}
			if c.wantMismatch && c.answer == unacknowledged && !c.laravelSawLogout &&
				!strings.Contains(got.Mismatches[0], "or connected if the gateway never acted") {
				t.Errorf("the mismatch does not name both accepted states: %q", got.Mismatches[0])
			}
		})
	}
}

// Recovery after a fault must not await the device of a logout the gateway may have applied: an
// unacknowledged logout still names its device in LoggedOut (a device that does come back is
// awaited by nothing and harms nothing).
func TestAnUnacknowledgedLogoutStillNamesItsDeviceLoggedOut(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	l.Started("s", "1555", at(0), nil)
	l.Paired("s", "d@s.whatsapp.net", at(50))
	l.Caused("s", connected, at(100))
	l.Attempt("s", loggedOut, at(200)).Unacknowledged()
	if got := l.LoggedOut(); !got["d@s.whatsapp.net"] {
		t.Errorf("LoggedOut() = %v, want d@s.whatsapp.net", got)
	}
}
