package processtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

const (
	apiToken     = "process-test-api-token-0123456789"
	laravelToken = "process-test-laravel-token"
)

// gatewayClient calls the gateway's REST API the way the Laravel app does.
type gatewayClient struct {
	t    *testing.T
	base string
}

func (c gatewayClient) call(method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type sessionView struct {
	SessionID string         `json:"session_id"`
	Status    laravel.Status `json:"status"`
	Connected bool           `json:"connected"`
	Version   int64          `json:"version"`
}

type batchMetrics struct {
	Pending  int64  `json:"pending"`
	InFlight int    `json:"in_flight"`
	Sent     int64  `json:"sent"`
	Breaker  string `json:"breaker"`
}

func (c gatewayClient) sessions() map[string]sessionView {
	c.t.Helper()
	var list struct {
		Sessions []sessionView `json:"sessions"`
	}
	if code := c.call("GET", "/sessions", nil, &list); code != 200 {
		c.t.Fatalf("GET /sessions: %d", code)
	}
	out := map[string]sessionView{}
	for _, s := range list.Sessions {
		out[s.SessionID] = s
	}
	return out
}

func (c gatewayClient) batchMetrics() batchMetrics {
	c.t.Helper()
	var m batchMetrics
	if code := c.call("GET", "/metrics/batch", nil, &m); code != 200 {
		c.t.Fatalf("GET /metrics/batch: %d", code)
	}
	return m
}

// laravelMessages reads what fakelaravel stored for a session (GET /_fake/messages).
func laravelMessages(t *testing.T, base, sessionID string) (fakelaravel.MessagesState, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+fakelaravel.PathMessages+"?session_id="+sessionID, nil)
	req.Header.Set("Authorization", "Bearer "+laravelToken)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fakelaravel.MessagesState{}, err
	}
	defer resp.Body.Close()
	var st fakelaravel.MessagesState
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("GET %s: %s", fakelaravel.PathMessages, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// harness is the processes of a test: a redis-server with AOF, fakewa (no receipts for what
// the gateway sends), fakelaravel on a fixed address and database (so it can be killed and come
// back) and the gateway binary in batch mode on them, which the test SIGKILLs and starts again.
type harness struct {
	t      *testing.T
	dir    string
	bin    map[string]string
	redis  *redistest.Server
	phones *fakewa.ControlClient
	admin  *fakelaravel.AdminClient
	lAddr  string
	lRuns  int
	// laravel is the fakelaravel process running now.
	laravel *proctest.Proc
	gwAddr  string
	gwEnv   []string
	gwRuns  int
	// gw is the gateway process running now; c calls its API.
	gw *proctest.Proc
	c  gatewayClient
}

// startHarness starts the processes, the gateway with id gatewayID and the extra settings env
// (WAGATE_NAME=value) beside those every test shares, and waits until the gateway answers.
func startHarness(t *testing.T, gatewayID string, env ...string) *harness {
	t.Helper()
	return startHarnessOn(t, redistest.Options{AppendOnly: true}, gatewayID, env...)
}

// startHarnessOn is startHarness with a redis-server started with redisOpts (without AOF: a
// restart loses its data).
func startHarnessOn(t *testing.T, redisOpts redistest.Options, gatewayID string, env ...string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("starts four processes")
	}
	h := &harness{t: t, dir: t.TempDir(), bin: proctest.Binaries(t)}
	h.redis = redistest.StartServer(t, redisOpts)
	ready := proctest.StartFakewa(t, h.dir, h.bin["simulator"], "-stream-error-close-delay", "1s", "-receipts", "none")
	h.phones = fakewa.NewControlClient(ready.Control)
	h.lAddr = proctest.FreeAddr(t)
	h.admin = fakelaravel.NewAdminClient(h.laravelURL(), laravelToken, nil)
	h.gwAddr = proctest.FreeAddr(t)
	h.gwEnv = append([]string{
		"WAGATE_ADDR=" + h.gwAddr,
		"WAGATE_API_TOKEN=" + apiToken,
		"WAGATE_LARAVEL_URL=" + h.laravelURL(),
		"WAGATE_LARAVEL_TOKEN=" + laravelToken,
		"WAGATE_LARAVEL_TIMEOUT=2s",
		"WAGATE_DATA_DIR=" + filepath.Join(h.dir, "gateway-data"),
		"WAGATE_MODE=batch",
		"WAGATE_REDIS_URL=redis://" + h.redis.Addr,
		"WAGATE_GATEWAY_ID=" + gatewayID,
		"WAGATE_PAIR_LOGIN_TIMEOUT=5s",
		"WAGATE_SHUTDOWN_TIMEOUT=10s",
		"WAGATE_WA_DIAL=" + ready.Addr,
		"WAGATE_WA_ROOT_PUBKEY=" + ready.RootPublicKey,
		"WAGATE_WA_INSECURE_TEST=1",
	}, env...)
	h.c = gatewayClient{t: t, base: "http://" + h.gwAddr}
	h.startLaravel()
	h.startGateway()
	return h
}

func (h *harness) laravelURL() string { return "http://" + h.lAddr }

// startLaravel starts fakelaravel (again) on its address and database and waits until it
// answers; it runs until the test kills it or ends.
func (h *harness) startLaravel() {
	h.t.Helper()
	h.lRuns++
	p := proctest.Start(h.t, h.dir, fmt.Sprintf("fakelaravel-%d", h.lRuns), h.bin["fakelaravel"],
		[]string{"-addr", h.lAddr, "-db", filepath.Join(h.dir, "laravel.db")}, []string{"FAKELARAVEL_TOKEN=" + laravelToken})
	p.WaitHTTP(h.t, h.laravelURL()+"/_fake/healthz")
	h.laravel = p
}

// startGateway starts the gateway process gateway-N (N counts the starts; its log is
// gateway-N.log in dir) and waits until it answers.
func (h *harness) startGateway() {
	h.t.Helper()
	h.gwRuns++
	h.gw = proctest.Start(h.t, h.dir, fmt.Sprintf("gateway-%d", h.gwRuns), h.bin["gateway"], nil, h.gwEnv)
	h.gw.WaitHTTP(h.t, h.c.base+"/healthz")
}

// killGateway SIGKILLs the gateway (no shutdown, no final flush) and starts it again.
func (h *harness) killGateway() {
	h.t.Helper()
	h.gw.Kill()
	h.startGateway()
}

// pair starts session id through the API, reads its QR code from the API and has a fakewa
// phone with number phone scan it; it returns the paired device.
func (h *harness) pair(ctx context.Context, id, phone string) types.JID {
	h.t.Helper()
	if code := h.c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
		h.t.Fatalf("start %s: %d", id, code)
	}
	var qr struct {
		QR string `json:"qr"`
	}
	proctest.Eventually(h.t, id+" QR from the API", 15*time.Second, func() (bool, string) {
		code := h.c.call("GET", "/sessions/"+id+"/qr", nil, &qr)
		return code == 200 && qr.QR != "", fmt.Sprint(code)
	})
	jid, err := h.phones.Pair(ctx, qr.QR, phone)
	if err != nil {
		h.t.Fatalf("pair %s: %v", id, err)
	}
	return jid
}
