package redisx

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wagate/internal/redistest"
)

// freezingProxy forwards to upstream until frozen, then swallows everything: a Redis that hangs
// (paused, a stuck failover) on a connection the client already holds.
type freezingProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezingProxy(t *testing.T, upstream string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(u, c) }()
			go func() { defer p.wg.Done(); p.pipe(c, u) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezingProxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// Issue 19 #11: go-redis ignores a caller's deadline on the socket unless told otherwise, so an
// append deadline or a write-through bound waited out the client's own 3 s read timeout instead.
func TestACallersDeadlineCutsACallToAHungRedisShort(t *testing.T) {
	b := redistest.Mini(t)
	p := startFreezingProxy(t, b.Addr)
	c, err := Open(context.Background(), "redis://"+p.ln.Addr().String(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.frozen.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Client.Get(ctx, "k").Err()
	took := time.Since(start)
	if err == nil {
		t.Fatal("a hung Redis answered")
	}
	// The client's own read timeout is 3 s: a call that lasts more than a second ignored the
	// caller's 100 ms deadline.
	if took > time.Second {
		t.Fatalf("the call to a hung Redis took %s with a 100 ms deadline", took)
	}
}
