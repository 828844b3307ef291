// Package http1 serves the gateway's API over HTTP/1.1 for the price of its polled reads: it
// answers a kept-alive connection's plain GET requests itself, on the connection's one goroutine,
// with the request and response objects reused from one request to the next, and hands any other
// connection, bytes unread, to a net/http server that then owns it for good.
//
// Why: at the seed's 100 users the status polls are ~1,000 requests/s of a few hundred bytes, and
// net/http's own work per request (a second goroutine watching the connection while the handler
// runs, a context, header maps and buffers allocated for each request) cost more CPU than the
// gateway's whole handler (issue 18: a bare net/http server alone spent 5.7% of a core on that
// workload). The lean path keeps what costs the kernel (one read, one write) and drops the rest.
//
// What it serves: "GET <path> HTTP/1.1" with a valid Host and no header that changes how a request
// or the connection is read (Content-Length, Transfer-Encoding, Expect, Connection, Upgrade,
// Pragma, Trailer, TE). net/http reads such a request to the same *http.Request fields (a
// differential fuzz test holds parseHead to that). Every other request (a body, HEAD, HTTP/1.0, a
// malformed line, a head larger than the read buffer) moves its connection to net/http before a
// byte of it is consumed, so net/http answers it, or its error, exactly as it always did.
//
// What differs from net/http on the lean path: a request's context ends when its connection does,
// not when the client goes away mid-request (nothing reads the connection while the handler
// runs); handlers on this API answer in milliseconds and carry their own timeouts. And the
// *http.Request, its Header and the ResponseWriter are reused for a later request (of any
// connection) once the handler returns: a handler must not keep them past its return, which the
// ResponseWriter's contract already says and this API's handlers never do.
package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// readBufferSize is the read buffer of a lean connection: a request head that does not fit goes
// to net/http (which allows up to the server's MaxHeaderBytes).
const readBufferSize = 4 << 10

// Server serves HTTP/1.1 on a listener: the lean path for plain GETs, Fallback for the rest.
type Server struct {
	// Fallback serves every connection the lean path hands over. Its Handler also serves the lean
	// path's requests; its ReadHeaderTimeout, WriteTimeout and IdleTimeout bound the lean
	// connections too, and its ErrorLog gets the panics of handlers on the lean path.
	Fallback *http.Server
	// Logger reports what the lean path drops (accept errors are retried); nil: slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	listener net.Listener
	handoff  *handoffListener
	wg       sync.WaitGroup // the lean connections' goroutines
}

// ErrServerClosed is what Serve returns after Shutdown (the same value as net/http's).
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln until Shutdown or a permanent accept error; it closes ln when
// it returns, as net/http's Serve does.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if s.Fallback == nil || s.Fallback.Handler == nil {
		return errors.New("http1: Server.Fallback and its Handler are required")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listener = ln
	s.handoff = newHandoffListener(ln.Addr())
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.mu.Unlock()
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- s.Fallback.Serve(s.handoff) }()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if retryable(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("http1: accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			_ = s.Fallback.Close()
			<-fallbackDone
			return fmt.Errorf("http1: accept: %w", err)
		}
		delay = 0
		lc := s.track(c)
		if lc == nil {
			_ = c.Close()
			continue
		}
		go lc.serve()
	}
}

// retryable reports an accept error worth retrying (a timeout, or EMFILE and the like, which
// say they are temporary), as net/http does.
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	te, ok := err.(interface{ Temporary() bool })
	return ok && te.Temporary()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// logf logs what net/http would have logged to its ErrorLog (a handler's panic, an invalid
// Content-Length): there, or as an error on Logger when the fallback has none.
func (s *Server) logf(format string, args ...any) {
	if l := s.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	s.logger().Error(fmt.Sprintf(format, args...))
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(c net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	lc := newConn(s, c)
	s.conns[lc] = struct{}{}
	s.wg.Add(1)
	return lc
}

func (s *Server) untrack(lc *conn) {
	s.mu.Lock()
	delete(s.conns, lc)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes the lean connections waiting for a request (one that has not
// sent a byte yet included: a request never sent cannot be in flight), lets those serving a
// request finish it, shuts Fallback down, and waits for all of it until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	ln, handoff := s.listener, s.handoff
	for lc := range s.conns {
		lc.shutdown()
	}
	s.mu.Unlock()
	var errs []error
	if ln != nil {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	leanDone := make(chan struct{})
	go func() { s.wg.Wait(); close(leanDone) }()
	select {
	case <-leanDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("http1: lean connections still serving: %w", ctx.Err()))
	}
	if handoff != nil {
		handoff.close()
	}
	if err := s.Fallback.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// handoffListener is the net.Listener Fallback serves: it yields the connections the lean path
// hands over.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error   { l.close(); return nil }
func (l *handoffListener) Addr() net.Addr { return l.addr }
func (l *handoffListener) close()         { l.closed.Do(func() { close(l.done) }) }

// give hands c to Fallback; false when it no longer accepts (shutting down).
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// handedConn is a connection moved to net/http with the bytes the lean path had buffered and not
// consumed: they are read first.
type handedConn struct {
	net.Conn
	buffered *bufio.Reader
}

func (c *handedConn) Read(p []byte) (int, error) {
	if c.buffered != nil {
		if c.buffered.Buffered() > 0 {
			return c.buffered.Read(p)
		}
		c.buffered = nil
	}
	return c.Conn.Read(p)
}
