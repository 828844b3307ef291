// Package laravelup starts, describes and stops the reference Laravel app (laravel/) the way
// `make laravel-up` does, through laravel/scripts/up.sh and down.sh: private php-fpm and nginx
// masters on loopback under a runtime directory. It serves the tools that run a private instance
// (the simulator's laravel.real, the tests of laravel/) and those that read an instance made by
// `make laravel-up` (calibrate-laravel): all of them read up.sh's env file and pid files here.
package laravelup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Keys of the env file up.sh writes into its runtime directory.
const (
	KeyURL     = "WAGATE_LARAVEL_URL"
	KeyToken   = "WAGATE_LARAVEL_TOKEN"
	KeySecret  = "WAGATE_LARAVEL_SECRET"
	KeyWorkers = "WAGATE_LARAVEL_WORKERS"
	KeyDir     = "WAGATE_LARAVEL_DIR"
	KeyDB      = "WAGATE_LARAVEL_DB"
	KeyVersion = "WAGATE_LARAVEL_VERSION"
)

// ReadEnv reads an env file of up.sh (KEY=value lines; blank and # lines ignored).
func ReadEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s (run `make laravel-up` first): %w", path, err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// MasterPids returns the pids of the php-fpm and nginx masters running under the runtime
// directory dir (from their pid files; a missing or unreadable file is skipped).
func MasterPids(dir string) []int {
	var pids []int
	for _, name := range []string{"php-fpm.pid", "nginx.pid"} {
		b, err := os.ReadFile(filepath.Join(dir, "run", name))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Options configure Start. Zero values take up.sh's defaults.
type Options struct {
	// Scripts is the laravel/scripts folder holding up.sh and down.sh (required).
	Scripts string
	// Dir is the runtime directory; it must not exist yet or be empty, and Stop removes it.
	Dir string
	// Port is nginx's loopback port (required: pick a free one).
	Port int
	// Workers, Backlog and ProxyTimeout are PHP-FPM's pm.max_children and listen.backlog and
	// nginx's fastcgi_read_timeout (rounded to seconds).
	Workers, Backlog int
	ProxyTimeout     time.Duration
	// Token and Secret are what the app accepts; Previous* the old pair during a rotation.
	Token, Secret                 string
	PreviousToken, PreviousSecret string
	// BaseEnv is the environment up.sh runs with (default: this process's).
	BaseEnv []string
	// Output receives up.sh's output (default: discarded).
	Output io.Writer
}

// Instance is a running reference app started by Start.
type Instance struct {
	// Env is what up.sh wrote to its env file: URL, token, secret, workers, DB, version, ...
	Env map[string]string

	scripts string
	dir     string
	env     []string
}

// Start runs up.sh (it installs Debian's packages when missing, so ctx should allow minutes) and
// reads back its env file. On error nothing stays running.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if o.Scripts == "" || o.Dir == "" || o.Port <= 0 {
		return nil, fmt.Errorf("laravelup: scripts, dir and port are required")
	}
	if o.BaseEnv == nil {
		o.BaseEnv = os.Environ()
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	env := append(append([]string(nil), o.BaseEnv...),
		KeyDir+"="+o.Dir,
		"WAGATE_LARAVEL_PORT="+strconv.Itoa(o.Port),
		KeyToken+"="+o.Token,
		KeySecret+"="+o.Secret,
		"WAGATE_LARAVEL_TOKEN_PREVIOUS="+o.PreviousToken,
		"WAGATE_LARAVEL_SECRET_PREVIOUS="+o.PreviousSecret,
	)
	if o.Workers > 0 {
		env = append(env, KeyWorkers+"="+strconv.Itoa(o.Workers))
	}
	if o.Backlog > 0 {
		env = append(env, "WAGATE_LARAVEL_BACKLOG="+strconv.Itoa(o.Backlog))
	}
	if o.ProxyTimeout > 0 {
		env = append(env, "WAGATE_LARAVEL_PROXY_TIMEOUT="+strconv.Itoa(max(1, int(o.ProxyTimeout.Round(time.Second).Seconds()))))
	}
	inst := &Instance{scripts: o.Scripts, dir: o.Dir, env: env}
	up := exec.CommandContext(ctx, filepath.Join(o.Scripts, "up.sh"))
	up.Env, up.Stdout, up.Stderr = env, o.Output, o.Output
	if err := up.Run(); err != nil {
		_ = inst.Stop()
		return nil, fmt.Errorf("laravelup: %s: %w", filepath.Join(o.Scripts, "up.sh"), err)
	}
	var err error
	if inst.Env, err = ReadEnv(filepath.Join(o.Dir, "env")); err != nil {
		_ = inst.Stop()
		return nil, fmt.Errorf("laravelup: %w", err)
	}
	if inst.Env[KeyURL] == "" || inst.Env[KeyToken] == "" || inst.Env[KeyDB] == "" {
		_ = inst.Stop()
		return nil, fmt.Errorf("laravelup: %s lacks %s, %s or %s", filepath.Join(o.Dir, "env"), KeyURL, KeyToken, KeyDB)
	}
	return inst, nil
}

// Pids returns the pids of the instance's php-fpm and nginx masters.
func (i *Instance) Pids() []int { return MasterPids(i.dir) }

// Stop runs down.sh and removes the runtime directory. Safe to call more than once.
func (i *Instance) Stop() error {
	if i.dir == "" {
		return nil
	}
	down := exec.Command(filepath.Join(i.scripts, "down.sh"))
	down.Env = i.env
	msg, err := down.CombinedOutput()
	_ = os.RemoveAll(i.dir)
	i.dir = ""
	if err != nil {
		return fmt.Errorf("laravelup: down.sh: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	return nil
}
