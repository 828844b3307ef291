package batch_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/fakelaravel"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// Environment of the child process TestSIGKILLChild runs as.
const (
	envChildMode  = "WAGATE_SIGKILL_CHILD" // "feed" or "drain"
	envRedisAddr  = "WAGATE_SIGKILL_REDIS"
	envLaravelURL = "WAGATE_SIGKILL_LARAVEL"
)

// TestSIGKILLChild is not a test: it is the "gateway" process the SIGKILL test starts. In feed
// mode it delivers the whole history while Laravel is down, prints "accepted", and keeps its
// flusher retrying until it is killed. In drain mode it recovers its pending entries, delivers
// everything and exits.
func TestSIGKILLChild(t *testing.T) {
	mode := os.Getenv(envChildMode)
	if mode == "" {
		t.Skip("helper process of TestASIGKILLedGatewayLosesNothing")
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(envRedisAddr), Protocol: 2})
	client, err := laravel.NewClient(laravel.ClientConfig{BaseURL: os.Getenv(envLaravelURL), Token: token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ob, err := outbox.New(ctx, rdb, outbox.Config{Consumer: "gw-kill", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := batch.New(batch.Options{Outbox: ob, Sender: client, Logger: log, Config: batch.Config{
		BatchInterval: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Backoff: batch.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
		Breaker: batch.BreakerConfig{Failures: 3, OpenFor: 30 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "feed":
		for _, ev := range generate(25, 20, 3).events {
			if err := d.Deliver(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Println("accepted")
		select {} // retrying against a down Laravel until SIGKILL
	case "drain":
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := d.Snapshot(ctx)
			if m.Pending == 0 && m.InFlight == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not drained: %+v", m)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		fmt.Println("drained")
	}
}

func runChild(t *testing.T, mode, redisAddr, laravelURL string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildMode+"="+mode, envRedisAddr+"="+redisAddr, envLaravelURL+"="+laravelURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func waitLine(t *testing.T, sc *bufio.Scanner, want string) {
	t.Helper()
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == want {
			return
		}
	}
	t.Fatalf("child exited before printing %q", want)
}

// A gateway process keeps accepting events while Laravel is down, is killed with SIGKILL mid-retry
// (and Redis is killed too, restarting from its AOF); a restarted gateway recovers the pending
// entries once Laravel is back, and Laravel ends with the last version of every session's QR and
// status: nothing lost, nothing stale.
func TestASIGKILLedGatewayLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	rs := redistest.StartServer(t, redistest.Options{AppendOnly: true})
	srv, _ := startLaravel(t, fakelaravel.Faults{DownWindows: []fakelaravel.DownWindow{{StartAfterMS: 0, DurationMS: 3_600_000}}})
	laravelURL := laravelBaseURL(t, srv)

	feed, out := runChild(t, "feed", rs.Addr, laravelURL)
	waitLine(t, out, "accepted")
	if err := feed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = feed.Wait()
	if err := rs.Restart(); err != nil { // SIGKILL and restart Redis too: AOF keeps the outbox
		t.Fatal(err)
	}
	if err := srv.SetFaults(fakelaravel.Faults{}); err != nil {
		t.Fatal(err)
	}
	_, out = runChild(t, "drain", rs.Addr, laravelURL)
	waitLine(t, out, "drained")
	assertFinalState(t, srv, generate(25, 20, 3))
}
