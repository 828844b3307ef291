// Package user owns a virtual user: one WhatsApp account of one Laravel customer, and the Laravel
// app acting for it. Its lifecycle runs against the real gateway REST API (start the session, poll
// status and QR as the Laravel app does, send messages, log out); its phone pairs with the QR that
// Laravel received, not the one the gateway holds; and every state it causes is written to the
// truth.Ledger, the ground truth Laravel's final state is compared with.
package user

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"wagate/simulator/metrics"
)

// Endpoint tags of the gateway API calls, as they appear in http_req_duration{endpoint:...}.
const (
	EndpointStart    = "start"
	EndpointStatus   = "status"
	EndpointQR       = "qr"
	EndpointMessages = "messages"
	EndpointLogout   = "logout"
)

// API is the gateway REST API as the Laravel app calls it, measured: every call records
// http_reqs, http_req_duration and http_req_failed tagged with endpoint, method, status and the
// scenario's tags.
type API struct {
	base  string
	token string
	hc    *http.Client
	reg   *metrics.Registry
	// auth is the Authorization header value, built once: at thousands of polls a second the
	// load generator shares the gateway's cores, so its per-request work is kept small.
	auth []string
	// polls carries the status and QR polls (nil when base is not plain http: net/http then).
	polls *pollClient
	// quietFrom and quietUntil (Unix ns; both 0: none) bound the window in which polls are
	// skipped (QuietPolls).
	quietFrom, quietUntil atomic.Int64
}

// QuietPolls makes every poll due from from until until skipped (the scenario's quiet window):
// the pollers keep their think times and poll again after it. Set it before the users start.
func (a *API) QuietPolls(from, until time.Time) {
	a.quietFrom.Store(from.UnixNano())
	a.quietUntil.Store(until.UnixNano())
}

// quietAt reports whether now falls in the quiet window.
func (a *API) quietAt(now time.Time) bool {
	ns := now.UnixNano()
	return ns >= a.quietFrom.Load() && ns < a.quietUntil.Load()
}

// NewAPI returns a client of the gateway at base (http://host:port) with its API token. The
// status and QR polls have a pool of their own connections, as many at most as hc's transport
// allows per host (256 when it sets no bound).
func NewAPI(base, token string, hc *http.Client, reg *metrics.Registry) *API {
	maxConns := 0
	if t, ok := hc.Transport.(*http.Transport); ok {
		maxConns = t.MaxConnsPerHost
	}
	return &API{base: base, token: token, hc: hc, reg: reg, auth: []string{"Bearer " + token}, polls: newPollClient(base, maxConns)}
}

// Shared request header values (never modified).
var (
	acceptJSON      = []string{"application/json"}
	contentTypeJSON = []string{"application/json"}
)

// Response is a decoded API answer.
type Response struct {
	Status int
	Body   map[string]any
}

// call performs one request; expected lists statuses that count as success besides 2xx.
func (a *API) call(ctx context.Context, method, endpoint, path string, body any, tags metrics.Tags, expected ...int) (Response, error) {
	return a.do(ctx, method, endpoint, path, body, true, tags, expected...)
}

// do performs one request; with decode false the answer is read in full (as measured) but not
// decoded, as the Laravel app's status polls only need the status code here.
func (a *API) do(ctx context.Context, method, endpoint, path string, body any, decode bool, tags metrics.Tags, expected ...int) (Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(b)
	}
	// As in k6, http_req_duration is sending + waiting + receiving: it starts once a connection
	// is obtained; the wait for a free connection (or dialing one) is http_req_blocked.
	var gotConnAt atomic.Int64 // unix nanoseconds; set by the transport's goroutine
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConnAt.Store(time.Now().UnixNano()) },
	})
	req, err := http.NewRequestWithContext(tctx, method, a.base+path, rd)
	if err != nil {
		return Response{}, err
	}
	req.Header = http.Header{"Authorization": a.auth, "Accept": acceptJSON}
	if body != nil {
		req.Header["Content-Type"] = contentTypeJSON
	}
	began := time.Now()
	gotConnAt.Store(began.UnixNano())
	resp, err := a.hc.Do(req)
	var out Response
	if err == nil {
		out.Status = resp.StatusCode
		if decode {
			var data []byte
			data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if len(data) > 0 {
				_ = json.Unmarshal(data, &out.Body)
			}
		} else {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		}
		resp.Body.Close()
	}
	ended := time.Now()
	gotConn := time.Unix(0, gotConnAt.Load())
	blocked := gotConn.Sub(began)
	took := ended.Sub(gotConn)
	if ctx.Err() != nil && err != nil {
		// The run is ending: an interrupted request is not a measurement.
		return out, fmt.Errorf("%s %s: %w", method, endpoint, ctx.Err())
	}
	t := metrics.Tags{"endpoint": endpoint, "method": method, "status": strconv.Itoa(out.Status)}
	for k, v := range tags {
		t[k] = v
	}
	failed := err != nil || out.Status >= 400
	for _, s := range expected {
		if out.Status == s {
			failed = false
		}
	}
	a.reg.RecordRequest(t, took, blocked, failed)
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	return out, nil
}

// Start asks the gateway to start (or resume) a session: POST /sessions.
func (a *API) Start(ctx context.Context, sessionID string, tags metrics.Tags) (Response, error) {
	return a.call(ctx, http.MethodPost, EndpointStart, "/sessions", map[string]string{"session_id": sessionID}, tags)
}

// Status reads a session's status: GET /sessions/{id}.
func (a *API) Status(ctx context.Context, sessionID string, tags metrics.Tags) (Response, error) {
	return a.call(ctx, http.MethodGet, EndpointStatus, "/sessions/"+url.PathEscape(sessionID), nil, tags)
}

// PollStatus is Status as the Laravel app's pollers call it: the answer is read and measured but
// not decoded. A poller that polls again should keep a Poller (NewPoller).
func (a *API) PollStatus(ctx context.Context, sessionID string, tags metrics.Tags) error {
	p := a.NewPoller(ctx, EndpointStatus, sessionID, tags)
	defer p.Close()
	return p.Poll()
}

// PollQR is QR as the Laravel app's pollers call it: the answer is read and measured but not
// decoded.
func (a *API) PollQR(ctx context.Context, sessionID string, tags metrics.Tags) error {
	p := a.NewPoller(ctx, EndpointQR, sessionID, tags)
	defer p.Close()
	return p.Poll()
}

// QR reads a session's current QR code: GET /sessions/{id}/qr. A session without a code (404,
// 409, 410) is an expected answer.
func (a *API) QR(ctx context.Context, sessionID string, tags metrics.Tags) (Response, error) {
	return a.call(ctx, http.MethodGet, EndpointQR, "/sessions/"+url.PathEscape(sessionID)+"/qr", nil, tags, 404, 409, 410)
}

// Send sends a text message: POST /sessions/{id}/messages. 409 (session not active) is an
// expected answer while a session reconnects.
func (a *API) Send(ctx context.Context, sessionID, to, text string, tags metrics.Tags) (Response, error) {
	return a.call(ctx, http.MethodPost, EndpointMessages, "/sessions/"+url.PathEscape(sessionID)+"/messages", map[string]string{"to": to, "text": text}, tags, 409)
}

// Logout logs a session out: DELETE /sessions/{id}.
func (a *API) Logout(ctx context.Context, sessionID string, tags metrics.Tags) (Response, error) {
	return a.call(ctx, http.MethodDelete, EndpointLogout, "/sessions/"+url.PathEscape(sessionID), nil, tags)
}

// StatusOf extracts the estado_qr from a status answer ("status" or "estado_qr"), "" when absent.
func StatusOf(r Response) string {
	for _, k := range []string{"status", "estado_qr", "state"} {
		if s, ok := r.Body[k].(string); ok {
			return s
		}
	}
	if inner, ok := r.Body["session"].(map[string]any); ok {
		return StatusOf(Response{Body: inner})
	}
	return ""
}
