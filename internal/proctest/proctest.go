// Package proctest runs the project's binaries as real processes for end-to-end tests: it finds
// or builds gateway, fakelaravel and simulator, starts each process in its own process group with
// its output in a log file, waits until it serves HTTP, and stops or kills it; whatever a test
// started is killed when the test ends. It is test support: only _test files import it.
package proctest

import (
	"bufio"
	"encoding/json"
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
)

// packages are the commands Binaries knows, by binary name.
var packages = map[string]string{
	"gateway":     "./gateway/cmd/gateway",
	"fakelaravel": "./fakelaravel/cmd/fakelaravel",
	"simulator":   "./simulator/cmd/simulator",
}

// buildDir is the one temporary directory of the binaries this test binary built (Main removes
// it): building them once per package's test run, not once per test.
var buildDir struct {
	once sync.Once
	path string
	err  error
	mu   sync.Mutex // serialises the builds
}

// Main runs the package's tests, removes the binaries Binaries built, and exits; call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir.path != "" {
		_ = os.RemoveAll(buildDir.path)
	}
	os.Exit(code)
}

// moduleRoot is the repository's root (this file is internal/proctest/proctest.go).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binaries returns the paths of the named binaries (gateway, fakelaravel, simulator; all three
// when none is named): the repository's bin/ copies when `make build` made them after the last
// source change, otherwise copies built into a temporary directory (a stale bin/ copy is used,
// with a note, when the tree does not build because someone is editing it). WAGATE_E2E_BIN names
// a directory to use as is. With -short it skips the test rather than build.
func Binaries(t testing.TB, names ...string) map[string]string {
	t.Helper()
	if len(names) == 0 {
		names = []string{"gateway", "fakelaravel", "simulator"}
	}
	out := map[string]string{}
	if dir := os.Getenv("WAGATE_E2E_BIN"); dir != "" {
		for _, name := range names {
			out[name] = filepath.Join(dir, name)
		}
		return out
	}
	root := moduleRoot()
	newest := newestSource(root)
	for _, name := range names {
		pkg, ok := packages[name]
		if !ok {
			t.Fatalf("proctest: no binary %q", name)
		}
		prebuilt := filepath.Join(root, "bin", name)
		fi, statErr := os.Stat(prebuilt)
		if statErr == nil && !fi.ModTime().Before(newest) {
			out[name] = prebuilt
			continue
		}
		if testing.Short() {
			t.Skip("bin/ is absent or stale and -short skips building the binaries")
		}
		built, msg, err := build(root, name, pkg)
		switch {
		case err == nil:
			out[name] = built
		case statErr == nil:
			t.Logf("go build %s failed; using the older %s:\n%s", pkg, prebuilt, msg)
			out[name] = prebuilt
		default:
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return out
}

// build builds pkg into the shared temporary directory, once per test binary.
func build(root, name, pkg string) (path string, msg []byte, err error) {
	buildDir.once.Do(func() { buildDir.path, buildDir.err = os.MkdirTemp("", "wagate-e2e-bin-") })
	if buildDir.err != nil {
		return "", nil, buildDir.err
	}
	buildDir.mu.Lock()
	defer buildDir.mu.Unlock()
	path = filepath.Join(buildDir.path, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil, nil // built by an earlier test of this run
	}
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	msg, err = cmd.CombinedOutput()
	return path, msg, err
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

// FreeAddr returns a loopback address nobody listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a child process in its own process group, logging to a file.
type Proc struct {
	// Name names the process in messages and its log file (<dir>/<Name>.log).
	Name string
	// Log is the log file's path.
	Log string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once Wait returned; err is its error
	err      error
	killOnce sync.Once
}

// Start starts bin with args, the test's environment without its WAGATE_* variables (the gateway
// refuses unknown ones, and the test's own, such as WAGATE_E2E_BIN, are not settings) plus env,
// and its output in dir/name.log (appended: a restarted process keeps one log per name). It is
// killed when the test ends.
func Start(t testing.TB, dir, name, bin string, args, env []string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(withoutWagateVars(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(p.Kill)
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has ended; Err then is how.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error (nil for exit status 0); valid once Exited is closed.
func (p *Proc) Err() error { return p.err }

// Tail is the end of the process's log.
func (p *Proc) Tail() string { return Tail(p.Log) }

// Stop sends SIGTERM and waits up to timeout for the exit, which must be clean (status 0); after
// the timeout the process group is killed and the test fails.
func (p *Proc) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%s exited with %v; log:\n%s", p.Name, p.err, p.Tail())
		}
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("%s did not stop within %v after SIGTERM; log:\n%s", p.Name, timeout, p.Tail())
	}
}

// Kill sends SIGKILL to the process group and waits for the exit; safe to call more than once.
func (p *Proc) Kill() {
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

// WaitHTTP waits up to 30 s for url to answer 200; the test fails when the process exits first.
func (p *Proc) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before serving %s; log:\n%s", p.Name, p.err, url, p.Tail())
		default:
		}
		last := ""
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving %s after 30 s (last: %s); log:\n%s", p.Name, url, last, p.Tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Tail returns the last 4000 bytes of a log file.
func Tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Fakewa is a running `simulator fakewa`, from the JSON line it prints once it serves.
type Fakewa struct {
	Addr          string `json:"addr"`
	Control       string `json:"control"`
	RootPublicKey string `json:"root_public_key"`
}

// StartFakewa starts `simulator fakewa` on free loopback ports with args added, waits for its
// ready line and returns it; its log is dir/fakewa.log. It is stopped when the test ends.
func StartFakewa(t testing.TB, dir, simulator string, args ...string) Fakewa {
	t.Helper()
	cmd := exec.Command(simulator, append([]string{"fakewa", "-listen", "127.0.0.1:0", "-control", "127.0.0.1:0"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logPath := filepath.Join(dir, "fakewa.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logFile.Close()
	})
	var ready Fakewa
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &ready) != nil || ready.Addr == "" {
		t.Fatalf("fakewa ready line %q: %v; log:\n%s", line, err, Tail(logPath))
	}
	return ready
}

// Eventually polls cond every 20 ms until it holds, failing the test after timeout with what it
// waited for and the last state cond described.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() (ok bool, state string)) {
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
		time.Sleep(20 * time.Millisecond)
	}
}

// withoutWagateVars drops the WAGATE_* variables from environ.
func withoutWagateVars(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "WAGATE_") {
			out = append(out, kv)
		}
	}
	return out
}
