package fakelaravel

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// switchListener is a listener that can go down: while down its socket is closed (connections
// are refused by the kernel) and every connection it accepted is closed; when it comes back up it
// listens again on the same address. Accept blocks while it is down.
type switchListener struct {
	network, addr string

	mu     sync.Mutex
	inner  net.Listener // nil while down
	wake   chan struct{}
	closed bool
	conns  map[*trackedConn]struct{}
}

func newSwitchListener(ln net.Listener) *switchListener {
	return &switchListener{
		network: ln.Addr().Network(), addr: ln.Addr().String(),
		inner: ln, wake: make(chan struct{}), conns: map[*trackedConn]struct{}{},
	}
}

// Accept waits for the next connection, across down windows.
func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		inner, wake := l.inner, l.wake
		l.mu.Unlock()
		if inner == nil {
			<-wake
			continue
		}
		c, err := inner.Accept()
		l.mu.Lock()
		if err != nil {
			replaced := l.inner != inner && !l.closed
			l.mu.Unlock()
			if replaced {
				continue // closed by a down window, not by Close
			}
			return nil, err
		}
		if l.inner != inner { // went down between Accept and here
			l.mu.Unlock()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, l: l}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// setDown closes or reopens the socket.
func (l *switchListener) setDown(down bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	switch {
	case down && l.inner != nil:
		err := l.inner.Close()
		l.inner = nil
		for c := range l.conns {
			c.Conn.Close()
			delete(l.conns, c)
		}
		if err != nil {
			return fmt.Errorf("close listener: %w", err)
		}
	case !down && l.inner == nil:
		ln, err := net.Listen(l.network, l.addr)
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", l.addr, err)
		}
		l.inner = ln
		close(l.wake)
		l.wake = make(chan struct{})
	}
	return nil
}

// Close closes the socket; Accept returns net.ErrClosed.
func (l *switchListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.wake)
	if l.inner != nil {
		err := l.inner.Close()
		l.inner = nil
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

// Addr is the address listened on, also while down.
func (l *switchListener) Addr() net.Addr {
	a, err := net.ResolveTCPAddr(l.network, l.addr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return a
}

type trackedConn struct {
	net.Conn
	l    *switchListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
