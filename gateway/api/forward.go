package api

// Cluster routing: any replica takes any request; a request that acts on one session (start,
// send, logout, and the status and QR reads when Config.ForwardReads is set) is served where the
// session's shard is held. A replica that does not hold it forwards the request, unchanged
// (method, path, body, Authorization), to the holder's advertised URL with httputil.ReverseProxy,
// adding X-Wagate-Hop: 1. A request that already made its hop is never forwarded again: when the
// receiving replica does not hold the shard either, the two replicas' views disagree because the
// shard is moving, and the answer is 503 session_moving with Retry-After: 1. So is every request
// for a shard being handed over or held by nobody at the moment.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// HopHeader marks a request one replica forwarded to another (the loop guard).
const HopHeader = "X-Wagate-Hop"

// RetryAfterMoving is the Retry-After, in seconds, of a 503 for a session whose shard is moving:
// a handover takes well under a second (flush, disconnect, release; the successor claims), a
// takeover after a crash up to the member lease.
const RetryAfterMoving = "1"

// Locator says which replica holds a session's shard (cluster mode; gateway/cluster implements
// it). Locate is called on every routed request, so it must answer from memory (the replica's
// copy of the shard table), not with a round trip to Redis.
type Locator interface {
	Locate(ctx context.Context, sessionID string) (Location, error)
}

// Location is where a session's shard is held right now.
type Location struct {
	// Self: this replica holds the shard and its claim is current.
	Self bool
	// URL is the holder's advertised base URL (e.g. "http://10.1.2.3:4000") when another replica
	// holds the shard.
	URL string
	// Moving: the shard is being handed over or taken over (by or from this replica), so nobody
	// may act on its sessions until the successor's claim lands.
	Moving bool
}

// routeAction is what a replica does with a request for one session.
type routeAction int

const (
	// serveHere: this replica holds the session (or cluster mode is off).
	serveHere routeAction = iota
	// forwardToHolder: another replica holds it; proxy the request there.
	forwardToHolder
	// retryLater: nobody can act on the session now; answer 503 + Retry-After.
	retryLater
)

func (a routeAction) String() string {
	switch a {
	case serveHere:
		return "here"
	case forwardToHolder:
		return "forward"
	case retryLater:
		return "retry"
	}
	return "unknown"
}

// routeDecision is the routing decision for one request and, for retryLater, why (the 503's
// message).
type routeDecision struct {
	action routeAction
	target string
	reason string
}

// decideRoute decides where a request for a session is served from where its shard is held
// (loc, or err when the locator could not say) and whether the request was already forwarded
// once (hopped).
func decideRoute(loc Location, err error, hopped bool) routeDecision {
	switch {
	case err != nil:
		return routeDecision{action: retryLater, reason: "the gateway cannot tell which replica holds this session right now"}
	case loc.Moving:
		return routeDecision{action: retryLater, reason: "this session is moving to another gateway replica"}
	case loc.Self:
		return routeDecision{action: serveHere}
	case hopped:
		// Forwarded here by a replica that believes this one holds the session, while this one
		// believes another does: the shard is moving. Forwarding again could loop.
		return routeDecision{action: retryLater, reason: "the gateway replicas disagree on who holds this session while it moves"}
	case loc.URL == "":
		return routeDecision{action: retryLater, reason: "no gateway replica holds this session right now"}
	}
	return routeDecision{action: forwardToHolder, target: loc.URL}
}

// forwarder proxies requests to the replica holding their session.
type forwarder struct {
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	// targets caches parsed holder URLs (a handful of replicas).
	targets sync.Map // string -> *url.URL
}

// targetKey carries a request's holder URL from route to the proxy's Rewrite.
type targetKey struct{}

func newForwarder(log *slog.Logger) *forwarder {
	f := &forwarder{log: log}
	transport := &http.Transport{
		Proxy:                 nil, // replicas talk directly, never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 55 * time.Second, // inside the API server's 60 s WriteTimeout
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*url.URL))
			// Keep the chain a trusted proxy recorded (Rewrite drops it), then add the client.
			if xff := pr.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
				pr.Out.Header["X-Forwarded-For"] = append([]string(nil), xff...)
			}
			pr.SetXForwarded()
			pr.Out.Header.Set(HopHeader, "1")
		},
		Transport:    transport,
		BufferPool:   copyBuffers{},
		ErrorHandler: f.failed,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return f
}

// target parses (once per holder) an advertised URL.
func (f *forwarder) target(raw string) (*url.URL, error) {
	if u, ok := f.targets.Load(raw); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("not an http(s) URL with a host")
	}
	f.targets.Store(raw, u)
	return u, nil
}

// failed answers a request the holder did not answer. Nothing secret is logged: the error names
// the holder's address, never the request's headers.
func (f *forwarder) failed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away; nobody reads the answer
	}
	target, _ := r.Context().Value(targetKey{}).(*url.URL)
	host := ""
	if target != nil {
		host = target.Host
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		// Nothing was sent: the holder is gone (its shards are about to be taken over).
		f.log.Warn("forward: session holder unreachable", "method", r.Method, "path", r.URL.Path, "holder", host, "err", err)
		w.Header().Set("Retry-After", RetryAfterMoving)
		writeError(w, http.StatusServiceUnavailable, "holder_unreachable", "the gateway replica holding this session is unreachable; it is being replaced")
		return
	}
	// The request may have reached the holder: its outcome is unknown.
	f.log.Warn("forward: session holder failed", "method", r.Method, "path", r.URL.Path, "holder", host, "err", err)
	writeError(w, http.StatusBadGateway, "holder_failed", "the gateway replica holding this session failed while answering; the outcome is unknown")
}

// routed serves the request for session id elsewhere when this replica does not hold it:
// forwarded to the holder, or 503 + Retry-After while its shard moves. It returns false when the
// request is this replica's to serve (always without a Locator).
func (a *api) routed(w http.ResponseWriter, r *http.Request, id string) bool {
	if a.cfg.Locator == nil {
		return false
	}
	loc, err := a.cfg.Locator.Locate(r.Context(), id)
	d := decideRoute(loc, err, r.Header.Get(HopHeader) != "")
	if a.cfg.ObserveRoute != nil {
		a.cfg.ObserveRoute(d.action.String())
	}
	switch d.action {
	case serveHere:
		return false
	case forwardToHolder:
		target, perr := a.fwd.target(d.target)
		if perr == nil {
			a.fwd.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
			return true
		}
		a.log.Error("forward: the holder's advertised URL is not usable", "session_id", id, "url", d.target, "err", perr)
		d.reason = "the gateway replica holding this session advertises an unusable address"
	default:
		if err != nil {
			a.log.Warn("forward: locating the session's holder failed", "session_id", id, "err", err)
		}
	}
	w.Header().Set("Retry-After", RetryAfterMoving)
	writeError(w, http.StatusServiceUnavailable, "session_moving", d.reason)
	return true
}

// readCloser reads from one reader and closes another (a teed request body).
type readCloser struct {
	io.Reader
	io.Closer
}

// copyBuffers recycles the proxy's 32 KiB copy buffers (one per forwarded request otherwise).
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }
