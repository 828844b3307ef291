package wagatejs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/k6/bundle"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/k6/wagate/wagatejs"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// gateway answers the gateway API's polls; at /mark/NAME (a script's k6/http request between its
// steps) it notes how many polls of each endpoint the registry had recorded then.
type gateway struct {
	mu    sync.Mutex
	reg   *metrics.Registry
	marks map[string]polls
}

// polls are the status and QR polls recorded.
type polls struct{ status, qr float64 }

func recorded(reg *metrics.Registry) polls {
	return polls{status: reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointStatus}),
		qr: reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointQR})}
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/mark/"); ok {
		g.mu.Lock()
		g.marks[name] = recorded(g.reg)
		g.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"pending"}`))
}

type apiWorld struct{ env *user.Env }

func (w apiWorld) Env() *user.Env { return w.env }
func (w apiWorld) GroundTruth(context.Context) (reports.GroundTruth, error) {
	return reports.GroundTruth{}, nil
}

// newVU returns a VU of script src with k6/x/wagate driving the gateway g; the script reads the
// gateway's URL from __ENV.BASE.
func newVU(t *testing.T, src string, g *gateway) (*js.VU, *metrics.Registry) {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "script.js")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bun, err := bundle.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry(nil)
	g.reg, g.marks = reg, map[string]polls{}
	ext := &wagatejs.Extension{}
	ext.SetDriver(wagate.New(apiWorld{env: &user.Env{API: user.NewAPI(srv.URL, "t", srv.Client(), reg), Reg: reg}}, 0))
	s := &js.Shared{Bundle: bun, Env: map[string]string{"BASE": srv.URL}, Registry: reg, Groups: js.NewGroupTree(),
		Counters: &js.Counters{}, HTTP: js.HTTPConfig{MaxRedirects: 10}, Scenarios: map[string]js.ScenarioInfo{},
		Extensions: map[string]js.ModuleFactory{wagatejs.ModuleName: ext.Module}}
	vu, err := js.NewVU(context.Background(), s, 1)
	if err != nil {
		t.Fatal(err)
	}
	return vu, reg
}

// The app's pollers of a k6 script run beside its VU, as the native users' poller goroutines: they
// poll while the script sleeps (or is blocked in pair), stopPolling(id, what) ends one and
// stopPolling(id) every one, and nothing they started polls once stopped.
func TestBackgroundPollersPollWhileTheScriptSleepsUntilStopped(t *testing.T) {
	g := &gateway{}
	vu, reg := newVU(t, `import wagate from "k6/x/wagate";
import http from "k6/http";
import { group, sleep } from "k6";
export default function () {
  group("page", () => wagate.startPolling("s1", "status", 20));
  wagate.startPolling("s1", "qr", "20ms");
  sleep(0.3);
  wagate.stopPolling("s1", "qr");
  http.get(__ENV.BASE + "/mark/qr-stopped");
  sleep(0.3);
  wagate.stopPolling("s1");
  http.get(__ENV.BASE + "/mark/stopped");
  sleep(0.2);
}`, g)
	if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
		t.Fatal(err)
	}
	end := recorded(reg)
	qrStopped, stopped := g.marks["qr-stopped"], g.marks["stopped"]
	for _, c := range []struct {
		what     string
		got, min float64
		max      float64
	}{
		{"status polls while the script slept", qrStopped.status, 2, 1e9},
		{"QR polls while the script slept", qrStopped.qr, 2, 1e9},
		{"status polls after the QR poller stopped", stopped.status - qrStopped.status, 2, 1e9},
		{"QR polls after stopPolling(id, \"qr\")", end.qr - qrStopped.qr, 0, 0},
		{"status polls after stopPolling(id)", end.status - stopped.status, 0, 0},
	} {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s: %v, want %v..%v", c.what, c.got, c.min, c.max)
		}
	}
	// The polls are measured as the native users' polls, with the tags of where they were started.
	tagged := reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointStatus, "scenario": "default", "group": "::page"})
	if tagged != end.status {
		t.Errorf("http_reqs{endpoint:status, scenario:default, group:::page} = %v, want all %v status polls", tagged, end.status)
	}
}

// An iteration's pollers end with it, stopped or not: no request of theirs follows its end.
func TestBackgroundPollersEndWithTheIteration(t *testing.T) {
	g := &gateway{}
	vu, reg := newVU(t, `import wagate from "k6/x/wagate";
import { sleep } from "k6";
export default function () {
  wagate.startPolling("s1", "status", "10ms");
  wagate.startPolling("s2", "qr", "10ms");
  sleep(0.2);
}`, g)
	var prev polls
	for iter := range 2 {
		if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default", Iter: int64(iter)}); err != nil {
			t.Fatal(err)
		}
		ended := recorded(reg)
		time.Sleep(100 * time.Millisecond)
		if after := recorded(reg); after != ended {
			t.Errorf("iteration %d: polls recorded after its end: %+v, then %+v", iter, ended, after)
		}
		if ended.status <= prev.status || ended.qr <= prev.qr {
			t.Errorf("iteration %d: want polls of both pollers, got %+v after %+v", iter, ended, prev)
		}
		prev = ended
	}
}

// startPolling refuses what it cannot poll.
func TestStartPollingRefusesAnUnknownEndpointOrInterval(t *testing.T) {
	for _, call := range []string{`wagate.startPolling("s1", "messages", "1s")`, `wagate.startPolling("s1", "status", 0)`} {
		t.Run(call, func(t *testing.T) {
			g := &gateway{}
			vu, reg := newVU(t, `import wagate from "k6/x/wagate";
export default function () { `+call+`; }`, g)
			err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"})
			if err == nil {
				t.Fatalf("%s: no error", call)
			}
			if n := recorded(reg); n != (polls{}) {
				t.Errorf("%s: polls made: %+v", call, n)
			}
		})
	}
}

// Scripts pace their own poll loops with the native pollers' jitter, read from the module, not
// copied.
func TestPollJitterIsTheNativePollers(t *testing.T) {
	vu, _ := newVU(t, `import wagate from "k6/x/wagate";
export default function () {
  if (wagate.pollJitter !== `+strconv.FormatFloat(user.PollJitter, 'g', -1, 64)+`) throw new Error("pollJitter " + wagate.pollJitter);
}`, &gateway{})
	if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
		t.Fatal(err)
	}
}
