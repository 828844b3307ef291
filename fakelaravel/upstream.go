package fakelaravel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"wagate/gateway/laravel"
)

// Upstream makes a Server the measuring front of a real Laravel app instead of a stand-in for one:
// every /api request is forwarded unchanged (the real app authenticates, verifies signatures,
// validates and applies it), and the Server records it in Stats and /metrics exactly as it
// records its own requests. /_fake/state and /_fake/messages read the real app's database, opened
// read-only, so a harness sees the same ground truth for a real app as for the fake. Faults still work: injected
// errors answer in front of the app, extra latency is added after it, a lost response drops the
// app's answer to an applied write, and down windows close the front's listener.
//
// What the front cannot do: reset the real app's data or create sessions in it (the admin routes
// answer 501), and queue wait is not visible (the app's own queueing is part of Service).
type Upstream struct {
	// URL is the real app's base URL, e.g. "http://127.0.0.1:8089".
	URL string
	// DBPath is the app's SQLite database (whatsapp_sessions as the migration in laravel/ creates
	// it), read for /_fake/state and never written.
	DBPath string
	// Workers is the app's PHP-FPM pm.max_children, reported in Stats; 0 means unknown.
	Workers int
	// Timeout bounds one forwarded request, as the front proxy's read timeout (default 60 s); a
	// slower answer becomes 504.
	Timeout time.Duration
}

// DefaultUpstreamTimeout is Upstream.Timeout's default.
const DefaultUpstreamTimeout = 60 * time.Second

// maxUpstreamBody bounds the answer of the real app the front reads (its answers are small JSON).
const maxUpstreamBody = 4 << 20

// ErrUpstreamOnly reports an admin operation a front of a real app cannot perform.
var ErrUpstreamOnly = errors.New("not available in front of a real Laravel app")

func (u *Upstream) validate() error {
	p, err := url.Parse(u.URL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("upstream URL %q: want http(s)://host[:port]", u.URL)
	}
	if u.DBPath == "" {
		return errors.New("upstream: the real app's database file is required (it is the ground truth of /_fake/state)")
	}
	if _, err := os.Stat(u.DBPath); err != nil {
		return fmt.Errorf("upstream database: %w", err)
	}
	if u.Workers < 0 || u.Timeout < 0 {
		return fmt.Errorf("upstream: workers %d and timeout %v must not be negative", u.Workers, u.Timeout)
	}
	return nil
}

// upstreamApp forwards /api requests to the real app and counts what is in flight.
type upstreamApp struct {
	cfg       Upstream
	base      string
	http      *http.Client
	busy      atomic.Int64 // requests in flight to the app
	busyNanos atomic.Int64 // total time of finished forwarded requests
}

func newUpstreamApp(cfg Upstream) *upstreamApp {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultUpstreamTimeout
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback: never through an environment proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     60 * time.Second,
	}
	return &upstreamApp{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
}

func (u *upstreamApp) close() { u.http.CloseIdleConnections() }

// forwardedHeaders are the request headers the front passes on; everything the contract uses.
var forwardedHeaders = []string{"Authorization", "Content-Type", "Accept", laravel.HeaderSignature,
	laravel.HeaderTimestamp, laravel.HeaderSignatureV2, laravel.HeaderNonce, laravel.HeaderIdempotencyKey, "User-Agent"}

// answerHeaders are the answer headers the front passes back.
var answerHeaders = []string{"Retry-After", "Idempotent-Replayed", "Allow", "WWW-Authenticate"}

// serve forwards req through the Server's faults and returns what the pool would have returned.
func (s *Server) serveUpstream(ctx context.Context, req apiRequest) poolResult {
	u := s.upstream
	u.busy.Add(1)
	start := time.Now()
	res := poolResult{outcome: outcomeServed}
	res.resp = s.withFaults(ctx, req.endpoint, func() *response {
		resp, oc := u.forward(ctx, req)
		res.outcome = oc
		return resp
	})
	res.service = time.Since(start)
	u.busy.Add(-1)
	u.busyNanos.Add(int64(res.service))
	if res.resp != nil && res.resp.status == http.StatusUnauthorized {
		book := s.stats.Load()
		if bytes.Contains(bytes.ToLower(res.resp.body), []byte("signature")) {
			book.count(&book.sigFailures)
			s.metrics.signatureFailures.Inc()
		} else {
			book.count(&book.authFailures)
			s.metrics.authFailures.Inc()
		}
	}
	return res
}

// forward sends one request to the app. A refused or broken connection is a 502 and a timeout a
// 504, as an nginx in front of the app would answer.
func (u *upstreamApp) forward(ctx context.Context, req apiRequest) (*response, outcome) {
	hreq, err := http.NewRequestWithContext(ctx, req.method, u.base+req.path, bytes.NewReader(req.body))
	if err != nil {
		return nil, outcomeRejected
	}
	// Never re-sent by the Transport on its own (it would, for a batch with an Idempotency-Key on a
	// reused connection that broke before the answer): the app refuses a repeated v2 signature as a
	// replay. The gateway retries, signed afresh. (Idle connections close here at 60 s, before
	// nginx's 65 s keepalive_timeout.)
	hreq.GetBody = nil
	for _, h := range forwardedHeaders {
		if v := req.header.Values(h); len(v) > 0 {
			hreq.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	hresp, err := u.http.Do(hreq)
	if err != nil {
		var nerr net.Error
		switch {
		case ctx.Err() != nil:
			return nil, outcomeCanceled
		case errors.As(err, &nerr) && nerr.Timeout():
			return nil, outcomeTimedOut
		}
		return nil, outcomeRejected
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, maxUpstreamBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, outcomeCanceled
		}
		return nil, outcomeRejected
	}
	resp := &response{status: hresp.StatusCode, body: body}
	for _, h := range answerHeaders {
		if v := hresp.Header.Values(h); len(v) > 0 {
			if resp.header == nil {
				resp.header = http.Header{}
			}
			resp.header[h] = v
		}
	}
	countItems(resp, req)
	return resp, outcomeServed
}

// countItems fills the item counters of resp from the app's answer, as the fake's own handlers do.
func countItems(resp *response, req apiRequest) {
	if resp.status/100 != 2 || req.method != http.MethodPost {
		return
	}
	resp.replayed = resp.header.Get("Idempotent-Replayed") == "true"
	if resp.replayed {
		return // answered from processed_batches: nothing applied, as the fake counts it
	}
	resp.applied = true
	switch req.endpoint {
	case EndpointQR, EndpointStatus:
		resp.items, resp.updated = 1, 1
	case EndpointQRBatch, EndpointStatusBatch:
		var br laravel.BatchResult
		if json.Unmarshal(resp.body, &br) == nil {
			resp.updated, resp.stale, resp.failed = br.Updated, br.Stale, br.Failed
			resp.items = br.Updated + br.Stale + br.Failed
		}
	}
}

// workerView is what Stats and /metrics report of whatever serves /api: the capacity model's
// worker pool, or the requests in flight to a real app.
type workerView interface {
	count() int            // workers (0 = unknown)
	busyNow() int64        // serving a request now
	queuedNow() int        // waiting for a worker
	busyNanosTotal() int64 // busy time of finished requests
	abandonedTotal() int64 // finished after the proxy had given up
}

// poolView is the workerView of the capacity model.
type poolView struct{ p *fpmPool }

func (v poolView) count() int            { return v.p.model.Workers }
func (v poolView) busyNow() int64        { return v.p.busy.Load() }
func (v poolView) queuedNow() int        { return v.p.queued() }
func (v poolView) busyNanosTotal() int64 { return v.p.busyNanos.Load() }
func (v poolView) abandonedTotal() int64 { return v.p.abandoned.Load() }

// The real app's queue is inside it (FPM's backlog): not visible from the front.
func (u *upstreamApp) count() int            { return u.cfg.Workers }
func (u *upstreamApp) busyNow() int64        { return u.busy.Load() }
func (u *upstreamApp) queuedNow() int        { return 0 }
func (u *upstreamApp) busyNanosTotal() int64 { return u.busyNanos.Load() }
func (u *upstreamApp) abandonedTotal() int64 { return 0 }
