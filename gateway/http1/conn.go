package http1

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"
)

// conn is one lean connection: its goroutine reads a request head, serves it and writes the
// answer, then waits for the next, until the client closes, a timeout passes, the server shuts
// down, or a request goes to net/http (which then owns the connection).
type conn struct {
	srv    *Server
	rwc    net.Conn
	br     *bufio.Reader
	cancel context.CancelFunc
	base   *http.Request // carries the connection's context; each request starts as a copy of it
	remote string

	mu      sync.Mutex
	waiting bool // between requests (or before the first): Shutdown closes it
	closing bool // Shutdown started: finish the request being served, then close
}

// state is what serving one request takes beyond its connection: the parsed head, the
// *http.Request and its header, the response. States are pooled across connections rather than
// kept per connection: at 1000 users the API has 10,000 connections, each one's own objects
// cold in the CPU's caches when its next request comes, where a pooled state was used by the
// request just before.
type state struct {
	prev, cur head    // cur: this request's head; prev: the one this state read before
	url       url.URL // the request's URL: a handler may change it, the next request resets it
	req       http.Request
	hdr       http.Header
	w         response
}

var states = sync.Pool{New: func() any {
	return &state{hdr: http.Header{}, w: response{header: http.Header{}}}
}}

func newConn(s *Server, c net.Conn) *conn {
	lc := &conn{srv: s, rwc: c, remote: c.RemoteAddr().String()}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
	ctx, lc.cancel = context.WithCancel(ctx)
	lc.base = (&http.Request{}).WithContext(ctx)
	return lc
}

// shutdown is called by Server.Shutdown (holding its lock): a connection waiting for a request
// is closed now, one serving a request after its answer.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if c.waiting {
		_ = c.rwc.Close()
	}
}

// setWaiting marks the connection waiting (or not) for a request; false when it must close.
func (c *conn) setWaiting(w bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = w
	return !c.closing
}

func (c *conn) serve() {
	handedOver := false
	defer func() {
		c.cancel()
		if !handedOver {
			_ = c.rwc.Close()
		}
		c.srv.untrack(c)
	}()
	c.br = bufio.NewReaderSize(c.rwc, readBufferSize)
	fb := c.srv.Fallback
	for first := true; ; first = false {
		if !c.setWaiting(true) {
			return
		}
		wait := fb.IdleTimeout
		if first || wait == 0 {
			wait = cmp.Or(fb.ReadHeaderTimeout, fb.ReadTimeout)
		}
		if wait > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(wait))
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.setWaiting(false) {
			return
		}
		st := states.Get().(*state)
		b, ok := c.readHead()
		if ok {
			ok = parseHead(b, &st.prev, &st.cur)
		}
		if !ok {
			states.Put(st)
			handedOver = c.handOver()
			return
		}
		_, _ = c.br.Discard(len(b))
		keepAlive := c.serveRequest(st)
		st.prev, st.cur = st.cur, st.prev
		states.Put(st)
		if !keepAlive {
			return
		}
	}
}

// readHead returns the request head at the start of the buffer, up to and with the first
// "\r\n\r\n", reading more within ReadHeaderTimeout when the head came in pieces. ok is false
// when the head does not fit the buffer or the read failed: the connection goes to net/http,
// which answers or drops it as it would have.
func (c *conn) readHead() ([]byte, bool) {
	b, _ := c.br.Peek(c.br.Buffered())
	if end := bytes.Index(b, crlfcrlf); end >= 0 {
		return b[:end+len(crlfcrlf)], true
	}
	if d := cmp.Or(c.srv.Fallback.ReadHeaderTimeout, c.srv.Fallback.ReadTimeout); d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	for {
		n := c.br.Buffered()
		if n == readBufferSize {
			return nil, false
		}
		if _, err := c.br.Peek(n + 1); err != nil { // waits for more bytes
			return nil, false
		}
		b, _ = c.br.Peek(c.br.Buffered())
		if end := bytes.Index(b, crlfcrlf); end >= 0 {
			return b[:end+len(crlfcrlf)], true
		}
	}
}

// handOver gives the connection, with what it buffered, to net/http; false if it no longer
// accepts (shutting down), the connection is then closed.
func (c *conn) handOver() bool {
	_ = c.rwc.SetDeadline(time.Time{})
	return c.srv.handoff.give(&handedConn{Conn: c.rwc, buffered: c.br})
}

// serveRequest serves the parsed head st.cur and reports whether the connection stays open.
func (c *conn) serveRequest(st *state) (keepAlive bool) {
	h := &st.cur
	req := &st.req
	*req = *c.base
	st.url = h.target.url
	req.Method = http.MethodGet
	req.URL = &st.url
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	h.header(st.hdr)
	req.Header = st.hdr
	req.Body = http.NoBody
	req.Host = h.host
	req.RemoteAddr = c.remote
	req.RequestURI = h.target.raw

	if d := c.srv.Fallback.WriteTimeout; d > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(d))
	}
	w := &st.w
	w.reset(c)
	if !c.runHandler(w, req) {
		return false
	}
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		w.closeAfter = true
	}
	return w.finish()
}

// runHandler runs the handler; false if it panicked (the connection closes without an answer,
// as net/http does, and the panic is logged unless it is http.ErrAbortHandler).
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("http: panic serving %v: %v\n%s", c.remote, p, buf)
			}
			w.release()
			ok = false
		}
	}()
	c.srv.Fallback.Handler.ServeHTTP(w, req)
	return true
}
