package run

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"wagate/internal/logtail"
)

// child is a process the simulator started; stop ends it (SIGTERM, then SIGKILL after grace).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// startChild starts bin with args and env (added to a minimal environment), logging to logPath.
// The child gets its own process group (Ctrl-C reaches only the simulator, which stops children
// in order) and is killed by the kernel if the simulator dies.
func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	return startChildAs(name, bin, args, env, logPath, nil)
}

// startChildAs is startChild with the child's user and group (cred; nil: the simulator's).
func startChildAs(name, bin string, args, env []string, logPath string, cred *syscall.Credential) (*child, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Setpgid, not Setsid: a child stays in the simulator's session, the kernel's scheduling group
	// (autogroup) in which the world's servers' nice puts them below the load generator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	pinChild(name, cmd.Process.Pid)
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	return c, nil
}

// baseEnv passes on only what a child needs from the simulator's environment (no secrets of the
// caller leak into the system under test).
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Pid is the child's process id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace before SIGKILL; it returns the child's exit error.
func (c *child) stop(grace time.Duration) error { return c.stopWith(syscall.SIGTERM, grace) }

// stopWith is stop with another signal than SIGTERM (PostgreSQL's fast shutdown is SIGINT).
func (c *child) stopWith(sig syscall.Signal, grace time.Duration) error {
	if c.exited() {
		return c.err
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("%s did not stop within %s; killed", c.name, grace)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) && ee.ProcessState != nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == sig {
			return nil
		}
	}
	return c.err
}

// tail returns the last n lines of the child's log, for error messages.
func (c *child) tail(n int) string {
	return strings.Join(logtail.Last(c.log.Name(), n), "\n")
}

// freePort returns a free loopback TCP address.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitFor polls check until it succeeds, the child exits, or timeout passes.
func waitFor(ctx context.Context, c *child, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited during start-up (%v); last log lines:\n%s", c.name, c.err, c.tail(15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if c != nil {
		return fmt.Errorf("%s not ready after %s: %v; last log lines:\n%s", c.name, timeout, last, c.tail(15))
	}
	return fmt.Errorf("not ready after %s: %w", timeout, last)
}

// findBinary looks for name in binDir, next to the simulator's own executable, then in PATH.
func findBinary(binDir, name string) (string, error) {
	var tried []string
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if isExec(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if isExec(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s binary (tried %s and PATH); run `make build` or pass -bin DIR", name, strings.Join(tried, ", "))
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// startRedis starts redis-server on a free port without persistence, when installed.
func startRedis(ctx context.Context, dir string) (*child, string, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", "", err
	}
	addr, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	c, err := startChild("redis-server", bin, []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, nil, filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, "", "", err
	}
	err = waitFor(ctx, c, 10*time.Second, func(ctx context.Context) error {
		d := net.Dialer{}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+PONG") {
			return fmt.Errorf("redis answered %q: %v", line, err)
		}
		return nil
	})
	if err != nil {
		c.stop(time.Second)
		return nil, "", "", err
	}
	version := "redis-server"
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		f := strings.Fields(string(out))
		for _, x := range f {
			if strings.HasPrefix(x, "v=") {
				version = "redis-server " + strings.TrimPrefix(x, "v=")
			}
		}
	}
	return c, "redis://" + addr + "/0", version, nil
}
