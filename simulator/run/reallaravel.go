package run

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wagate/internal/procstat"
	"wagate/simulator/scenario"
)

// realLaravel is the reference Laravel app (laravel/) started for one run by its own scripts:
// private php-fpm and nginx masters on a free loopback port, under a runtime directory of the run.
type realLaravel struct {
	scripts string   // laravel/scripts
	env     []string // the settings up.sh and down.sh ran with
	dir     string   // the runtime directory (removed by stop)

	url, token, secret, db, version string
	workers                         int
	pids                            []int // the php-fpm and nginx masters
}

// findLaravelApp locates the laravel/ folder of the repository: next to the binaries' folder (bin/
// ../laravel), next to this executable's folder, or in the working directory or one above it.
func findLaravelApp(binDir string) (string, error) {
	var candidates []string
	if binDir != "" {
		candidates = append(candidates, filepath.Join(binDir, "..", "laravel"))
	}
	if self, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(self), "..", "laravel"))
	}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, "laravel"), filepath.Join(wd, "..", "laravel"))
	}
	for _, c := range candidates {
		if isExec(filepath.Join(c, "scripts", "up.sh")) {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("laravel.real: the reference app (laravel/scripts/up.sh) is not in any of %s; run from the repository", strings.Join(candidates, ", "))
}

// startRealLaravel starts the app with up.sh (which installs Debian's packages when missing) and
// reads back what it wrote to its env file. Its output goes to logPath.
func startRealLaravel(ctx context.Context, l scenario.Laravel, binDir, logPath string) (*realLaravel, error) {
	app, err := findLaravelApp(binDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wagate-sim-laravel-")
	if err != nil {
		return nil, err
	}
	// PHP-FPM and nginx workers run as www-data when the simulator runs as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, portNum, _ := strings.Cut(port, ":")
	r := &realLaravel{scripts: filepath.Join(app, "scripts"), dir: dir}
	r.env = append(baseEnv(),
		"WAGATE_LARAVEL_DIR="+filepath.Join(dir, "rt"),
		"WAGATE_LARAVEL_PORT="+portNum,
		"WAGATE_LARAVEL_TOKEN="+randomToken(),
		"WAGATE_LARAVEL_SECRET="+randomToken(),
	)
	if l.Workers > 0 {
		r.env = append(r.env, "WAGATE_LARAVEL_WORKERS="+strconv.Itoa(l.Workers))
	}
	if l.Backlog > 0 {
		r.env = append(r.env, "WAGATE_LARAVEL_BACKLOG="+strconv.Itoa(l.Backlog))
	}
	if l.ProxyTimeout > 0 {
		r.env = append(r.env, "WAGATE_LARAVEL_PROXY_TIMEOUT="+strconv.Itoa(max(1, int(l.ProxyTimeout.Std().Round(time.Second).Seconds()))))
	}
	logf, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	upCtx, cancel := context.WithTimeout(ctx, 5*time.Minute) // a first run installs packages
	defer cancel()
	up := exec.CommandContext(upCtx, filepath.Join(r.scripts, "up.sh"))
	up.Env, up.Stdout, up.Stderr = r.env, logf, logf
	if err := up.Run(); err != nil {
		r.stop()
		return nil, fmt.Errorf("laravel.real: %s failed (%w); see %s", filepath.Join(r.scripts, "up.sh"), err, logPath)
	}
	if err := r.readEnv(filepath.Join(dir, "rt", "env")); err != nil {
		r.stop()
		return nil, err
	}
	for _, name := range []string{"php-fpm.pid", "nginx.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, "rt", "run", name))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			r.pids = append(r.pids, pid)
		}
	}
	return r, nil
}

// readEnv reads up.sh's env file (KEY=value lines).
func (r *realLaravel) readEnv(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("laravel.real: read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "WAGATE_LARAVEL_URL":
			r.url = v
		case "WAGATE_LARAVEL_TOKEN":
			r.token = v
		case "WAGATE_LARAVEL_SECRET":
			r.secret = v
		case "WAGATE_LARAVEL_DB":
			r.db = v
		case "WAGATE_LARAVEL_VERSION":
			r.version = v
		case "WAGATE_LARAVEL_WORKERS":
			r.workers, _ = strconv.Atoi(v)
		}
	}
	if r.url == "" || r.token == "" || r.db == "" {
		return fmt.Errorf("laravel.real: %s lacks WAGATE_LARAVEL_URL, _TOKEN or _DB", path)
	}
	return nil
}

// cpuTime is the CPU time php-fpm and nginx (masters and workers) have used so far.
func (r *realLaravel) cpuTime() (time.Duration, error) {
	if len(r.pids) == 0 {
		return 0, fmt.Errorf("laravel.real: no php-fpm or nginx pid")
	}
	return procstat.FS{}.TreeCPU(r.pids)
}

// description names what ran, for the report; "" for a nil realLaravel (the model ran).
func (r *realLaravel) description() string {
	if r == nil {
		return ""
	}
	v := "Laravel " + r.version
	if r.version == "" {
		v = "Laravel"
	}
	return fmt.Sprintf("%s, reference app laravel/ on php-fpm (%d workers) and nginx, SQLite", v, r.workers)
}

// stop runs down.sh and removes the runtime directory. Safe to call more than once.
func (r *realLaravel) stop() {
	if r.dir == "" {
		return
	}
	down := exec.Command(filepath.Join(r.scripts, "down.sh"))
	down.Env = r.env
	_ = down.Run()
	_ = os.RemoveAll(r.dir)
	r.dir = ""
}
