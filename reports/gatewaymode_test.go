package reports

import (
	"testing"

	"wagate/gateway/config"
)

// The report names the gateway's delivery mode as the gateway does: reports keeps its own copy
// of the key and the two values (importing gateway/config would link the gateway's dependencies
// into bin/reports), and this pins the copy to the product's.
func TestTheReportsDeliveryModeVocabularyIsTheGateways(t *testing.T) {
	c := config.Default()
	if key := c.Key(&c.Mode); key != GatewayModeKey {
		t.Errorf("the gateway's configuration key of its mode is %q, reports.GatewayModeKey %q", key, GatewayModeKey)
	}
	for _, m := range []struct{ reports, gateway string }{{ModeLegacy, config.ModeLegacy}, {ModeBatch, config.ModeBatch}} {
		if m.reports != m.gateway {
			t.Errorf("reports names a delivery mode %q, the gateway %q", m.reports, m.gateway)
		}
	}
}
