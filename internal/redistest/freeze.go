package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// FreezingProxy is a TCP proxy to a Redis that forwards both ways until frozen, then swallows
// everything it reads: a Redis that stops answering (a network cut, a paused server, a stuck
// failover) on the connections a client already holds, while other clients still reach it.
type FreezingProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
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
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(u, c) }()
			go func() { defer p.wg.Done(); p.pipe(c, u) }()
		}
	}()
	tb.Cleanup(func() {
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

// Addr is the proxy's host:port, to connect to instead of upstream.
func (p *FreezingProxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops forwarding: from now on what either side sends is read and dropped, and the
// connections stay open.
func (p *FreezingProxy) Freeze() { p.frozen.Store(true) }

func (p *FreezingProxy) pipe(dst io.Writer, src io.Reader) {
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
