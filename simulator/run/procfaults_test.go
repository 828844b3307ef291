package run

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestARestartedChildKeepsItsCommandAndAppendsToItsLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	c, err := startChild("echo", "/bin/sh", []string{"-c", "echo run $MARK"}, []string{"MARK=first"}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	<-c.done
	nc, err := restartChild(c)
	if err != nil {
		t.Fatal(err)
	}
	<-nc.done
	b, _ := os.ReadFile(logPath)
	if got := strings.Count(string(b), "run first"); got != 2 || !strings.Contains(string(b), "restarting echo") {
		t.Fatalf("log after a restart:\n%s", b)
	}
}

// redisRunner starts a real redis-server the way a run does and returns a runner around it.
func redisRunner(t *testing.T) *runner {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is required in CI")
		}
		t.Skip("no redis-server")
	}
	dir := t.TempDir()
	c, url, _, err := startRedis(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{log: slog.New(slog.DiscardHandler), hc: &http.Client{Timeout: time.Second},
		w: &world{redis: c, redisURL: url, gatewayURL: "http://127.0.0.1:1"}}
	t.Cleanup(func() { _ = r.redisChild().stop(5 * time.Second) })
	return r
}

func TestRedisRestartedOnItsAOFKeepsEveryAcknowledgedWrite(t *testing.T) {
	r := redisRunner(t)
	ctx := context.Background()
	if err := r.enableAOF(ctx); err != nil {
		t.Fatal(err)
	}
	rdb, err := r.redisClient()
	if err != nil {
		t.Fatal(err)
	}
	// The fault runs with appendfsync everysec, which may lose the last second of writes when
	// the write to the AOF is delayed on a busy disk. This test checks the restart mechanics, so
	// it asks for every write to reach the AOF before Redis answers.
	if err := rdb.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := rdb.XAdd(ctx, xadd(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Close()
	var w FaultWindow
	heal, err := r.killRedis(ctx, false, &w)
	if err != nil {
		t.Fatal(err)
	}
	if err := heal(ctx); err != nil {
		t.Fatal(err)
	}
	rdb, _ = r.redisClient()
	defer rdb.Close()
	if n, err := rdb.XLen(ctx, "wagate:outbox").Result(); err != nil || n != 100 {
		t.Fatalf("after a SIGKILL and restart on the AOF: %d entries (%v), want 100; %s", n, err, w.Detail)
	}
	if w.End.Before(w.Start) || !strings.Contains(w.Detail, "AOF on") {
		t.Fatalf("window %+v", w)
	}
}

func TestRedisLostStartsEmpty(t *testing.T) {
	r := redisRunner(t)
	ctx := context.Background()
	if err := r.enableAOF(ctx); err != nil {
		t.Fatal(err)
	}
	rdb, _ := r.redisClient()
	for i := range 10 {
		if err := rdb.XAdd(ctx, xadd(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Close()
	var w FaultWindow
	heal, err := r.killRedis(ctx, true, &w)
	if err != nil {
		t.Fatal(err)
	}
	if err := heal(ctx); err != nil {
		t.Fatal(err)
	}
	rdb, _ = r.redisClient()
	defer rdb.Close()
	if n, _ := rdb.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("%d keys after losing Redis, want 0 (%s)", n, w.Detail)
	}
}

func xadd(i int) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: "wagate:outbox", Values: []any{"eid", i}}
}
