package app

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// With WAGATE_PPROF_ADDR set, the mutex and block profiles are sampled (Go records neither by
// default, so an operator asking for them would get empty profiles): a goroutine blocked on a
// channel shows in /debug/pprof/block.
func TestProfilingSamplesTheMutexAndBlockProfiles(t *testing.T) {
	t.Cleanup(func() {
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := &App{log: slog.New(slog.DiscardHandler)}
	if err := a.startPprof(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.pprof.Close() })
	if got := runtime.SetMutexProfileFraction(-1); got != pprofMutexFraction {
		t.Errorf("mutex profile fraction %d, want %d", got, pprofMutexFraction)
	}

	ch := make(chan struct{})
	go func() { time.Sleep(20 * time.Millisecond); close(ch) }()
	blockedOnAChannel(ch)

	resp, err := http.Get("http://" + addr + "/debug/pprof/block?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "blockedOnAChannel") {
		t.Fatalf("block profile (%d) does not show the blocked goroutine:\n%.600s", resp.StatusCode, body)
	}
}

//go:noinline
func blockedOnAChannel(ch chan struct{}) { <-ch }
