package truth

import (
	"strings"
	"testing"

	"wagate/gateway/laravel"
)

const (
	pending      = laravel.StatusPending
	connected    = laravel.StatusConnected
	disconnected = laravel.StatusDisconnected
	loggedOut    = laravel.StatusLoggedOut
	expired      = laravel.StatusExpired
)

func st(s laravel.Status, v int64) State { return State{Status: s, Version: v} }

// Judge's rules, one line each: versions decide delivery, states decide only without versions,
// and the simulation's expectation only judges the gateway.
func TestJudgeDecidesBySessionVersionsNotStates(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Evidence
		want Verdict
		why  string // a fragment of the explanation
	}{
		{"Laravel holds the gateway's final version",
			Evidence{Expected: connected, Laravel: st(connected, 6), Gateway: st(connected, 6), HaveGateway: true}, Agrees, ""},
		{"the final version never reached Laravel, its state differs",
			Evidence{Expected: loggedOut, Laravel: st(connected, 4), Gateway: st(loggedOut, 5), HaveGateway: true}, Lost, "never reached"},
		{"a transient state at the end: the reconnect after a drop never arrived",
			Evidence{Expected: connected, Laravel: st(disconnected, 5), Gateway: st(connected, 6), HaveGateway: true}, Lost, "never reached"},
		{"the right state from an older version: the final version never arrived all the same",
			Evidence{Expected: connected, Laravel: st(connected, 4), Gateway: st(connected, 6), HaveGateway: true}, Lost, "never reached"},
		{"a pending session's last event is a QR code Laravel holds",
			Evidence{Laravel: st(pending, 1), LaravelQRVersion: 4, Gateway: st(pending, 4), HaveGateway: true}, Agrees, ""},
		{"a session Laravel only has a QR code for (status version 0) is judged by versions too",
			Evidence{Laravel: st(pending, 0), LaravelQRVersion: 3, Gateway: st(pending, 4), HaveGateway: true}, Lost, "never reached"},
		{"a pending session's last QR code never reached Laravel",
			Evidence{Laravel: st(pending, 1), LaravelQRVersion: 3, Gateway: st(pending, 4), HaveGateway: true}, Lost, "never reached"},
		{"the gateway's versions went back (Redis lost without new epochs): Laravel refused its final state",
			Evidence{Expected: loggedOut, Laravel: st(connected, 1_000_005), Gateway: st(loggedOut, 3), HaveGateway: true}, Lost, "went back"},
		{"the gateway's versions went back but the state is the same: nothing is wrong yet",
			Evidence{Expected: connected, Laravel: st(connected, 1_000_005), Gateway: st(connected, 3), HaveGateway: true}, Agrees, ""},
		{"a new epoch after a restart: Laravel holds the re-emitted version",
			Evidence{Expected: connected, Laravel: st(connected, 2_000_001), Gateway: st(connected, 2_000_001), HaveGateway: true}, Agrees, ""},
		{"Laravel applied an older version after a newer one",
			Evidence{Expected: connected, Laravel: st(connected, 6), Gateway: st(connected, 6), HaveGateway: true,
				Regression: &Regression{Before: st(connected, 6), After: st(disconnected, 5)}}, StaleOverwrite, "applied disconnected v5 after connected v6"},
		{"a stale overwrite counts even when a newer version repaired it",
			Evidence{Expected: connected, Laravel: st(connected, 8), Gateway: st(connected, 8), HaveGateway: true,
				Regression: &Regression{Before: st(connected, 6), After: st(disconnected, 5)}}, StaleOverwrite, "stale"},
		{"legacy delivery has no versions: equal states agree",
			Evidence{Expected: connected, Laravel: st(connected, 0), Gateway: st(connected, 7), HaveGateway: true}, Agrees, ""},
		{"legacy delivery has no versions: different states are lost",
			Evidence{Expected: connected, Laravel: st(disconnected, 0), Gateway: st(connected, 7), HaveGateway: true}, Lost, "the gateway connected v7"},
		{"Laravel never had the session at all",
			Evidence{Expected: connected, Gateway: st(connected, 3), HaveGateway: true}, Lost, "Laravel shows nothing"},
		{"Laravel agrees with a gateway that never logged the paired device in",
			Evidence{Expected: connected, Laravel: st(pending, 1), LaravelQRVersion: 2, Gateway: st(pending, 2), HaveGateway: true}, GatewayMismatch, "the simulation caused connected"},
		{"a drop the gateway never reconnected is the gateway's failure, not a loss",
			Evidence{Expected: connected, Laravel: st(disconnected, 5), Gateway: st(disconnected, 5), HaveGateway: true}, GatewayMismatch, "gateway mismatch"},
		{"never paired: expired is right",
			Evidence{Laravel: st(expired, 8), Gateway: st(expired, 8), HaveGateway: true}, Agrees, ""},
		{"never paired: pending is right",
			Evidence{Laravel: st(pending, 1), LaravelQRVersion: 3, Gateway: st(pending, 3), HaveGateway: true}, Agrees, ""},
		{"without the gateway, the simulation's expectation stands in: met",
			Evidence{Expected: loggedOut, Laravel: st(loggedOut, 9)}, Agrees, ""},
		{"without the gateway, the simulation's expectation stands in: missed",
			Evidence{Expected: loggedOut, Laravel: st(connected, 8)}, Lost, "the gateway could not say"},
		{"without the gateway, a stale write is still stale",
			Evidence{Expected: connected, Laravel: st(connected, 6), Regression: &Regression{Before: st(loggedOut, 6), After: st(connected, 6)}}, StaleOverwrite, "stale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Judge(tc.e)
			if got != tc.want {
				t.Fatalf("Judge = %s (%s), want %s", got, why, tc.want)
			}
			if tc.want == Agrees && why != "" {
				t.Errorf("agreement explained as %q", why)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("explanation %q lacks %q", why, tc.why)
			}
		})
	}
}
