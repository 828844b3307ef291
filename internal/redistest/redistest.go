// Package redistest gives tests a Redis to talk to: a real redis-server started on a free loopback
// port (skipped when redis-server is not installed, unless $CI is set, in which case the test
// fails), or an in-process miniredis. Each server lives as long as the test that started it.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is a Redis a test runs against.
type Backend struct {
	// Name is "miniredis" or "redis-server".
	Name string
	// Addr is host:port of the server.
	Addr string
	// Mini is the miniredis instance, nil for a real redis-server.
	Mini *miniredis.Miniredis
	// Real is the redis-server process, nil for miniredis.
	Real *Server
}

// URL returns a redis:// URL of the backend.
func (b *Backend) URL() string { return "redis://" + b.Addr }

// Client returns a go-redis client for the backend, closed when the test ends.
func (b *Backend) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: b.Addr, Protocol: 2})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Server is a redis-server process started for one test.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Dir holds the server's data files (AOF when persistence is on).
	Dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Options tune StartServer.
type Options struct {
	// AppendOnly turns on AOF with appendfsync always, so a restarted server keeps every write.
	AppendOnly bool
}

// Mini starts a miniredis for the test.
func Mini(tb testing.TB) *Backend {
	tb.Helper()
	m := miniredis.RunT(tb)
	return &Backend{Name: "miniredis", Addr: m.Addr(), Mini: m}
}

// Real starts a redis-server for the test, or skips it (fails under $CI) when none is installed.
func Real(tb testing.TB) *Backend {
	tb.Helper()
	s := StartServer(tb, Options{})
	return &Backend{Name: "redis-server", Addr: s.Addr, Real: s}
}

// Each runs fn as a subtest against miniredis and against a real redis-server.
func Each(t *testing.T, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { fn(t, Real(t)) })
}

// EachBenchmark runs fn as a sub-benchmark against miniredis and against a real redis-server:
// Each for benchmarks.
func EachBenchmark(b *testing.B, fn func(b *testing.B, be *Backend)) {
	b.Helper()
	b.Run("miniredis", func(b *testing.B) { fn(b, Mini(b)) })
	b.Run("redis-server", func(b *testing.B) { fn(b, Real(b)) })
}

// StartServer starts redis-server on a free loopback port and stops it when the test ends. It skips
// the test when redis-server is not installed, unless $CI is set, in which case it fails.
func StartServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redistest: redis-server is required in CI: %v", err)
		}
		tb.Skipf("redistest: redis-server not installed (%v); set $CI to make this a failure", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	dir := tb.TempDir()
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
	}
	if opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, args: append([]string{bin}, args...)}
	if err := s.start(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Dir = s.Dir
	logf, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited at start; log: %s", readLog(s.Dir))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server did not answer PING within 10s; log: %s", readLog(s.Dir))
		}
	}
}

// Stop kills the server (SIGKILL) and waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port and data directory.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected PING answer %q", line)
	}
	return nil
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Flush empties the backend's databases (between phases of one test).
func (b *Backend) Flush(ctx context.Context, c *redis.Client) error {
	return c.FlushAll(ctx).Err()
}
