package run

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wagate/simulator/scenario"
)

// A gateway process gets the Go runtime settings its scenario gives (gateway.gogc,
// gateway.gomemlimit) and never the simulator's own GOGC (the simulator runs with 400): the
// environment a started child really has, read back from the process.
func TestAGatewayProcessRunsWithTheScenariosGoRuntimeSettings(t *testing.T) {
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env binary to print a child's environment")
	}
	t.Setenv("GOGC", "400")
	t.Setenv("GOMEMLIMIT", "9GiB")
	for _, tc := range []struct {
		name, gateway string
		want          []string // the child's GOGC and GOMEMLIMIT lines
	}{
		{"Go's defaults", "{mode: batch}", nil},
		{"GOGC=50 as docs/deploy.md recommends", "{gogc: 50}", []string{"GOGC=50"}},
		{"both", "{gogc: off, gomemlimit: 512MiB}", []string{"GOGC=off", "GOMEMLIMIT=512MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := scenario.Parse("s.yaml", []byte("scenarios: {s: {executor: constant-vus, duration: 1m}}\ngateway: "+tc.gateway+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			run := scenario.GatewayRun{Addr: "127.0.0.1:4100", APIToken: "api-token-0123456789", LaravelURL: "http://127.0.0.1:4200",
				LaravelToken: "laravel-token-x", DataDir: t.TempDir(), WADial: "127.0.0.1:4400", WARootPubKey: strings.Repeat("ab", 32)}
			log := filepath.Join(t.TempDir(), "gateway.log")
			c, err := startChild("gateway", envBin, nil, gatewayProcessEnv(f.Gateway, f.Gateway.RunConfig(run)), log)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.done:
			case <-time.After(30 * time.Second):
				_ = c.cmd.Process.Kill()
				t.Fatal("env did not exit")
			}
			out, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "GOGC=") || strings.HasPrefix(l, "GOMEMLIMIT=") {
					got = append(got, l)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("the gateway process's Go runtime environment is %q, want %q", got, tc.want)
			}
		})
	}
}
