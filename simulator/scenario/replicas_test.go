package scenario

import (
	"strings"
	"testing"
)

// gateway.replicas starts several gateway processes in cluster mode: it needs a shared Redis and
// batch mode, and the fault schedule's replica faults must name one of them.
func TestReplicasAndTheirFaults(t *testing.T) {
	const head = "scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\n"
	for _, tc := range []struct {
		name, yaml string
		want       string // "" means valid
		replicas   int
	}{
		{"one gateway by default", "", "", 1},
		{"three replicas on a redis-server", "gateway: {replicas: 3, redis: server}\n", "", 3},
		{"three replicas on a Redis URL", "gateway: {replicas: 3, redis: \"redis://127.0.0.1:6379/0\"}\n", "", 3},
		{"replicas on the embedded Redis", "gateway: {replicas: 2}\n", "gateway.replicas: 2 replicas share one Redis", 0},
		{"replicas in legacy mode", "gateway: {replicas: 2, redis: server, mode: legacy}\n", "gateway.cluster: needs mode=batch", 0},
		{"too many replicas", "gateway: {replicas: 9, redis: server}\n", "gateway.replicas: 9 is out of range; use 1 to 8", 0},
		{"negative replicas", "gateway: {replicas: -1, redis: server}\n", "gateway.replicas: -1 is out of range", 0},
		{"replicas of an external gateway", "gateway: {replicas: 2, redis: server, url: \"http://127.0.0.1:1\", token: t}\n", "an external gateway (gateway.url) is one address", 0},
		{"cluster mode is the simulator's to set", "gateway: {replicas: 2, redis: server, cluster: true}\n", "gateway.cluster: given by the simulator", 0},
		{"a replica's id is the simulator's to set", "gateway: {replicas: 2, redis: server, gatewayId: a}\n", "gateway.gatewayId: given by the simulator", 0},
		{"a kill of the last replica", "gateway: {replicas: 3, redis: server}\nfaults: [{at: 1s, duration: 5s, process: {action: gateway-kill, replica: 2}}]\n", "", 3},
		{"a kill of a replica there is not", "gateway: {replicas: 3, redis: server}\nfaults: [{at: 1s, process: {action: gateway-kill, replica: 3}}]\n", "faults[0].process.replica: 3 is not one of the 3 gateway replicas (0 to 2)", 0},
		{"a replica of one gateway", "faults: [{at: 1s, process: {action: gateway-pause, replica: 1}}]\n", "faults[0].process.replica: 1 is not one of the 1 gateway replicas", 0},
		{"a replica of Redis", "gateway: {replicas: 3, redis: server}\nfaults: [{at: 1s, process: {action: redis-pause, replica: 1}}]\n", "faults[0].process.replica: only gateway-kill, gateway-term and gateway-pause act on one replica", 0},
		{"a rolling restart of replicas", "gateway: {replicas: 3, redis: server}\nfaults: [{at: 1s, duration: 2s, process: {action: gateway-rolling-restart}}]\n", "", 3},
		{"a rolling restart of one gateway", "faults: [{at: 1s, process: {action: gateway-rolling-restart}}]\n", "faults[0].process.action: gateway-rolling-restart needs gateway.replicas of 2 or more", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(head+tc.yaml), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted: replicas %d, faults %+v", f.Gateway.Replicas, f.Faults)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want it to say %q", err, tc.want)
			case tc.want == "" && (f.Gateway.Replicas != tc.replicas || f.Gateway.Cluster() != (tc.replicas > 1)):
				t.Fatalf("replicas %d (cluster %v), want %d", f.Gateway.Replicas, f.Gateway.Cluster(), tc.replicas)
			}
		})
	}
}

// A replica's run configuration is cluster mode with its own id and advertise URL and the shared
// store; one gateway's is not.
func TestRunConfigOfAReplica(t *testing.T) {
	f, err := Parse("f.yaml", []byte("scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\ngateway: {replicas: 3, redis: server}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	run := exampleRun
	run.RedisURL = "redis://127.0.0.1:4"
	if c := f.Gateway.RunConfig(run); c.Cluster || c.AdvertiseURL != "" {
		t.Errorf("without a replica's fields: cluster %v, advertise %q", c.Cluster, c.AdvertiseURL)
	}
	run.GatewayID, run.AdvertiseURL, run.StoreDSN = "gateway-2", "http://127.0.0.1:7", "postgres://wagate@127.0.0.1:5/wagate"
	c := f.Gateway.RunConfig(run)
	if !c.Cluster || c.GatewayID != "gateway-2" || c.AdvertiseURL != run.AdvertiseURL || c.StoreDSN != run.StoreDSN {
		t.Errorf("replica config: cluster %v id %q advertise %q dsn %q", c.Cluster, c.GatewayID, c.AdvertiseURL, c.StoreDSN)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a replica's configuration is refused: %v", err)
	}
}
