package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

func TestMain(m *testing.M) { proctest.Main(m) }

type processes struct {
	t         *testing.T
	dir       string
	bin       map[string]string
	control   *fakewa.ControlClient
	admin     *fakelaravel.AdminClient
	gwEnv     []string
	gwAddr    string
	gateway   *proctest.Proc
	restarted int
}

func (w *processes) gatewayURL() string { return "http://" + w.gwAddr }
func (w *processes) pair(ctx context.Context, qr, phone string) (types.JID, error) {
	return w.control.Pair(ctx, qr, phone)
}
func (w *processes) drop(ctx context.Context, jid types.JID) error { return w.control.Drop(ctx, jid) }
func (w *processes) failNextConnect(ctx context.Context, jid types.JID, reason int) error {
	return w.control.FailNextConnect(ctx, jid, reason)
}
func (w *processes) laravelState(ctx context.Context) (fakelaravel.State, error) {
	return w.admin.GetState(ctx)
}
func (w *processes) waEvents(ctx context.Context) ([]fakewa.Event, error) {
	return w.control.Events(ctx, 0)
}

func (w *processes) startGateway() {
	w.t.Helper()
	w.gwAddr = proctest.FreeAddr(w.t)
	env := append([]string{"WAGATE_ADDR=" + w.gwAddr}, w.gwEnv...)
	w.gateway = proctest.Start(w.t, w.dir, fmt.Sprintf("gateway-%d", w.restarted), w.bin["gateway"], nil, env)
	w.gateway.WaitHTTP(w.t, w.gatewayURL()+"/healthz")
}

func (w *processes) restartGateway(ctx context.Context) {
	w.gateway.Stop(w.t, 30*time.Second)
	if log := w.gateway.Tail(); !strings.Contains(log, "shutdown complete") {
		w.t.Errorf("the gateway did not report a clean shutdown; log:\n%s", log)
	}
	w.restarted++
	w.startGateway()
	// After a clean stop the new process sends nothing for unchanged sessions (no event flood).
	proctest.Eventually(w.t, "the restarted gateway to restore its sessions", 30*time.Second, func() (bool, string) {
		log := w.gateway.Tail()
		return strings.Contains(log, `msg="sessions restored"`), log
	})
	if log := w.gateway.Tail(); !strings.Contains(log, "resync=false") {
		w.t.Errorf("a restart after a clean stop re-sends every status; log:\n%s", log)
	}
}

func TestGatewayBinaryVersionAndRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	bin := proctest.Binaries(t)["gateway"]
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gateway ") {
		t.Fatalf("-version: %q %v", out, err)
	}
	cases := map[string][]string{
		"refused without WAGATE_WA_INSECURE_TEST=1": {"WAGATE_WA_DIAL=127.0.0.1:1", "WAGATE_WA_ROOT_PUBKEY=" + strings.Repeat("ab", 32)},
		"WAGATE_MODE":                              {"WAGATE_MODE=fast"},
		"WAGATE_API_TOKEN":                         {"WAGATE_API_TOKEN="},
		"WAGATE_LARAVEL_TOKEN: required":           {"WAGATE_LARAVEL_TOKEN="},
		"WAGATE_REDIS_URL: required in batch mode": {"WAGATE_MODE=batch"},
		"WAGATE_QR_CODE: not a gateway setting; did you mean WAGATE_QR_CODES?": {"WAGATE_QR_CODE=3"},
	}
	for want, env := range cases {
		cmd := exec.Command(bin)
		cmd.Env = append([]string{"WAGATE_API_TOKEN=" + apiToken, "WAGATE_LARAVEL_URL=http://127.0.0.1:1", "WAGATE_LARAVEL_TOKEN=" + laravelToken, "WAGATE_DATA_DIR=" + t.TempDir()}, env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), want) {
			t.Errorf("%v: exit %v, output %q; want exit 2 mentioning %q", env, err, out, want)
		}
	}
}

func TestEndToEndWithTheThreeBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	w := &processes{t: t, dir: t.TempDir(), bin: proctest.Binaries(t)}

	ready := proctest.StartFakewa(t, w.dir, w.bin["simulator"], "-stream-error-close-delay", "1s", "-receipts", "none")
	w.control = fakewa.NewControlClient(ready.Control)

	lAddr := proctest.FreeAddr(t)
	laravelProc := proctest.Start(t, w.dir, "fakelaravel", w.bin["fakelaravel"],
		[]string{"-addr", lAddr, "-db", filepath.Join(w.dir, "laravel.db")}, []string{"FAKELARAVEL_TOKEN=" + laravelToken})
	laravelProc.WaitHTTP(t, "http://"+lAddr+"/_fake/healthz")
	w.admin = fakelaravel.NewAdminClient("http://"+lAddr, laravelToken, nil)

	w.gwEnv = []string{
		"WAGATE_API_TOKEN=" + apiToken,
		"WAGATE_LARAVEL_URL=http://" + lAddr,
		"WAGATE_LARAVEL_TOKEN=" + laravelToken,
		"WAGATE_DATA_DIR=" + filepath.Join(w.dir, "gateway-data"),
		"WAGATE_MODE=legacy",
		"WAGATE_PAIR_LOGIN_TIMEOUT=5s",
		"WAGATE_SHUTDOWN_TIMEOUT=10s",
		"WAGATE_WA_DIAL=" + ready.Addr,
		"WAGATE_WA_ROOT_PUBKEY=" + ready.RootPublicKey,
		"WAGATE_WA_INSECURE_TEST=1",
	}
	w.startGateway()
	runFlow(t, w)
	w.gateway.Stop(t, 30*time.Second)
	logs, _ := filepath.Glob(filepath.Join(w.dir, "gateway-*.log"))
	for _, path := range logs {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), apiToken) || strings.Contains(string(data), laravelToken) {
			t.Errorf("a secret appears in %s", path)
		}
		if !strings.Contains(string(data), "INSECURE TEST SETTING") {
			t.Errorf("%s lacks the loud test-setting warning", path)
		}
	}
	if len(logs) != 2 {
		t.Errorf("%d gateway logs, want 2 (one restart)", len(logs))
	}
	laravelProc.Stop(t, 10*time.Second)
}
