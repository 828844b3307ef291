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
	"sync/atomic"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/k6/bundle"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/k6/wagate/wagatejs"
	"wagate/simulator/metrics"
	"wagate/simulator/truth"
	"wagate/simulator/user"
)

// gateway answers the gateway API's polls; at /mark/NAME (a script's k6/http request between its
// steps) it notes how many polls of each endpoint the registry had recorded then.
type gateway struct {
	mu    sync.Mutex
	reg   *metrics.Registry
	marks map[string]polls
	// requests are every request it answered, in order.
	requests []request
	// onMark, when set, is called with the mark's name after it was noted.
	onMark func(name string)
}

// polls are the status and QR polls recorded.
type polls struct{ status, qr float64 }

func recorded(reg *metrics.Registry) polls {
	return polls{status: reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointStatus}),
		qr: reg.Total("http_reqs", metrics.Tags{"endpoint": user.EndpointQR})}
}

// request is one request the gateway answered: when it arrived, its method and path.
type request struct {
	at           time.Time
	method, path string
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, request{at: time.Now(), method: r.Method, path: r.URL.Path})
	g.mu.Unlock()
	if name, ok := strings.CutPrefix(r.URL.Path, "/mark/"); ok {
		g.mu.Lock()
		g.marks[name] = recorded(g.reg)
		g.mu.Unlock()
		if g.onMark != nil {
			g.onMark(name)
		}
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
	return newVUPairing(t, src, g, nil, nil)
}

// newVUPairing is newVU with a phone and Laravel's view of the QR codes, for scripts that pair.
func newVUPairing(t *testing.T, src string, g *gateway, phone user.Phone, laravel user.LaravelView) (*js.VU, *metrics.Registry) {
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
	ext.SetDriver(wagate.New(apiWorld{env: &user.Env{API: user.NewAPI(srv.URL, "t", srv.Client(), reg), Reg: reg,
		Phone: phone, Laravel: laravel, Ledger: truth.NewLedger(reg, truth.QRTiming{}, nil)}}, 0))
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

// heldPhone scans a code only once released: until then its Pair blocks (the phone's owner has not
// scanned yet), and a pairing canceled meanwhile is noted.
type heldPhone struct {
	release  chan struct{}
	canceled atomic.Bool
}

func newHeldPhone() *heldPhone { return &heldPhone{release: make(chan struct{})} }

func (p *heldPhone) Pair(ctx context.Context, _, phone string) (string, error) {
	select {
	case <-p.release:
		return "jid-" + phone, nil
	case <-ctx.Done():
		p.canceled.Store(true)
		return "", ctx.Err()
	}
}

func (p *heldPhone) WaitConnected(context.Context, string, time.Time) (time.Time, error) {
	return time.Now(), nil
}
func (p *heldPhone) Drop(string) error    { return nil }
func (p *heldPhone) Replace(string) error { return nil }
func (p *heldPhone) Logout(string) error  { return nil }
func (p *heldPhone) Write(context.Context, string, string, string, string) (string, error) {
	return "", nil
}

// shows is Laravel's view with one code for every session ("" shows none).
type shows string

func (s shows) QR(string) (string, <-chan struct{}) { return string(s), nil }

// A pairing begun with startPair goes on while the script polls: waitPair answers null while the
// phone has not scanned, and the paired session once it has, as the native users' pollers poll
// during their pairing.
func TestAPairingInTheBackgroundLetsTheScriptPollUntilTheDeviceIsConnected(t *testing.T) {
	phone := newHeldPhone()
	g := &gateway{onMark: func(name string) {
		if name == "release" {
			close(phone.release)
		}
	}}
	vu, reg := newVUPairing(t, `import wagate from "k6/x/wagate";
import http from "k6/http";
export default function () {
  const s = wagate.startSession("s1");
  wagate.startPair("s1", "10s");
  let waits = 0, p;
  while ((p = wagate.waitPair("s1", 20)) === null) {
    wagate.pollStatus("s1");
    if (++waits === 3) http.get(__ENV.BASE + "/mark/release");
    if (waits > 500) throw new Error("still pairing after the phone scanned");
  }
  if (p.jid !== "jid-" + s.phone || p.qr !== "qr-1" || !(p.durationMs >= 0)) throw new Error("paired " + JSON.stringify(p));
}`, g, phone, shows("qr-1"))
	if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
		t.Fatal(err)
	}
	if got := g.marks["release"].status; got != 3 {
		t.Errorf("status polls while the phone had not scanned: %v, want the script's 3", got)
	}
	if got := reg.Total("wagate_pairings", nil); got != 1 {
		t.Errorf("wagate_pairings = %v, want 1", got)
	}
}

// A pairing the script does not wait for ends with its iteration: canceled before the iteration
// returns, so nothing of it is recorded afterwards, and the next iteration may pair the session
// again.
func TestAPairingNotWaitedForEndsWithTheIteration(t *testing.T) {
	phone := newHeldPhone()
	vu, reg := newVUPairing(t, `import wagate from "k6/x/wagate";
export default function () {
  wagate.startSession("s1");
  wagate.startPair("s1", "10s");
}`, &gateway{}, phone, shows("qr-1"))
	for iter := range 2 {
		phone.canceled.Store(false)
		if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default", Iter: int64(iter)}); err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if !phone.canceled.Load() {
			t.Errorf("iteration %d returned with its pairing still running", iter)
		}
	}
	if got := reg.Total("wagate_pairings", nil); got != 0 {
		t.Errorf("wagate_pairings = %v, want 0", got)
	}
}

// waitPair throws what the pairing failed with, and what a script asks of a pairing it did not
// start; startPair refuses a session already pairing.
func TestPairingsInTheBackgroundFailAsTheScriptWouldSee(t *testing.T) {
	for _, c := range []struct {
		name, laravel, script, want string
	}{
		{"Laravel shows no code", "", `wagate.startSession("s1"); wagate.startPair("s1", "50ms"); wagate.waitPair("s1");`, "no QR code in Laravel"},
		{"a session never started", "qr-1", `wagate.startPair("s9", "1s"); wagate.waitPair("s9");`, "unknown session"},
		{"waitPair without startPair", "qr-1", `wagate.startSession("s1"); wagate.waitPair("s1", 10);`, "no pairing started"},
		{"waitPair after the outcome was taken", "", `wagate.startSession("s1"); wagate.startPair("s1", "50ms");
try { wagate.waitPair("s1"); } catch (e) {}
wagate.waitPair("s1");`, "no pairing started"},
		{"startPair twice", "qr-1", `wagate.startSession("s1"); wagate.startPair("s1", "1s"); wagate.startPair("s1", "1s");`, "already pairing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vu, _ := newVUPairing(t, `import wagate from "k6/x/wagate";
export default function () { `+c.script+` }`, &gateway{}, newHeldPhone(), shows(c.laravel))
			err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}
