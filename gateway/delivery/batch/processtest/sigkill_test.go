package processtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

const (
	apiToken     = "process-test-api-token-0123456789"
	laravelToken = "process-test-laravel-token"
)

// binaries builds gateway, fakelaravel and simulator into a temporary directory (or uses
// $WAGATE_E2E_BIN), so the test never runs stale binaries.
func binaries(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("WAGATE_E2E_BIN"); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	dir := t.TempDir()
	for name, pkg := range map[string]string{"gateway": "./gateway/cmd/gateway", "fakelaravel": "./fakelaravel/cmd/fakelaravel", "simulator": "./simulator/cmd/simulator"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a child process (in its own process group) logging to a file.
type proc struct {
	name     string
	cmd      *exec.Cmd
	log      string
	exited   chan struct{} // closed once Wait returned; err is its error
	err      error
	killOnce sync.Once
}

func startProc(t *testing.T, dir, name, bin string, args, env []string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	p.killOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func waitHTTP(t *testing.T, p *proc, url string) {
	t.Helper()
	eventually(t, p.name+" serving "+url, 30*time.Second, func() (bool, string) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v); log:\n%s", p.name, p.err, tail(p.log))
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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

// A gateway in batch mode with a real Redis keeps accepting session events while Laravel is down,
// is killed with SIGKILL, restarts; Laravel comes back; and Laravel ends with the gateway's last
// version of every session: nothing lost, nothing stale. QR codes and statuses reach Laravel only
// through the batch endpoints, and /metrics/batch and /metrics/cache answer.
func TestAGatewaySIGKILLedWhileLaravelIsDownLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := binaries(t)
	rs := redistest.StartServer(t, redistest.Options{AppendOnly: true})

	// fakewa prints one JSON line with its addresses and root key once it serves.
	wa := exec.Command(filepath.Join(bin, "simulator"), "fakewa", "-listen", "127.0.0.1:0", "-control", "127.0.0.1:0",
		"-stream-error-close-delay", "1s", "-receipts", "none")
	wa.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waLog, err := os.Create(filepath.Join(dir, "fakewa.log"))
	if err != nil {
		t.Fatal(err)
	}
	wa.Stderr = waLog
	stdout, _ := wa.StdoutPipe()
	if err := wa.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-wa.Process.Pid, syscall.SIGKILL); _ = wa.Wait(); waLog.Close() })
	var ready struct {
		Addr          string `json:"addr"`
		Control       string `json:"control"`
		RootPublicKey string `json:"root_public_key"`
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &ready) != nil || ready.Addr == "" {
		t.Fatalf("fakewa ready line %q: %v; log:\n%s", line, err, tail(waLog.Name()))
	}
	phones := fakewa.NewControlClient(ready.Control)

	lAddr := freeAddr(t)
	starts := 0
	startLaravel := func() *proc {
		starts++
		p := startProc(t, dir, fmt.Sprintf("fakelaravel-%d", starts), filepath.Join(bin, "fakelaravel"),
			[]string{"-addr", lAddr, "-db", filepath.Join(dir, "laravel.db")}, []string{"FAKELARAVEL_TOKEN=" + laravelToken})
		waitHTTP(t, p, "http://"+lAddr+"/_fake/healthz")
		return p
	}
	lproc := startLaravel()
	admin := fakelaravel.NewAdminClient("http://"+lAddr, laravelToken, nil)

	gwAddr := freeAddr(t)
	gwEnv := []string{
		"WAGATE_ADDR=" + gwAddr,
		"WAGATE_API_TOKEN=" + apiToken,
		"WAGATE_LARAVEL_URL=http://" + lAddr,
		"WAGATE_LARAVEL_TOKEN=" + laravelToken,
		"WAGATE_LARAVEL_TIMEOUT=2s",
		"WAGATE_DATA_DIR=" + filepath.Join(dir, "gateway-data"),
		"WAGATE_MODE=batch",
		"WAGATE_REDIS_URL=redis://" + rs.Addr,
		"WAGATE_GATEWAY_ID=gw-kill",
		"WAGATE_BATCH_INTERVAL=300ms",
		"WAGATE_PRIORITY_INTERVAL=200ms",
		"WAGATE_QR_FIRST_TIMEOUT=3s",
		"WAGATE_QR_TIMEOUT=1s",
		"WAGATE_QR_CODES=3",
		"WAGATE_PAIR_LOGIN_TIMEOUT=5s",
		"WAGATE_SHUTDOWN_TIMEOUT=10s",
		"WAGATE_WA_DIAL=" + ready.Addr,
		"WAGATE_WA_ROOT_PUBKEY=" + ready.RootPublicKey,
		"WAGATE_WA_INSECURE_TEST=1",
	}
	gw := startProc(t, dir, "gateway-1", filepath.Join(bin, "gateway"), nil, gwEnv)
	waitHTTP(t, gw, "http://"+gwAddr+"/healthz")
	c := gatewayClient{t: t, base: "http://" + gwAddr}

	laravelSessions := func() map[string]fakelaravel.SessionState {
		st, err := admin.GetState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]fakelaravel.SessionState{}
		for _, s := range st.Sessions {
			out[s.SessionID] = s
		}
		return out
	}

	// Two paired sessions, connected in Laravel.
	var jids []types.JID
	for i, id := range []string{"kill_a", "kill_b"} {
		if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
			t.Fatalf("start %s: %d", id, code)
		}
		var qr struct {
			QR string `json:"qr"`
		}
		eventually(t, id+" QR from the API", 15*time.Second, func() (bool, string) {
			code := c.call("GET", "/sessions/"+id+"/qr", nil, &qr)
			return code == 200 && qr.QR != "", fmt.Sprint(code)
		})
		jid, err := phones.Pair(ctx, qr.QR, fmt.Sprintf("1555888000%d", i))
		if err != nil {
			t.Fatalf("pair %s: %v", id, err)
		}
		jids = append(jids, jid)
		eventually(t, id+" connected in Laravel", 30*time.Second, func() (bool, string) {
			s := laravelSessions()[id]
			return s.EstadoQR == laravel.StatusConnected, fmt.Sprintf("%+v", s)
		})
	}

	// Laravel goes down. The gateway keeps accepting events: new sessions rotate QR codes and
	// expire, a paired device drops and reconnects.
	lproc.kill() // its SQLite file stays; it comes back on the same address
	for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
		if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
			t.Fatalf("start %s: %d", id, code)
		}
	}
	if err := phones.Drop(ctx, jids[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new sessions to expire and the outbox to hold their events", 60*time.Second, func() (bool, string) {
		ss := c.sessions()
		m := c.batchMetrics()
		done := m.Pending > 0
		for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
			done = done && ss[id].Status == laravel.StatusExpired
		}
		return done, fmt.Sprintf("sessions %+v metrics %+v", ss, m)
	})
	before := c.sessions()

	// SIGKILL: no shutdown, no final flush.
	gw.kill()
	gw = startProc(t, dir, "gateway-2", filepath.Join(bin, "gateway"), nil, gwEnv)
	waitHTTP(t, gw, "http://"+gwAddr+"/healthz")
	lproc = startLaravel()

	// Laravel ends with the gateway's last version of every session.
	eventually(t, "Laravel to hold the gateway's last version of every session", 60*time.Second, func() (bool, string) {
		ss := c.sessions()
		ls := laravelSessions()
		m := c.batchMetrics()
		if m.Pending != 0 || m.InFlight != 0 {
			return false, fmt.Sprintf("metrics %+v", m)
		}
		for id, s := range ss {
			l, ok := ls[id]
			if !ok {
				return false, id + " missing in Laravel"
			}
			// The restarted gateway reports a version only for sessions with new events; the
			// ones accepted before the SIGKILL must all have arrived (versions at least as new).
			lv := max(l.StatusVersion, l.QRVersion)
			if l.EstadoQR != s.Status || (s.Version > 0 && lv != s.Version) || lv < before[id].Version {
				return false, fmt.Sprintf("%s: gateway %s v%d (v%d before the kill), Laravel %s status v%d qr v%d",
					id, s.Status, s.Version, before[id].Version, l.EstadoQR, l.StatusVersion, l.QRVersion)
			}
		}
		return len(ss) == 5, fmt.Sprintf("%d sessions", len(ss))
	})
	for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
		if ls := laravelSessions()[id]; ls.EstadoQR != laravel.StatusExpired || ls.StatusVersion < before[id].Version {
			t.Errorf("%s in Laravel: %+v; want expired at version >= %d (accepted before the SIGKILL)", id, ls, before[id].Version)
		}
	}

	// Only the batch endpoints were used; the metrics endpoints answer.
	st, err := admin.GetStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{fakelaravel.EndpointQR, fakelaravel.EndpointStatus} {
		if n := st.Endpoints[ep].Requests; n != 0 {
			t.Errorf("%d legacy %s requests in batch mode", n, ep)
		}
	}
	if st.Endpoints[fakelaravel.EndpointQRBatch].Requests == 0 || st.Endpoints[fakelaravel.EndpointStatusBatch].Requests == 0 {
		t.Errorf("batch endpoints unused: %+v", st.Endpoints)
	}
	var cm map[string]any
	if code := c.call("GET", "/metrics/cache", nil, &cm); code != 200 || cm["totalKeys"] == nil {
		t.Errorf("/metrics/cache: %d %v", code, cm)
	}
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway-1 log:\n%s\ngateway-2 log:\n%s", tail(filepath.Join(dir, "gateway-1.log")), tail(gw.log))
	}
	if !strings.Contains(tail(gw.log), "recovered own pending outbox entries") {
		t.Error("the restarted gateway did not recover the entries the killed one had read")
	}
	if log := tail(gw.log); strings.Contains(log, apiToken) || strings.Contains(log, laravelToken) {
		t.Error("a secret appears in the gateway log")
	}
}
