package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary that ships contains no harness code: none of the simulator, fakelaravel, reports or
// benchmarks packages (nor the test-only helpers under internal/) is in its package graph.
func TestTheGatewayBinaryLinksNoHarnessPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "wagate/gateway/cmd/gateway").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	harness := []string{"wagate/simulator", "wagate/fakelaravel", "wagate/reports", "wagate/benchmarks",
		"wagate/laravel", "wagate/internal/proctest", "wagate/internal/redistest", "wagate/internal/laravelup"}
	deps := strings.Fields(string(out))
	var wagate int
	for _, dep := range deps {
		if strings.HasPrefix(dep, "wagate/") {
			wagate++
		}
		for _, h := range harness {
			if dep == h || strings.HasPrefix(dep, h+"/") {
				t.Errorf("the gateway binary links %s", dep)
			}
		}
	}
	if wagate < 5 {
		t.Fatalf("go list found only %d wagate packages: %v", wagate, deps)
	}
}
