package laravel

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
	"strconv"
	"strings"
	"time"
)

// Endpoint names the client passes to its Observer (stable metric label values).
const (
	EndpointQR          = "qr"
	EndpointStatus      = "status"
	EndpointSession     = "session"
	EndpointQRBatch     = "qr_batch"
	EndpointStatusBatch = "status_batch"
)

// Client defaults.
const (
	// DefaultTimeout bounds one request, connection included.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes bounds how much of a response body the client reads.
	MaxResponseBytes = 1 << 20
	// maxErrorBytes bounds how much of an error body ends up in StatusError.Message.
	maxErrorBytes = 512
	// maxRetryAfter caps a Retry-After so a bogus header cannot park a sender for days.
	maxRetryAfter = 24 * time.Hour
)

// ErrNotFound matches (errors.Is) a 404 answer, e.g. GetSession for an unknown session.
var ErrNotFound = errors.New("laravel: not found")

// ErrMalformedResponse matches (errors.Is) a 2xx answer whose body could not be decoded.
var ErrMalformedResponse = errors.New("laravel: malformed response body")

// ErrRedirect matches (errors.Is) a 3xx answer. The client never follows a redirect: it would send
// the bearer token, the signed body and its signature to whatever host the Location names (and a
// 301/302 would turn the POST into a GET). A redirect means the Laravel URL is misconfigured.
var ErrRedirect = errors.New("laravel: redirect not followed (fix the Laravel URL)")

// StatusError is a non-2xx answer from Laravel. Match it with errors.As; a 404 also matches
// errors.Is(err, ErrNotFound), a 3xx errors.Is(err, ErrRedirect).
type StatusError struct {
	// Endpoint is the client endpoint name (EndpointQR, ...).
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// RetryAfter is the parsed Retry-After header (seconds or HTTP date), zero when absent.
	RetryAfter time.Duration
	// Message is Laravel's error message, or the start of the body when it was not JSON.
	Message string
	// Location is a 3xx answer's Location header, redacted (RedactURL).
	Location string
}

// Error renders the status, the endpoint and the message; a redirect names its Location.
func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Status >= 300 && e.Status <= 399 {
		return fmt.Sprintf("laravel %s: HTTP %d redirect to %q not followed (the Laravel URL is misconfigured): %s", e.Endpoint, e.Status, e.Location, msg)
	}
	return fmt.Sprintf("laravel %s: HTTP %d: %s", e.Endpoint, e.Status, msg)
}

// Is makes a 404 StatusError match ErrNotFound and a 3xx match ErrRedirect.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrRedirect:
		return e.Status >= 300 && e.Status <= 399
	}
	return false
}

// Retryable reports whether a request that failed with err may succeed if tried again: 429, 502,
// 503, 504 and network errors (connection refused, reset, timeouts). A cancelled context, other 4xx
// and 500 are not retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// RetryAfter returns the Retry-After duration carried by err, zero when there is none.
func RetryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// Observer is told about every request the client finished: its endpoint name, the HTTP status
// (0 when no answer arrived) and how long it took. The gateway's metrics package supplies one.
type Observer func(endpoint string, status int, dur time.Duration)

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the Laravel application's base URL, e.g. "https://app.example.com".
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>"; empty sends no Authorization header.
	Token string
	// Secret, when not empty, signs every request body (HeaderTimestamp + HeaderSignature).
	Secret []byte
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxConnsPerHost bounds concurrent connections to Laravel; zero means unlimited.
	MaxConnsPerHost int
	// HTTPClient replaces the client's own transport (tests); Timeout still applies per request.
	// The client sets its CheckRedirect so that redirects are never followed.
	HTTPClient *http.Client
	// Observer, when set, is called after every request.
	Observer Observer
	// Now replaces time.Now for signatures and Retry-After dates (tests).
	Now func() time.Time
}

// Client talks to the Laravel side of the contract. It is safe for concurrent use; legacy and
// batch delivery share it.
type Client struct {
	base     string
	token    string
	secret   []byte
	timeout  time.Duration
	http     *http.Client
	observer Observer
	now      func() time.Time
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("laravel client: base URL %q must be an absolute http(s) URL", RedactURL(cfg.BaseURL))
	}
	c := &Client{
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		token:    cfg.Token,
		secret:   append([]byte(nil), cfg.Secret...),
		timeout:  cfg.Timeout,
		http:     cfg.HTTPClient,
		observer: cfg.Observer,
		now:      cfg.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 128
		tr.MaxConnsPerHost = cfg.MaxConnsPerHost
		tr.IdleConnTimeout = 90 * time.Second
		tr.ResponseHeaderTimeout = c.timeout
		c.http = &http.Client{Transport: tr}
	} else {
		hc := *c.http // a copy: the caller's client is not changed
		c.http = &hc
	}
	c.http.CheckRedirect = neverFollow
	return c, nil
}

// neverFollow makes net/http return a 3xx as the answer instead of following it.
func neverFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// PostQR sends one QR code (legacy POST /api/qr).
func (c *Client) PostQR(ctx context.Context, u QRUpdate) error {
	return c.post(ctx, EndpointQR, PathQR, u)
}

// PostStatus sends one status change (legacy POST /api/whatsapp/status).
func (c *Client) PostStatus(ctx context.Context, u StatusUpdate) error {
	return c.post(ctx, EndpointStatus, PathStatus, u)
}

// GetSession asks Laravel about a session (legacy isSessionActive lookup). An unknown session
// gives an error matching ErrNotFound.
func (c *Client) GetSession(ctx context.Context, sessionID string) (SessionInfo, error) {
	var info SessionInfo
	if !ValidSessionID(sessionID) {
		return info, fmt.Errorf("laravel client: invalid session id %q", sessionID)
	}
	err := c.do(ctx, EndpointSession, http.MethodGet, PathSessionPrefix+url.PathEscape(sessionID), "", nil, &info)
	return info, err
}

// PostQRBatch sends a batch of QR codes with an idempotency key that must stay the same across
// retries of the same batch.
func (c *Client) PostQRBatch(ctx context.Context, idempotencyKey string, b QRBatch) (BatchResult, error) {
	return c.postBatch(ctx, EndpointQRBatch, PathQRBatch, idempotencyKey, b)
}

// PostStatusBatch sends a batch of status changes with an idempotency key that must stay the same
// across retries of the same batch.
func (c *Client) PostStatusBatch(ctx context.Context, idempotencyKey string, b StatusBatch) (BatchResult, error) {
	return c.postBatch(ctx, EndpointStatusBatch, PathStatusBatch, idempotencyKey, b)
}

// post sends one legacy item: no Idempotency-Key (Laravel applies an item by its version or
// message id, so a repeat changes nothing) and no body to read.
func (c *Client) post(ctx context.Context, endpoint, path string, item any) error {
	return c.do(ctx, endpoint, http.MethodPost, path, "", item, nil)
}

// postBatch sends a batch with its idempotency key and decodes Laravel's per-item answer. Every
// batch endpoint goes through here, so QR codes, statuses, messages and receipts are signed,
// keyed and their failures classified alike (do).
func (c *Client) postBatch(ctx context.Context, endpoint, path, idempotencyKey string, batch any) (BatchResult, error) {
	var res BatchResult
	err := c.do(ctx, endpoint, http.MethodPost, path, idempotencyKey, batch, &res)
	return res, err
}

// do sends one request and decodes a 2xx body into out (when out is not nil).
func (c *Client) do(ctx context.Context, endpoint, method, path, idemKey string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("laravel %s: encode request: %w", endpoint, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("laravel %s: build request: %w", endpoint, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if idemKey != "" {
		req.Header.Set(HeaderIdempotencyKey, idemKey)
	}
	if len(c.secret) > 0 {
		// Signed afresh for every attempt (fresh timestamp and nonce): a verifier refuses a
		// repeated v2 signature as a replay. Without GetBody the Transport cannot re-send the
		// request by itself (it would for one with an Idempotency-Key whose reused connection
		// broke before the answer), with the same signature; the caller retries, re-signed.
		SignRequest(req, c.secret, body, c.now())
		req.GetBody = nil
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(endpoint, 0, time.Since(start))
		return fmt.Errorf("laravel %s: %w", endpoint, redactTransportError(err))
	}
	defer func() {
		// Drain a bounded remainder so the keep-alive connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
		_ = resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		c.observe(endpoint, resp.StatusCode, time.Since(start))
		se := &StatusError{
			Endpoint:   endpoint,
			Status:     resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
			Message:    errorMessage(c.redact(raw)),
		}
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			se.Location = RedactURL(string(c.redact([]byte(resp.Header.Get("Location")))))
		}
		return se
	}
	var readErr error
	if out != nil {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
		switch {
		case err != nil:
			readErr = fmt.Errorf("laravel %s: read response: %w", endpoint, err)
		case len(raw) > MaxResponseBytes:
			readErr = fmt.Errorf("laravel %s: %w: body over %d bytes", endpoint, ErrMalformedResponse, MaxResponseBytes)
		case len(bytes.TrimSpace(raw)) == 0:
			readErr = fmt.Errorf("laravel %s: %w: empty body", endpoint, ErrMalformedResponse)
		default:
			if err := json.Unmarshal(raw, out); err != nil {
				readErr = fmt.Errorf("laravel %s: %w: %v", endpoint, ErrMalformedResponse, err)
			}
		}
	}
	c.observe(endpoint, resp.StatusCode, time.Since(start))
	return readErr
}

func (c *Client) observe(endpoint string, status int, d time.Duration) {
	if c.observer != nil {
		c.observer(endpoint, status, d)
	}
}

// parseRetryAfter reads a Retry-After value given as delay seconds or as an HTTP date. It returns
// zero when the header is absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// errorMessage extracts Laravel's "message" from an error body, or returns the body's start.
func errorMessage(raw []byte) string {
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Message != "" {
		return truncate(eb.Message)
	}
	return truncate(strings.TrimSpace(string(raw)))
}

func truncate(s string) string {
	if len(s) <= maxErrorBytes {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorBytes], "") + "..."
}
