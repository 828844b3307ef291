package whatsapp_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"wagate/gateway/config"
	"wagate/gateway/internal/sysmon"
)

// TestMain runs this package's benchmarks (BenchmarkIdleConnectedSession,
// BenchmarkReconnectAfterRestart: what the gateway process costs) with the Go runtime's system
// monitor as the gateway runs it: kept steady (gateway/internal/sysmon) while the gateway's
// setting steady-sysmon is on by default, so the test binary starts itself again once with its
// GODEBUG. Tests run as they are.
func TestMain(m *testing.M) {
	flag.Parse()
	if bench := flag.Lookup("test.bench"); bench != nil && bench.Value.String() != "" && bench.Value.String() != "^$" && config.Default().SteadySysmon {
		if err := sysmon.Reexec(); err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks run with Go's default sysmon:", err)
		}
	}
	os.Exit(m.Run())
}
