package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"

	"wagate/simulator/scenario"
)

// Replica faults are drawn only when the base scenario runs several replicas, and then act on
// one of them; a world of one gateway draws exactly what it drew before they existed.
func TestReplicaFaultsAreDrawnOnlyForReplicas(t *testing.T) {
	one := Params{Start: 6 * time.Second, End: 34 * time.Second, MaxFaults: 4, RealRedis: true, Replicas: 1, SessionPrefix: "users-i0-", Sessions: 20}
	three := one
	three.Replicas = 3
	for _, tc := range []struct {
		name      string
		p         Params
		wantKinds bool
	}{
		{"one gateway", one, false},
		{"three replicas", three, true},
		{"three replicas on the embedded Redis", Params{Start: one.Start, End: one.End, MaxFaults: 4, Replicas: 3, SessionPrefix: "u-", Sessions: 5}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kinds := KindsOf(tc.p)
			has := slices.Contains(kinds, "replica-kill") && slices.Contains(kinds, "replica-pause-past-lease") && slices.Contains(kinds, "replica-rolling-restart")
			if has != tc.wantKinds {
				t.Fatalf("kinds %v: replica kinds listed %v, want %v", kinds, has, tc.wantKinds)
			}
			drawn := 0
			for _, s := range Draw(7, 200, tc.p) {
				for _, f := range s.Faults {
					if !strings.HasPrefix(f.Name, scenario.ProcessGatewayRollingRestart) && (f.Process == nil || f.Process.Replica == 0) {
						continue
					}
					drawn++
					if !tc.wantKinds {
						t.Fatalf("schedule %d drew %s in a world of %d replica(s)", s.Index, Describe(f), tc.p.Replicas)
					}
					if f.Process.Replica < 0 || f.Process.Replica >= tc.p.Replicas {
						t.Fatalf("schedule %d: %s acts on replica %d of %d", s.Index, Describe(f), f.Process.Replica, tc.p.Replicas)
					}
				}
			}
			if tc.wantKinds && drawn == 0 {
				t.Errorf("200 schedules drew no replica fault")
			}
		})
	}
	// A world of one gateway draws what Kinds(realRedis) always listed.
	if !slices.Equal(KindsOf(one), Kinds(true)) {
		t.Errorf("KindsOf(one gateway) = %v, want Kinds(true) = %v", KindsOf(one), Kinds(true))
	}
}
