package user

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"wagate/simulator/metrics"
)

// pollTimeout bounds one poll, as the API's http.Client timeout bounds the other calls.
const pollTimeout = 60 * time.Second

// pollClient is the HTTP/1.1 client of the Laravel app's status and QR polls, the load
// generator's hottest path (~7,000 requests/s at 1000 users on the seed workload, on the same
// machine as the gateway). net/http's client spends two goroutine hand-offs (its connection's
// read and write loops), a dozen channels and ~60 allocations on each request; this one writes
// a request built once per poller on a pooled keep-alive connection and reads the answer's
// status line and headers in place from the calling goroutine, discarding the body: one write and
// one read system call, no allocation. The pool is bounded like http.Transport's
// MaxConnsPerHost; a request waiting for a connection (or dialing one) records that wait as
// http_req_blocked, not as latency, as k6 does. Answers it cannot read as HTTP/1.1 (or that ask
// to close) close their connection; a reused connection the server had closed before answering
// is retried once on a fresh one, as net/http retries idempotent requests.
type pollClient struct {
	addr  string        // host:port
	host  string        // the Host header
	slots chan struct{} // one token per open connection
	idle  chan *pollConn
	dial  net.Dialer
}

// pollConn is one keep-alive connection of the pool.
type pollConn struct {
	c  net.Conn
	br *bufio.Reader
	// used says a request was answered on it: an error before the next answer's first byte may
	// be the server's idle close, worth one retry.
	used bool
}

// newPollClient returns a client of the gateway at base (http://host:port) with at most
// maxConns connections, or nil when base is not plain http (the polls then go through net/http).
func newPollClient(base string, maxConns int) *pollClient {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if maxConns <= 0 {
		maxConns = 256
	}
	return &pollClient{addr: addr, host: u.Host, slots: make(chan struct{}, maxConns), idle: make(chan *pollConn, maxConns)}
}

// get returns an idle connection, or dials one while the bound allows, or waits for either.
func (c *pollClient) get(ctx context.Context) (*pollConn, error) {
	select {
	case pc := <-c.idle:
		return pc, nil
	default:
	}
	select {
	case pc := <-c.idle:
		return pc, nil
	case c.slots <- struct{}{}:
		return c.open(ctx)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// open dials a new connection; its slot is taken.
func (c *pollClient) open(ctx context.Context) (*pollConn, error) {
	conn, err := c.dial.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		<-c.slots
		return nil, err
	}
	return &pollConn{c: conn, br: bufio.NewReaderSize(conn, 4096)}, nil
}

// put returns a connection to the pool.
func (c *pollClient) put(pc *pollConn) {
	pc.used = true
	select {
	case c.idle <- pc:
	default: // cannot happen: idle holds as many as there are slots
		c.discard(pc)
	}
}

// discard closes a connection and frees its slot.
func (c *pollClient) discard(pc *pollConn) {
	_ = pc.c.Close()
	<-c.slots
}

// errFresh marks an error before any byte of the answer on a connection that had answered
// before: the server closed it while idle, and the request may be sent again.
var errFresh = errors.New("connection closed before the answer")

// roundTrip writes req and reads the answer, discarding its body; keep reports whether the
// connection can carry the next request.
func (pc *pollConn) roundTrip(req []byte) (status int, keep bool, err error) {
	_ = pc.c.SetDeadline(time.Now().Add(pollTimeout))
	if _, err := pc.c.Write(req); err != nil {
		if pc.used {
			return 0, false, fmt.Errorf("%w: %w", errFresh, err)
		}
		return 0, false, err
	}
	line, err := pc.br.ReadSlice('\n')
	if err != nil {
		if pc.used && len(line) == 0 && pc.br.Buffered() == 0 {
			return 0, false, fmt.Errorf("%w: %w", errFresh, err)
		}
		return 0, false, err
	}
	status, err = statusCode(line)
	if err != nil {
		return 0, false, err
	}
	length, chunked, keep := int64(-1), false, true
	for {
		line, err = pc.br.ReadSlice('\n')
		if err != nil {
			return status, false, fmt.Errorf("reading the answer's headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return status, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, perr := parseLength(value)
			if perr != nil {
				return status, false, perr
			}
			length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
			if !chunked {
				return status, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
			}
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			}
		}
	}
	switch {
	case status == http.StatusNoContent || status == http.StatusNotModified || status < 200:
	case chunked:
		err = discardChunked(pc.br)
	case length >= 0:
		_, err = pc.br.Discard(int(length))
	default: // the body runs until the server closes the connection
		_, err = io.Copy(io.Discard, io.LimitReader(pc.br, 1<<20))
		keep = false
	}
	if err != nil {
		return status, false, fmt.Errorf("reading the answer's body: %w", err)
	}
	return status, keep, nil
}

// statusCode reads the code of a status line "HTTP/1.x NNN reason".
func statusCode(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	code := 0
	for _, b := range line[9:12] {
		if b < '0' || b > '9' {
			return 0, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
		}
		code = code*10 + int(b-'0')
	}
	return code, nil
}

// parseLength reads a Content-Length value.
func parseLength(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("bad Content-Length %q", v)
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, fmt.Errorf("bad Content-Length %q", v)
		}
		n = n*10 + int64(b-'0')
	}
	return n, nil
}

// discardChunked reads a chunked body to its end (trailers included).
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte{';'})
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", size)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		if _, err := br.Discard(2); err != nil { // the chunk's CRLF
			return err
		}
	}
}

// asciiEqualFold reports whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Poller is one of the Laravel app's status or QR pollers of one session: its request is built
// once, and its tags' series key once per answer status, so a poll allocates nothing. A Poller is
// used by one goroutine at a time.
type Poller struct {
	api      *API
	endpoint string
	path     string
	req      []byte // the whole HTTP/1.1 request
	expected []int
	tags     metrics.Tags
	// byStatus caches the request tags of the last answer status.
	lastStatus int
	lastTags   metrics.RequestTags
	// inflight is the connection of the request under way, closed early when ctx ends.
	inflight atomic.Pointer[pollConn]
	ctx      context.Context
	stop     func() bool
}

// NewPoller returns the poller of endpoint (EndpointStatus or EndpointQR) for sessionID, for
// requests under ctx; Close releases it.
func (a *API) NewPoller(ctx context.Context, endpoint, sessionID string, tags metrics.Tags) *Poller {
	path := "/sessions/" + url.PathEscape(sessionID)
	var expected []int
	if endpoint == EndpointQR {
		path += "/qr"
		expected = []int{404, 409, 410}
	}
	p := &Poller{api: a, endpoint: endpoint, path: path, expected: expected, tags: tags, lastStatus: -1, ctx: ctx}
	if a.polls != nil {
		p.req = []byte("GET " + path + " HTTP/1.1\r\nHost: " + a.polls.host + "\r\nAuthorization: " + a.auth[0] +
			"\r\nAccept: application/json\r\nUser-Agent: wagate-simulator\r\n\r\n")
		// A request under way when ctx ends is cut short, as net/http does with a request's context.
		p.stop = context.AfterFunc(ctx, func() {
			if pc := p.inflight.Load(); pc != nil {
				_ = pc.c.SetDeadline(time.Unix(1, 0))
			}
		})
	}
	return p
}

// Close releases the poller.
func (p *Poller) Close() {
	if p.stop != nil {
		p.stop()
	}
}

// Every polls after first, then after each answer waits pace's next think time (the interval on
// average, PollJitter each way), until ctx ends or stop closes (nil: never), as the Laravel app's
// pollers poll while their session pairs and lives: the native users' poller goroutines and
// k6/x/wagate's background pollers. A poll that fails while ctx lives is recorded and followed by
// the next one. One timer serves the whole loop; Every returns when the loop ends and does not
// Close the poller.
//
// A poll due in the API's quiet window (QuietPolls) is skipped: the poller waits its next think
// time, so the pollers come back after the window as spread as they were.
//
// Every returns as soon as ctx ends, but notices stop only at its next poll time, which it then
// skips: stop is the run's end (the VU's Stopping), shared by every poller of the run, and the
// 10,000 pollers of seed-batch-1000 all woken by it at once were 10,000 goroutines runnable
// together on the load generator's one P (its last 5 s interval: goroutine delays 42-84 ms at
// p99 in every batch-1000 run of make bench; BenchmarkTheRunsEndWithManyPollers). They now end
// over one think time, as they polled.
func (p *Poller) Every(ctx context.Context, first time.Duration, pace *Pace, stop <-chan struct{}) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		select {
		case <-stop:
			return
		default:
		}
		if p.api.quietAt(time.Now()) {
			t.Reset(pace.Next()) // the Laravel app is quiet: this poll is skipped, not delayed
			continue
		}
		if err := p.Poll(); err != nil && ctx.Err() != nil {
			return
		}
		t.Reset(pace.Next())
	}
}

// Poll makes one request and records it (http_reqs, http_req_duration, http_req_blocked,
// http_req_failed tagged with endpoint, method, status and the poller's tags). The answer is read
// in full, not decoded.
func (p *Poller) Poll() error {
	if p.api.polls == nil {
		_, err := p.api.do(p.ctx, http.MethodGet, p.endpoint, p.path, nil, false, p.tags, p.expected...)
		return err
	}
	c := p.api.polls
	began := time.Now()
	pc, err := c.get(p.ctx)
	gotConn := time.Now()
	status := 0
	if err == nil {
		var keep bool
		p.inflight.Store(pc)
		status, keep, err = pc.roundTrip(p.req)
		if errors.Is(err, errFresh) && p.ctx.Err() == nil {
			c.discard(pc)
			if pc, err = c.get(p.ctx); err == nil {
				p.inflight.Store(pc)
				status, keep, err = pc.roundTrip(p.req)
			}
		}
		p.inflight.Store(nil)
		if pc != nil {
			if keep && err == nil {
				c.put(pc)
			} else {
				c.discard(pc)
			}
		}
	}
	ended := time.Now()
	if p.ctx.Err() != nil && err != nil {
		// The run is ending: an interrupted request is not a measurement.
		return fmt.Errorf("GET %s: %w", p.endpoint, p.ctx.Err())
	}
	if status != p.lastStatus {
		t := metrics.Tags{"endpoint": p.endpoint, "method": http.MethodGet, "status": strconv.Itoa(status)}
		for k, v := range p.tags {
			t[k] = v
		}
		p.lastStatus, p.lastTags = status, metrics.NewRequestTags(t)
	}
	failed := err != nil || status >= 400
	for _, s := range p.expected {
		if status == s {
			failed = false
		}
	}
	p.api.reg.RecordTagged(p.lastTags, ended.Sub(gotConn), gotConn.Sub(began), failed)
	if err != nil {
		return fmt.Errorf("GET %s: %w", p.endpoint, err)
	}
	return nil
}
