package chaos

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"wagate/simulator/scenario"
)

// The generation-2 kind, whatsapp-silent, is really played on a whole world (bin/gateway,
// bin/fakelaravel, redis-server, fakewa in-process) whose gateway runs the campaign's shortened
// test keepalive: a silence of a share of the devices, then of the whole server, each longer than
// the keepalive's limit (SilenceKeepalive: 4.5 s unanswered), keeps the connections open and
// answers nothing; the gateway notices through whatsmeow's keepalive alone, drops the
// connections and its sessions connect again after the silence. The gateway's start warns about
// the test-only keepalive. Whether the invariants then hold is the campaign's verdict; the run's
// recoveries and outcome are logged.
func TestTheSilentKindIsPlayedOnAWholeWorldAndNoticedThroughTheKeepalive(t *testing.T) {
	base, err := baseDocument("../../scenarios/chaos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	half, all := 0.5, 1.0
	s := Schedule{Index: 0, Seed: 5, Faults: []scenario.Fault{
		silentFault("wa-silent-half", 3*time.Second, 7*time.Second, &half),
		silentFault("wa-silent-all", 11*time.Second, 7*time.Second, &all),
	}}
	doc, err := ScenarioFile(base, "scenarios/chaos.yaml", 0, 5, s)
	if err != nil {
		t.Fatal(err)
	}
	out, tl := playOnAWholeWorld(t, "silent.yaml", doc)
	checkEachPlayedCounting(t, tl, 2, regexp.MustCompile(`; (\d+) connections silent`), "connections silent")
	gwLog := gatewayLog(t, out)
	if !strings.Contains(string(gwLog), "INSECURE TEST SETTING: whatsmeow's keepalive is shortened") {
		t.Error("the gateway's start did not warn about the test-only keepalive")
	}
	// Noticed through the keepalive alone: the gateway dropped connections whose keepalives went
	// unanswered (aae6beb's drop), and fakewa cut none of them.
	if n := strings.Count(string(gwLog), "no keepalive answered; dropping the connection"); n == 0 {
		t.Error("the gateway never dropped a connection for its unanswered keepalives")
	} else {
		t.Logf("%d connections dropped for unanswered keepalives", n)
	}
	logOutcome(t, out)
}

// silentFault is a whatsapp-silent fault of share at at for d.
func silentFault(name string, at, d time.Duration, share *float64) scenario.Fault {
	return scenario.Fault{Name: name, At: scenario.Duration(at), Duration: scenario.Duration(d),
		WhatsApp: &scenario.WhatsAppFault{Action: "silent", Share: share}}
}
