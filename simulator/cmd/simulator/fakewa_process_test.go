package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wagate/internal/proctest"
	"wagate/reports"
)

// With whatsapp.process fakewa runs as a child process of the run (this binary's fakewa command)
// and the users pair, connect and exchange messages through it as through the in-process one.
func TestFakewaAsAChildProcessServesTheRunsUsers(t *testing.T) {
	bins := proctest.Binaries(t, "gateway", "fakelaravel")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	scenario := filepath.Join("..", "..", "..", "scenarios", "smoke.yaml")
	code := run(ctx, []string{"run", "-quiet", "-no-ndjson", "-bin", filepath.Dir(bins["gateway"]), "-set", "whatsapp.process=true", "-out", out, scenario}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if fi, err := os.Stat(filepath.Join(out, "logs", "fakewa.log")); err != nil || fi.IsDir() {
		t.Errorf("no fakewa child log: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep reports.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for name, atLeast := range map[string]float64{"pairings": 5, "ground_truth_sessions": 5} {
		if got := rep.Metrics[name].Values["count"]; got < atLeast {
			t.Errorf("%s = %v, want at least %v", name, got, atLeast)
		}
	}
	for _, name := range []string{"lost_updates", "stale_overwrites", "messages_lost", "messages_duplicated"} {
		if m, ok := rep.Metrics[name]; ok && m.Values["count"] != 0 {
			t.Errorf("%s = %v, want 0", name, m.Values["count"])
		}
	}
}
