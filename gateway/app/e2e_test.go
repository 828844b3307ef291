package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/app"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

const (
	apiToken     = "e2e-api-token-0123456789"
	laravelToken = "e2e-laravel-token"
)

// rootKey is shared by every fakewa of this process: whatsmeow trusts one root key per process.
var rootKey = sync.OnceValue(fakewa.GenerateRootKey)

// world is what the end-to-end flow needs, whether the three parts run in-process or as processes.
type world interface {
	gatewayURL() string
	pair(ctx context.Context, qr, phone string) (types.JID, error)
	drop(ctx context.Context, jid types.JID) error
	failNextConnect(ctx context.Context, jid types.JID, reason int) error
	laravelState(ctx context.Context) (fakelaravel.State, error)
	waEvents(ctx context.Context) ([]fakewa.Event, error)
	restartGateway(ctx context.Context)
}

// testLogger discards logs unless WAGATE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WAGATE_TEST_LOG") != "" {
		level := slog.LevelDebug
		if os.Getenv("WAGATE_TEST_LOG") == "warn" {
			level = slog.LevelWarn
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// client calls the gateway's REST API the way the Laravel app does.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (c *client) call(method, path string, body any, out any) int {
	c.t.Helper()
	code, _ := c.callWith(method, path, nil, body, out)
	return code
}

// callWith is call with the extra request headers header; it also returns the answer's headers.
func (c *client) callWith(method, path string, header http.Header, body any, out any) (int, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func laravelSession(ctx context.Context, w world, id string) (fakelaravel.SessionState, bool) {
	st, err := w.laravelState(ctx)
	if err != nil {
		return fakelaravel.SessionState{}, false
	}
	for _, s := range st.Sessions {
		if s.SessionID == id {
			return s, true
		}
	}
	return fakelaravel.SessionState{}, false
}

func waitLaravelStatus(t *testing.T, ctx context.Context, w world, id string, want laravel.Status) {
	t.Helper()
	proctest.Eventually(t, fmt.Sprintf("Laravel to show %s %s", id, want), 30*time.Second, func() (bool, string) {
		s, ok := laravelSession(ctx, w, id)
		return ok && s.EstadoQR == want, fmt.Sprintf("%+v", s)
	})
}

type sessionView struct {
	SessionID string         `json:"session_id"`
	Status    laravel.Status `json:"status"`
	Active    *bool          `json:"active"`
	Connected bool           `json:"connected"`
	Paired    bool           `json:"paired"`
}

// startAndPair starts a session through the API, reads its QR code from the API and lets a fake
// phone scan it; it returns the device's JID once Laravel shows the session connected.
func startAndPair(t *testing.T, ctx context.Context, w world, c *client, id, phone string) types.JID {
	t.Helper()
	var started sessionView
	if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, &started); code != 200 || started.Status != laravel.StatusPending {
		t.Fatalf("start %s: %d %+v", id, code, started)
	}
	var qr struct {
		QR        string    `json:"qr"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	proctest.Eventually(t, "a QR code from the API", 15*time.Second, func() (bool, string) {
		code := c.call("GET", "/sessions/"+id+"/qr", nil, &qr)
		return code == 200 && qr.QR != "", fmt.Sprint(code)
	})
	if time.Until(qr.ExpiresAt) < 30*time.Second {
		t.Fatalf("first QR code expires at %v: want about 60 s from now", qr.ExpiresAt)
	}
	// Laravel got the same QR code (legacy POST /api/qr).
	proctest.Eventually(t, "Laravel to hold the QR code", 15*time.Second, func() (bool, string) {
		s, _ := laravelSession(ctx, w, id)
		return s.QR == qr.QR && s.EstadoQR == laravel.StatusPending, fmt.Sprintf("%+v", s)
	})
	jid, err := w.pair(ctx, qr.QR, phone)
	if err != nil {
		t.Fatalf("phone scan: %v", err)
	}
	waitLaravelStatus(t, ctx, w, id, laravel.StatusConnected)
	return jid
}

// runFlow is the end-to-end scenario of the issue, on any world.
func runFlow(t *testing.T, w world) {
	ctx := context.Background()
	c := &client{t: t, base: w.gatewayURL(), hc: &http.Client{Timeout: 30 * time.Second}}

	jid1 := startAndPair(t, ctx, w, c, "e2e_one", "15557770001")
	startAndPair(t, ctx, w, c, "e2e_two", "15557770002")

	// A message goes out through WhatsApp; isSessionActive asked Laravel (connected + enabled).
	var sent struct {
		MessageID string `json:"message_id"`
	}
	if code := c.call("POST", "/sessions/e2e_one/messages", map[string]string{"to": "+15559990000", "text": "hola desde wagate"}, &sent); code != 200 || sent.MessageID == "" {
		t.Fatalf("send: %d %+v", code, sent)
	}
	proctest.Eventually(t, "fakewa to ack the message", 10*time.Second, func() (bool, string) {
		evs, _ := w.waEvents(ctx)
		return slices.ContainsFunc(evs, func(e fakewa.Event) bool {
			return e.Kind == fakewa.EventMessageAcked && e.MessageID == sent.MessageID
		}), ""
	})
	var view sessionView
	if code := c.call("GET", "/sessions/e2e_one", nil, &view); code != 200 || view.Active == nil || !*view.Active || !view.Connected {
		t.Fatalf("GET session: %d %+v", code, view)
	}

	// A network drop: Laravel shows disconnected, then connected again. The first reconnect
	// attempt is refused with 503 so the disconnected state lasts long enough to be seen.
	if err := w.failNextConnect(ctx, jid1, 503); err != nil {
		t.Fatal(err)
	}
	if err := w.drop(ctx, jid1); err != nil {
		t.Fatal(err)
	}
	waitLaravelStatus(t, ctx, w, "e2e_one", laravel.StatusDisconnected)
	waitLaravelStatus(t, ctx, w, "e2e_one", laravel.StatusConnected)

	// Logout through the API.
	if code := c.call("DELETE", "/sessions/e2e_one", nil, &view); code != 200 || view.Status != laravel.StatusLoggedOut {
		t.Fatalf("logout: %d %+v", code, view)
	}
	waitLaravelStatus(t, ctx, w, "e2e_one", laravel.StatusLoggedOut)
	if code := c.call("POST", "/sessions/e2e_one/messages", map[string]string{"to": "15559990000", "text": "x"}, nil); code != 409 {
		t.Fatalf("send after logout: %d, want 409", code)
	}

	// A restarted gateway reconnects its paired session by itself; the logged-out one stays so.
	evs, _ := w.waEvents(ctx)
	connectsBefore := countConnects(evs, "15557770002")
	w.restartGateway(ctx)
	c.base = w.gatewayURL()
	proctest.Eventually(t, "e2e_two to reconnect after the restart", 30*time.Second, func() (bool, string) {
		var v sessionView
		code := c.call("GET", "/sessions/e2e_two", nil, &v)
		evs, _ := w.waEvents(ctx)
		return code == 200 && v.Connected && v.Status == laravel.StatusConnected && countConnects(evs, "15557770002") > connectsBefore,
			fmt.Sprintf("%d %+v", code, v)
	})
	if code := c.call("GET", "/sessions/e2e_one", nil, &view); code != 200 || view.Status != laravel.StatusLoggedOut || view.Paired {
		t.Fatalf("e2e_one after restart: %d %+v", code, view)
	}
	waitLaravelStatus(t, ctx, w, "e2e_two", laravel.StatusConnected)
	// And it still sends.
	if code := c.call("POST", "/sessions/e2e_two/messages", map[string]string{"to": "15559990000", "text": "after restart"}, &sent); code != 200 {
		t.Fatalf("send after restart: %d", code)
	}

	// Operational endpoints.
	metrics := c.metrics()
	for _, want := range []string{`wagate_sessions{status="connected"} 1`, `wagate_sessions{status="logged_out"} 1`, "wagate_api_request_duration_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err := c.hc.Get(c.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "INSECURE TEST SETTING") {
		t.Errorf("/readyz: %d %s", resp.StatusCode, body)
	}
}

func countConnects(evs []fakewa.Event, phone string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == fakewa.EventConnected && strings.HasPrefix(e.JID, phone+":") {
			n++
		}
	}
	return n
}

// ---- in-process world ----

type inProcess struct {
	t       *testing.T
	wa      *fakewa.Server
	laravel *fakelaravel.Server
	lsrv    *httptest.Server
	cfg     config.Config
	gw      *app.App
	cancel  context.CancelFunc
	done    chan error
}

func (w *inProcess) gatewayURL() string { return "http://" + w.gw.Addr() }
func (w *inProcess) pair(ctx context.Context, qr, phone string) (types.JID, error) {
	return w.wa.Pair(ctx, qr, phone)
}
func (w *inProcess) drop(ctx context.Context, jid types.JID) error { return w.wa.Drop(jid) }
func (w *inProcess) failNextConnect(ctx context.Context, jid types.JID, reason int) error {
	return w.wa.FailNextConnect(jid, reason)
}
func (w *inProcess) laravelState(ctx context.Context) (fakelaravel.State, error) {
	return w.laravel.State(ctx)
}
func (w *inProcess) waEvents(ctx context.Context) ([]fakewa.Event, error) { return w.wa.Events(), nil }

func (w *inProcess) startGateway() {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := app.New(ctx, w.cfg, testLogger())
	if err != nil {
		cancel()
		w.t.Fatal(err)
	}
	w.gw, w.cancel, w.done = gw, cancel, make(chan error, 1)
	go func() { w.done <- gw.Run(ctx) }()
}

func (w *inProcess) stopGateway() {
	w.t.Helper()
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("gateway shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		w.t.Fatal("gateway did not shut down within 30 s")
	}
}

func (w *inProcess) restartGateway(ctx context.Context) {
	w.stopGateway()
	w.startGateway()
}

func TestEndToEndInProcess(t *testing.T) {
	// Its reconnect after the drop is refused with a 503 stream error right after the handshake
	// on purpose (failNextConnect): whatsmeowRacesOnAPeerClose (CI at 1c1c6e0 reported that race
	// here). TestEndToEndWithTheThreeBinaries runs the same steps against the built binaries.
	if raceEnabled {
		t.Skip(whatsmeowRacesOnAPeerClose)
	}
	for _, mode := range []string{config.ModeLegacy, config.ModeBatch} {
		t.Run(mode, func(t *testing.T) { endToEndInProcess(t, mode) })
	}
}

func endToEndInProcess(t *testing.T, mode string) {
	runFlow(t, newWorld(t, worldOptions{mode: mode}))
}
