package reports

import (
	"strings"
	"testing"
)

// report.md's gateway line names the Go runtime settings the scenario gave the gateway.
func TestTheGatewayLineNamesTheGatewaysGoRuntimeSettings(t *testing.T) {
	c := Configuration{Gateway: GatewayConfig{Settings: map[string]string{"mode": "batch"}, Redis: "server", GoRuntime: []string{"GOGC=50", "GOMEMLIMIT=3GiB"}}}
	if got, want := configText(c), "gateway: mode batch, redis server, GOGC=50, GOMEMLIMIT=3GiB"; !strings.HasPrefix(got, want) {
		t.Errorf("gateway line %q, want it to begin %q", got, want)
	}
	c.Gateway.GoRuntime = nil
	if got := configText(c); strings.Contains(got, "GOGC") {
		t.Errorf("gateway line %q names a GOGC the scenario did not give", got)
	}
}
