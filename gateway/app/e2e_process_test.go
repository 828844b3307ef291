package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"wagate/simulator/fakewa"
)

// binaries returns the paths of gateway, fakelaravel and simulator: the repository's bin/ copies
// when `make build` made them after the last source change, otherwise copies built into a
// temporary directory (falling back to a stale bin/ copy, with a note, when the tree does not
// build because someone is editing it). WAGATE_E2E_BIN names a directory to use as is.
var (
	buildDirOnce sync.Once
	buildDirPath string
	buildDirErr  error
)

// buildDir is one temporary directory for the binaries built by this test run (TestMain removes it).
func buildDir() (string, error) {
	buildDirOnce.Do(func() { buildDirPath, buildDirErr = os.MkdirTemp("", "wagate-e2e-bin-") })
	return buildDirPath, buildDirErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDirPath != "" {
		_ = os.RemoveAll(buildDirPath)
	}
	os.Exit(code)
}

func binaries(t *testing.T) map[string]string {
	t.Helper()
	names := []string{"gateway", "fakelaravel", "simulator"}
	out := map[string]string{}
	if dir := os.Getenv("WAGATE_E2E_BIN"); dir != "" {
		for _, name := range names {
			out[name] = filepath.Join(dir, name)
		}
		return out
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(root, "bin")
	newest := newestSource(root)
	pkgs := map[string]string{"gateway": "./gateway/cmd/gateway", "fakelaravel": "./fakelaravel/cmd/fakelaravel", "simulator": "./simulator/cmd/simulator"}
	var tmp string
	for _, name := range names {
		prebuilt := filepath.Join(bin, name)
		fi, statErr := os.Stat(prebuilt)
		if statErr == nil && !fi.ModTime().Before(newest) {
			out[name] = prebuilt
			continue
		}
		if testing.Short() {
			t.Skip("bin/ is absent or stale and -short skips building the binaries")
		}
		if tmp == "" {
			var err error
			if tmp, err = buildDir(); err != nil {
				t.Fatal(err)
			}
		}
		built := filepath.Join(tmp, name)
		if _, err := os.Stat(built); err == nil {
			out[name] = built // built by an earlier test of this run
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(tmp, name), pkgs[name])
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			if statErr == nil {
				t.Logf("go build %s failed; using the older %s:\n%s", pkgs[name], prebuilt, msg)
				out[name] = prebuilt
				continue
			}
			t.Fatalf("go build %s: %v\n%s", pkgs[name], err, msg)
		}
		out[name] = filepath.Join(tmp, name)
	}
	return out
}

// newestSource returns the modification time of the newest .go file or go.mod/go.sum in the module.
func newestSource(root string) time.Time {
	var newest time.Time
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules", "vendor", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum" {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		return nil
	})
	return newest
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

// proc is a child process whose output goes to a log file in the test's temp dir.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
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
	cmd.Stderr = f
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { p.kill() })
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v; log:\n%s", p.name, err, tail(p.log))
		}
	case <-time.After(timeout):
		p.kill()
		t.Fatalf("%s did not stop within %v after SIGTERM; log:\n%s", p.name, timeout, tail(p.log))
	}
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited (%v) before serving; log:\n%s", p.name, err, tail(p.log))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving %s after 30 s; log:\n%s", p.name, url, tail(p.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type processes struct {
	t         *testing.T
	dir       string
	bin       map[string]string
	control   *fakewa.ControlClient
	admin     *fakelaravel.AdminClient
	gwEnv     []string
	gwAddr    string
	gateway   *proc
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
	w.gwAddr = freeAddr(w.t)
	env := append([]string{"WAGATE_ADDR=" + w.gwAddr}, w.gwEnv...)
	w.gateway = startProc(w.t, w.dir, fmt.Sprintf("gateway-%d", w.restarted), w.bin["gateway"], nil, env)
	waitHTTP(w.t, w.gateway, w.gatewayURL()+"/healthz")
}

func (w *processes) restartGateway(ctx context.Context) {
	w.gateway.stop(w.t, 30*time.Second)
	if log := tail(w.gateway.log); !strings.Contains(log, "shutdown complete") {
		w.t.Errorf("the gateway did not report a clean shutdown; log:\n%s", log)
	}
	w.restarted++
	w.startGateway()
}

func TestGatewayBinaryVersionAndRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	bin := binaries(t)["gateway"]
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gateway ") {
		t.Fatalf("-version: %q %v", out, err)
	}
	cases := map[string][]string{
		"refused without WAGATE_WA_INSECURE_TEST=1": {"WAGATE_WA_DIAL=127.0.0.1:1", "WAGATE_WA_ROOT_PUBKEY=" + strings.Repeat("ab", 32)},
		"WAGATE_MODE":      {"WAGATE_MODE=fast"},
		"WAGATE_API_TOKEN": {"WAGATE_API_TOKEN="},
	}
	for want, env := range cases {
		cmd := exec.Command(bin)
		cmd.Env = append([]string{"WAGATE_API_TOKEN=" + apiToken, "WAGATE_LARAVEL_URL=http://127.0.0.1:1", "WAGATE_DATA_DIR=" + t.TempDir()}, env...)
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
	w := &processes{t: t, dir: t.TempDir(), bin: binaries(t)}

	// fakewa prints one JSON line with its addresses and root key once it serves.
	waCmd := exec.Command(w.bin["simulator"], "fakewa", "-listen", "127.0.0.1:0", "-control", "127.0.0.1:0",
		"-stream-error-close-delay", "1s", "-receipts", "none")
	waCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waErr, err := os.Create(filepath.Join(w.dir, "fakewa.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer waErr.Close()
	waCmd.Stderr = waErr
	stdout, err := waCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := waCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = waCmd.Process.Signal(syscall.SIGTERM)
		_ = waCmd.Wait()
	}()
	var ready struct {
		Addr          string `json:"addr"`
		Control       string `json:"control"`
		RootPublicKey string `json:"root_public_key"`
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &ready) != nil || ready.Addr == "" {
		t.Fatalf("fakewa ready line %q: %v; log:\n%s", line, err, tail(waErr.Name()))
	}
	w.control = fakewa.NewControlClient(ready.Control)

	lAddr := freeAddr(t)
	laravelProc := startProc(t, w.dir, "fakelaravel", w.bin["fakelaravel"],
		[]string{"-addr", lAddr, "-db", filepath.Join(w.dir, "laravel.db")}, []string{"FAKELARAVEL_TOKEN=" + laravelToken})
	waitHTTP(t, laravelProc, "http://"+lAddr+"/_fake/healthz")
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
	w.gateway.stop(t, 30*time.Second)
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
	laravelProc.stop(t, 10*time.Second)
}
