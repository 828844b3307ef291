package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wagate/internal/laravelup"
	"wagate/internal/procstat"
	"wagate/simulator/scenario"
)

// realLaravel is the reference Laravel app (laravel/) started for one run by its own scripts
// (internal/laravelup): private php-fpm and nginx masters on a free loopback port, under a
// temporary directory of the run.
type realLaravel struct {
	inst *laravelup.Instance
	dir  string // the temporary directory holding the runtime directory (removed by stop)

	url, token, secret, db, version string
	workers                         int
	pids                            []int // the php-fpm and nginx masters, read once at start
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

// startRealLaravel starts the app with up.sh (which installs Debian's packages when missing). Its
// output goes to logPath.
func startRealLaravel(ctx context.Context, l scenario.Laravel, binDir, logPath string) (*realLaravel, error) {
	app, err := findLaravelApp(binDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wagate-sim-laravel-")
	if err != nil {
		return nil, err
	}
	r := &realLaravel{dir: dir}
	// PHP-FPM and nginx workers run as www-data when the simulator runs as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		r.stop()
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		r.stop()
		return nil, err
	}
	_, portText, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portText)
	logf, err := os.Create(logPath)
	if err != nil {
		r.stop()
		return nil, err
	}
	defer logf.Close()
	given := l.Capacity.Given()                              // the real app's settings the scenario gives; zero: up.sh's defaults
	upCtx, cancel := context.WithTimeout(ctx, 5*time.Minute) // a first run installs packages
	defer cancel()
	r.inst, err = laravelup.Start(upCtx, laravelup.Options{
		Scripts: filepath.Join(app, "scripts"), Dir: filepath.Join(dir, "rt"), Port: port,
		Workers: given.Workers, Backlog: given.Backlog, ProxyTimeout: given.ProxyTimeout,
		Token: randomToken(), Secret: randomToken(), BaseEnv: baseEnv(), Output: logf,
	})
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("laravel.real: %w; see %s", err, logPath)
	}
	e := r.inst.Env
	r.url, r.token, r.secret, r.db, r.version = e[laravelup.KeyURL], e[laravelup.KeyToken], e[laravelup.KeySecret], e[laravelup.KeyDB], e[laravelup.KeyVersion]
	r.workers, _ = strconv.Atoi(e[laravelup.KeyWorkers])
	r.pids = r.inst.Pids()
	return r, nil
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

// stop runs down.sh and removes the run's directory. Safe to call more than once.
func (r *realLaravel) stop() {
	if r.inst != nil {
		_ = r.inst.Stop()
	}
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
		r.dir = ""
	}
}
