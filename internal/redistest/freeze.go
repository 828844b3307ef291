package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FreezingProxy is a TCP proxy to a Redis that forwards both ways until frozen, then swallows
// everything it reads: a Redis that stops answering (a network cut, a paused server, a stuck
// failover) on the connections a client already holds, while other clients still reach it.
// Delay makes every round trip slow instead (a client whose replies wait behind a busy CPU).
type FreezingProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	delay  atomic.Int64 // nanoseconds each chunk a client sends waits before it goes on
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool // the test's cleanup ran: a connection accepted meanwhile is closed at once
}

// StartFreezingProxy listens on a free loopback port and forwards every connection to upstream
// (host:port); the test's cleanup closes the listener and every connection.
func StartFreezingProxy(tb testing.TB, upstream string) *FreezingProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FreezingProxy{ln: ln}
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
			if p.closed {
				p.mu.Unlock()
				_ = c.Close()
				_ = u.Close()
				return
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(u, c, true) }()
			go func() { defer p.wg.Done(); p.pipe(c, u, false) }()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port, to connect to instead of upstream.
func (p *FreezingProxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops forwarding: from now on what either side sends is read and dropped, and the
// connections stay open.
func (p *FreezingProxy) Freeze() { p.frozen.Store(true) }

// Delay holds every chunk a client sends for d before forwarding it, from now on: each
// connection's round trips take at least d, and a connection's requests queue behind each other
// as they would behind a slow reply.
func (p *FreezingProxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// pipe copies src to dst until either fails; toRedis says src is a client (Delay applies).
func (p *FreezingProxy) pipe(dst io.Writer, src io.Reader, toRedis bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.frozen.Load() {
			continue
		}
		if d := time.Duration(p.delay.Load()); toRedis && d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}
