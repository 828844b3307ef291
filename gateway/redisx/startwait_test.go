package redisx

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// lateRedis reserves a loopback port and starts a miniredis on it only after delay: until then
// a dial is refused, as for a Redis that is restarting or not up yet after a reboot.
func lateRedis(t *testing.T, delay time.Duration) (url string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	m := miniredis.NewMiniRedis()
	var wg sync.WaitGroup
	wg.Add(1)
	timer := time.AfterFunc(delay, func() {
		defer wg.Done()
		if err := m.StartAddr(addr); err != nil {
			t.Errorf("start the late miniredis on %s: %v", addr, err)
		}
	})
	t.Cleanup(func() {
		if timer.Stop() {
			wg.Done()
		}
		wg.Wait()
		m.Close()
	})
	return "redis://" + addr
}

// syncBuffer is a log sink safe for the concurrent writes of a test and the code under test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenWaitsForARedisThatAnswersOnlyAfterAFewSeconds(t *testing.T) {
	url := lateRedis(t, 2*time.Second)
	var logs syncBuffer
	c, err := Open(context.Background(), url, 30*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open with a 30 s start wait failed for a Redis up after 2 s: %v\nlog:\n%s", err, logs.String())
	}
	defer c.Close()
	if reason, err := c.Ready(context.Background()); err != nil || reason != "redis: ok" {
		t.Fatalf("Ready = %q, %v", reason, err)
	}
	out := logs.String()
	if n := strings.Count(out, "not reachable at start, waiting for it"); n < 1 {
		t.Errorf("no failed attempt logged while Redis was down:\n%s", out)
	}
	if !strings.Contains(out, "answered after waiting") {
		t.Errorf("the log does not say Redis answered after a wait:\n%s", out)
	}
}

func TestOpenWithoutAStartWaitFailsOnTheFirstUnansweredPing(t *testing.T) {
	url := lateRedis(t, 2*time.Second)
	if c, err := Open(context.Background(), url, 0, slog.New(slog.DiscardHandler)); err == nil {
		c.Close()
		t.Fatal("Open with no start wait succeeded before the Redis was up")
	}
}

func TestOpenGivesUpWhenRedisStaysDownPastTheStartWait(t *testing.T) {
	url := lateRedis(t, time.Hour) // never up within the test
	var logs syncBuffer
	start := time.Now()
	_, err := Open(context.Background(), url, 4*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		t.Fatal("Open succeeded although Redis never answered")
	}
	if !strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %q does not say how many attempts were made", err)
	}
	if n := strings.Count(logs.String(), "waiting for it"); n < 1 {
		t.Errorf("no wait logged:\n%s", logs.String())
	}
	if took := time.Since(start); took > 4*time.Second+pingTimeout {
		t.Errorf("Open gave up after %s, past its 4 s start wait", took)
	}
}

func TestOpenStopsWaitingWhenItsContextEnds(t *testing.T) {
	url := lateRedis(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, url, time.Minute, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Open succeeded although Redis never answered")
	} else if ctx.Err() == nil {
		t.Fatalf("Open returned %v before its context ended", err)
	}
}
