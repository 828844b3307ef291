package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"wagate/reports"
	"wagate/simulator/cpuset"
)

// `simulator floor` runs the scenario's poll workload against the floor in its own process, on
// the gateway's CPU set, and reports the floor's CPU and requests as a run report.
func TestFloorPollsTheBareServerAndReportsItsCPUAndRequests(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "floor.yaml")
	if err := os.WriteFile(sc, []byte(`name: tiny
users: 5
scenarios:
  users: {executor: constant-vus, duration: 3s}
behaviour: {statusPollInterval: 100ms, pollers: 2}
cpus: {gateway: auto}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"floor", sc, "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("simulator floor exited %d: %s", code, stderr.String())
	}
	rep, err := reports.Load(filepath.Join(out, reports.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// 10 pollers, one request per 100 ms each, for 3 s: ~300 requests; at least a third of that
	// on a loaded machine.
	if reqs := rep.Metrics[reports.MetricHTTPReqs].Values["count"]; reqs < 100 {
		t.Errorf("the floor answered %v requests, want ~300", reqs)
	}
	if failed := rep.Metrics[reports.MetricHTTPReqFailed].Values["passes"]; failed != 0 {
		t.Errorf("%v requests failed", failed)
	}
	if d := rep.Metrics[reports.MetricHTTPReqDuration+"{endpoint:status}"].Values; d["count"] < 100 || d["p(99)"] <= 0 {
		t.Errorf("the floor's client latency of the status polls: %v, want ~300 requests timed", d)
	}
	if _, ok := reports.FigCPUPerRequest.Of(rep); !ok {
		t.Errorf("no CPU per request in the floor's report: %+v", rep.Metrics)
	}
	online, _ := cpuset.Online()
	if len(online) >= 2 {
		want := cpuset.Format(online[len(online)-1:])
		if c := rep.Environment.CPUSets; c == nil || c.Processes["floor"] != want {
			t.Errorf("cpu sets %+v, want the floor on the gateway's CPU %s", c, want)
		}
	}
}
