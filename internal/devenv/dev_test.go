package devenv

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wagate/internal/proctest"
)

// make dev starts the three processes, prints commands that pair a demo session (run here as
// printed), and leaves nothing running after Ctrl-C.
func TestMakeDevPairsADemoSessionAndStopsOnCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	bins := proctest.Binaries(t)
	binDir := t.TempDir()
	for name, path := range bins {
		if err := os.Symlink(path, filepath.Join(binDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	gw, lv := proctest.FreeAddr(t), proctest.FreeAddr(t)
	wa, wactl := proctest.FreeAddr(t), proctest.FreeAddr(t)
	cmd := exec.Command("bash", "dev.sh")
	cmd.Env = append(os.Environ(), "BIN="+binDir, "DEV_GATEWAY_ADDR="+gw, "DEV_LARAVEL_ADDR="+lv,
		"DEV_FAKEWA_ADDR="+wa, "DEV_FAKEWA_CONTROL="+wactl)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	// Read the banner up to its last line.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var banner []string
	deadline := time.After(60 * time.Second)
read:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev.sh ended before its banner:\n%s\nstderr: %s", strings.Join(banner, "\n"), stderr.String())
			}
			banner = append(banner, l)
			if strings.HasPrefix(l, "Ctrl-C stops everything") {
				break read
			}
		case <-deadline:
			t.Fatalf("no banner within 60 s:\n%s\nstderr: %s", strings.Join(banner, "\n"), stderr.String())
		}
	}
	text := strings.Join(banner, "\n")
	for _, want := range []string{"http://" + gw, "http://" + lv, "API token:", "Laravel token:"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
	var pairCommands []string
	for i, l := range banner {
		if l == "Pair a demo session:" && i+2 < len(banner) {
			pairCommands = []string{banner[i+1], banner[i+2]}
		}
	}
	if pairCommands == nil {
		t.Fatalf("no pairing commands in the banner:\n%s", text)
	}
	for _, c := range pairCommands {
		if out, err := exec.Command("bash", "-c", c).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	_, afterLabel, _ := strings.Cut(text, "API token:")
	token := strings.Fields(afterLabel)[0]
	proctest.Eventually(t, "the demo session to connect", 30*time.Second, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw+"/sessions/demo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return strings.Contains(b.String(), `"status":"connected"`), b.String()
	})

	// Ctrl-C: the terminal sends SIGINT to the whole foreground group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if err != nil {
			t.Errorf("dev.sh exited with %v after Ctrl-C, want 0; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev.sh still runs 30 s after Ctrl-C")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, addr := range []string{gw, lv, wactl} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after Ctrl-C", addr)
		}
	}
}
