// Package api owns the gateway's REST API, the one the Laravel application calls: JSON over HTTP
// with a bearer token (compared in constant time) to start, list, inspect and log out sessions,
// read the current QR code (JSON or PNG), send text messages (idempotently with an
// Idempotency-Key, send.go) and download received media (media.go); plus the unauthenticated
// operational endpoints /healthz, /readyz and /metrics. Every client mistake is a 4xx with
// {"error":{"code","message"}}; a panic in a handler is recovered, logged and answered 500.
//
// The API reads session state through the SessionReader interface and answers isSessionActive
// through a delivery.ActivityChecker, so the wiring can choose implementations by mode (legacy:
// the session manager and a Laravel lookup per call; batch: the cache). Extra routes (batch mode's
// /metrics/batch and /metrics/cache) are added through Config.Routes. Batch mode's dead letters
// are listed and re-driven through GET /dead-letters and POST /dead-letters/redrive (deadletters.go).
// In cluster mode (Config.Locator) a request that acts on one session is served by the replica
// holding the session's shard: forwarded there, or answered 503 while the shard moves (forward.go).
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/laravel"
	"wagate/gateway/sendonce"
	"wagate/gateway/session"
)

// Limits of the API.
const (
	// MaxBodyBytes bounds a request body (413 above it).
	MaxBodyBytes = 64 << 10
	// MaxTextLen bounds a message text, in characters.
	MaxTextLen = 4096
	// DefaultPageSize and MaxPageSize bound GET /sessions pages.
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// QRPNGSize is the side of a QR PNG in pixels.
	QRPNGSize = 320
)

// SessionService changes sessions (session.Manager implements it).
type SessionService interface {
	Start(ctx context.Context, id string) (session.Info, error)
	Logout(ctx context.Context, id string) (session.Info, error)
	SendText(ctx context.Context, id string, msg session.OutgoingText) (string, error)
	Media(ctx context.Context, id, messageID string) (session.Media, error)
}

// SessionReader reads session state (session.Manager implements it; batch mode may read through
// the cache instead).
type SessionReader interface {
	Get(ctx context.Context, id string) (session.Info, error)
	List(ctx context.Context, after string, limit int) ([]session.Info, string, error)
}

// Check is one readiness check of /readyz.
type Check struct {
	// Name labels the check in the /readyz answer ("store", "redis", ...).
	Name string
	// Check returns nil when the dependency is usable.
	Check func(ctx context.Context) error
}

// Route is an extra route mounted on the API.
type Route struct {
	// Pattern is a net/http ServeMux pattern, e.g. "GET /metrics/batch".
	Pattern string
	// Handler serves it.
	Handler http.Handler
	// Public routes skip the bearer token (operational endpoints).
	Public bool
}

// Config configures the API handler.
type Config struct {
	// Token is the bearer token clients must send; required.
	Token string
	// Sessions changes sessions; required.
	Sessions SessionService
	// Reader reads session state; required.
	Reader SessionReader
	// Activity answers isSessionActive; required.
	Activity delivery.ActivityChecker
	// Metrics serves /metrics; nil disables it.
	Metrics http.Handler
	// ObserveRequest, when set, is told about every request (route pattern, method, status, time).
	ObserveRequest func(route, method string, code int, d time.Duration)
	// Ready are the /readyz checks.
	Ready []Check
	// Warnings are shown in /readyz (e.g. the insecure test-only WhatsApp setting).
	Warnings []string
	// Routes are extra routes.
	Routes []Route
	// Logger receives request errors and recovered panics.
	Logger *slog.Logger
	// CheckTimeout bounds each readiness check (default 2 s).
	CheckTimeout time.Duration
	// RateLimit bounds each client's requests (429 + Retry-After); zero values take its defaults.
	RateLimit RateLimit
	// DeadLetters serves GET /dead-letters and POST /dead-letters/redrive (batch mode's outbox);
	// nil (legacy mode) makes both answer 501.
	DeadLetters DeadLetters
	// DeadLetterMetrics, when set, counts what the dead-letter routes listed and re-drove.
	DeadLetterMetrics DeadLetterMetrics
	// SendKeys remembers the answers of sends made with an Idempotency-Key (send.go); nil keeps
	// them in the process for sendonce.DefaultTTL.
	SendKeys sendonce.Store
	// Locator, in cluster mode, says which replica holds a session: start, send and logout of a
	// session held elsewhere are forwarded there (forward.go). Nil serves every request here.
	Locator Locator
	// ForwardReads forwards the status and QR reads too, for a Reader that knows only this
	// replica's sessions; false reads here (from the shared cache).
	ForwardReads bool
	// ObserveRoute, when set, is told each routing decision of a request for one session:
	// "here", "forward" or "retry".
	ObserveRoute func(decision string)
}

type api struct {
	cfg  Config
	log  *slog.Logger
	pngs *pngCache
	fwd  *forwarder
}

// New returns the API's http.Handler.
func New(cfg Config) (http.Handler, error) {
	a, mux, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	return a.observe(a.rateLimit(a.recoverPanics(a.routeReads(mux)))), nil
}

// newAPI checks cfg and returns the api and its router.
func newAPI(cfg Config) (*api, *http.ServeMux, error) {
	if cfg.Token == "" {
		return nil, nil, errors.New("api: an API token is required")
	}
	if cfg.Sessions == nil || cfg.Reader == nil || cfg.Activity == nil {
		return nil, nil, errors.New("api: sessions, reader and activity checker are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.SendKeys == nil {
		cfg.SendKeys = sendonce.NewMemory(sendonce.DefaultTTL)
	}
	a := &api{cfg: cfg, log: cfg.Logger, pngs: newPNGCache(4096)}
	if cfg.Locator != nil {
		a.fwd = newForwarder(cfg.Logger)
	}

	mux := http.NewServeMux()
	mux.Handle("/sessions", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodPost: a.startSession,
		http.MethodGet:  a.listSessions,
	})))
	mux.Handle("/sessions/{id}", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodGet:    a.getSessionByPath,
		http.MethodDelete: a.logoutSession,
	})))
	mux.Handle("/sessions/{id}/qr", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodGet: a.getQRByPath,
	})))
	mux.Handle("/sessions/{id}/messages", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodPost: a.sendMessage,
	})))
	mux.Handle("/sessions/{id}/messages/{message_id}/media", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodGet: a.getMedia,
	})))
	mux.Handle("/dead-letters", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodGet: a.listDeadLetters,
	})))
	mux.Handle("/dead-letters/redrive", a.auth(a.methods(map[string]http.HandlerFunc{
		http.MethodPost: a.redriveDeadLetters,
	})))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	for _, r := range cfg.Routes {
		h := r.Handler
		if !r.Public {
			h = a.auth(h)
		}
		mux.Handle(r.Pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return a, mux, nil
}

// NewServer returns an http.Server for h on addr with timeouts set, so a slow or idle client
// cannot hold a connection forever.
func NewServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// ---- middleware ----

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.authorized(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// authorized checks the bearer token without allocating or hashing; on a missing or wrong
// token it has answered 401 and returns false.
func (a *api) authorized(w http.ResponseWriter, r *http.Request) bool {
	if token, ok := bearerToken(r); !ok || !tokenMatches(token, a.cfg.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wagate"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
		return false
	}
	return true
}

// bearerToken returns the token of r's "Authorization: Bearer <token>" header (the scheme in
// either case, surrounding spaces trimmed); ok is false without one. It allocates nothing.
func bearerToken(r *http.Request) (token string, ok bool) {
	var h string
	if v := r.Header["Authorization"]; len(v) > 0 { // the server canonicalises header names
		h = v[0]
	}
	token, ok = strings.CutPrefix(h, "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(h, "bearer ")
	}
	return strings.TrimSpace(token), ok
}

// tokenMatches reports whether got is want, in time that depends only on len(want): every byte
// of want is compared, the length check is folded into the result (crypto/subtle's
// ConstantTimeCompare returns early on a length mismatch and needs []byte conversions).
func tokenMatches(got, want string) bool {
	var diff byte
	for i := 0; i < len(want); i++ {
		var c byte
		if i < len(got) {
			c = got[i]
		}
		diff |= c ^ want[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0)&subtle.ConstantTimeEq(int32(min(len(got), 1<<30)), int32(len(want))) == 1
}

// Patterns of the two polled reads, as ServeMux names them in Request.Pattern.
const (
	sessionPattern = "/sessions/{id}"
	qrPattern      = "/sessions/{id}/qr"
)

// routeReads serves the two polled reads, GET or HEAD /sessions/{id} and /sessions/{id}/qr,
// without ServeMux, whose wildcard matching allocates on every request; it sets
// Request.Pattern as the mux would. Every other request, and any path the mux might treat
// differently (escaped, not clean, an id that is not valid), goes to mux.
func (a *api) routeReads(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if id, qr, ok := sessionReadPath(r.URL); ok {
				if qr {
					r.Pattern = qrPattern
				} else {
					r.Pattern = sessionPattern
				}
				if !a.authorized(w, r) {
					return
				}
				if qr {
					a.getQR(w, r, id)
				} else {
					a.getSession(w, r, id)
				}
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// sessionReadPath matches /sessions/{id} and /sessions/{id}/qr for a valid, unescaped id.
func sessionReadPath(u *url.URL) (id string, qr, ok bool) {
	if u.RawPath != "" {
		return "", false, false
	}
	rest, ok := strings.CutPrefix(u.Path, "/sessions/")
	if !ok {
		return "", false, false
	}
	id, qr = strings.CutSuffix(rest, "/qr")
	return id, qr, laravel.ValidSessionID(id)
}

func (a *api) methods(handlers map[string]http.HandlerFunc) http.Handler {
	allowed := make([]string, 0, len(handlers))
	for m := range handlers {
		allowed = append(allowed, m)
	}
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = handlers[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
			return
		}
		h(w, r)
	})
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

// WriteHeader records the first status code.
func (s *statusWriter) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.written {
		s.code, s.written = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// statusWriters recycles observe's statusWriters: one per request otherwise.
var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

func (a *api) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		code := sw.code
		*sw = statusWriter{}
		statusWriters.Put(sw) // not reached when a handler panics through: the GC has it
		if a.cfg.ObserveRequest != nil {
			route := r.Pattern
			if route == "" || route == "/" {
				route = "other"
			}
			a.cfg.ObserveRequest(route, r.Method, code, time.Since(start))
		}
	})
}

func (a *api) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w, code: http.StatusOK}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("panic in API handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			if !sw.written {
				writeError(sw, http.StatusInternalServerError, "internal", "internal error")
			} else {
				sw.code = http.StatusInternalServerError
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// ---- handlers ----

type startRequest struct {
	SessionID string `json:"session_id"`
}

func (a *api) startSession(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	var body *bytes.Buffer
	if a.cfg.Locator != nil { // keep the body as read, to forward it to the session's holder
		body = new(bytes.Buffer)
		r.Body = readCloser{io.TeeReader(r.Body, body), r.Body}
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	if !laravel.ValidSessionID(req.SessionID) {
		writeError(w, http.StatusBadRequest, "invalid_session_id", "session_id must match ^[A-Za-z0-9_-]{1,64}$")
		return
	}
	if body != nil {
		r.Body = io.NopCloser(body)
		if a.routed(w, r, req.SessionID) {
			return
		}
	}
	info, err := a.cfg.Sessions.Start(r.Context(), req.SessionID)
	if err != nil {
		a.sessionError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(info, nil, ""))
}

type listResponse struct {
	Sessions   []sessionJSON `json:"sessions"`
	NextCursor string        `json:"next_cursor"`
}

func (a *api) listSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			writeError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", MaxPageSize))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !laravel.ValidSessionID(after) {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "after must be a session id from next_cursor")
		return
	}
	infos, next, err := a.cfg.Reader.List(r.Context(), after, limit)
	if err != nil {
		a.sessionError(w, r, err)
		return
	}
	out := listResponse{Sessions: make([]sessionJSON, 0, len(infos)), NextCursor: next}
	for _, in := range infos {
		out.Sessions = append(out.Sessions, sessionView(in, nil, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getSessionByPath(w http.ResponseWriter, r *http.Request) {
	a.getSession(w, r, r.PathValue("id"))
}

func (a *api) getSession(w http.ResponseWriter, r *http.Request, rawID string) {
	id, info, ok := a.readSession(w, r, rawID)
	if !ok {
		return
	}
	active, err := a.cfg.Activity.IsSessionActive(r.Context(), id)
	if err != nil {
		a.log.Warn("isSessionActive failed", "session_id", id, "err", err)
		v := sessionView(info, nil, "isSessionActive unavailable: the Laravel lookup failed")
		writeSession(w, http.StatusOK, &v)
		return
	}
	v := sessionView(info, sharedBool(active), "")
	writeSession(w, http.StatusOK, &v)
}

// Shared answers for sessionJSON.Active: a pointer to a local would move it to the heap on
// every status read. Never modified.
var (
	sharedTrue  = true
	sharedFalse = false
)

func sharedBool(v bool) *bool {
	if v {
		return &sharedTrue
	}
	return &sharedFalse
}

type qrJSON struct {
	SessionID string    `json:"session_id"`
	QR        string    `json:"qr"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *api) getQRByPath(w http.ResponseWriter, r *http.Request) {
	a.getQR(w, r, r.PathValue("id"))
}

func (a *api) getQR(w http.ResponseWriter, r *http.Request, rawID string) {
	id, info, ok := a.readSession(w, r, rawID)
	if !ok {
		return
	}
	w.Header()["Cache-Control"] = noStore
	if info.QR == "" {
		writeError(w, http.StatusNotFound, "qr_not_available",
			fmt.Sprintf("session is %s and has no QR code to show; POST /sessions starts a new pairing", info.Status))
		return
	}
	if wantsPNG(r) {
		png, err := a.pngs.get(info.QR)
		if err != nil {
			a.log.Error("QR PNG encoding failed", "session_id", id, "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not render the QR code")
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(len(png)))
		if !info.QRExpiresAt.IsZero() {
			w.Header().Set("X-QR-Expires-At", info.QRExpiresAt.UTC().Format(time.RFC3339))
		}
		_, _ = w.Write(png)
		return
	}
	writeQR(w, http.StatusOK, &qrJSON{SessionID: id, QR: info.QR, ExpiresAt: info.QRExpiresAt.UTC()})
}

// wantsPNG says whether the client asked for the QR code as a PNG: ?format=png, or image/png in
// Accept (?format=json wins over Accept). It allocates nothing for a request without a query.
func wantsPNG(r *http.Request) bool {
	if r.URL.RawQuery != "" {
		switch r.URL.Query().Get("format") {
		case "png":
			return true
		case "json":
			return false
		}
	}
	for rest, more := r.Header.Get("Accept"), true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "image/png") {
			return true
		}
	}
	return false
}

// phonePattern is an E.164 number: country code first, 7 to 15 digits, an optional leading +.
var phonePattern = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)

func (a *api) logoutSession(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok || a.routed(w, r, id) {
		return
	}
	info, err := a.cfg.Sessions.Logout(r.Context(), id)
	if err != nil {
		a.sessionError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(info, nil, ""))
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyResponse struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Warnings []string          `json:"warnings,omitempty"`
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	out := readyResponse{Status: "ready", Checks: make(map[string]string, len(a.cfg.Ready)), Warnings: a.cfg.Warnings}
	code := http.StatusOK
	for _, c := range a.cfg.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.CheckTimeout)
		err := c.Check(ctx)
		cancel()
		if err != nil {
			out.Checks[c.Name] = err.Error()
			out.Status = "not_ready"
			code = http.StatusServiceUnavailable
		} else {
			out.Checks[c.Name] = "ok"
		}
	}
	writeJSON(w, code, out)
}

// ---- helpers ----

type sessionJSON struct {
	SessionID   string         `json:"session_id"`
	Status      laravel.Status `json:"status"`
	Active      *bool          `json:"active,omitempty"`
	ActiveError string         `json:"active_error,omitempty"`
	Connected   bool           `json:"connected"`
	Paired      bool           `json:"paired"`
	HasQR       bool           `json:"has_qr"`
	QRExpiresAt time.Time      `json:"qr_expires_at,omitzero"`
	Version     int64          `json:"version"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

func sessionView(in session.Info, active *bool, activeErr string) sessionJSON {
	out := sessionJSON{
		SessionID:   in.SessionID,
		Status:      in.Status,
		Active:      active,
		ActiveError: activeErr,
		Connected:   in.Connected,
		Paired:      in.Paired,
		HasQR:       in.QR != "",
		Version:     in.Version,
		UpdatedAt:   in.UpdatedAt.UTC(),
	}
	if !in.QRExpiresAt.IsZero() {
		out.QRExpiresAt = in.QRExpiresAt.UTC()
	}
	return out
}

// readSession reads the session rawID names (from the request's path); on a bad id or a read
// error it has already answered and returns ok == false.
func (a *api) readSession(w http.ResponseWriter, r *http.Request, rawID string) (id string, info session.Info, ok bool) {
	if id, ok = validID(w, rawID); !ok {
		return "", info, false
	}
	if a.cfg.ForwardReads && a.routed(w, r, id) {
		return "", info, false
	}
	info, err := a.cfg.Reader.Get(r.Context(), id)
	if err != nil {
		a.sessionError(w, r, err)
		return "", info, false
	}
	return id, info, true
}

func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return validID(w, r.PathValue("id"))
}

// validID returns id when it is a valid session id; otherwise it has answered 400.
func validID(w http.ResponseWriter, id string) (string, bool) {
	if !laravel.ValidSessionID(id) {
		writeError(w, http.StatusBadRequest, "invalid_session_id", "session id must match ^[A-Za-z0-9_-]{1,64}$")
		return "", false
	}
	return id, true
}

// readJSON decodes a JSON body of at most MaxBodyBytes into v, answering 4xx on failure.
func (a *api) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// Exactly one JSON value: trailing garbage is malformed too.
		var extra json.RawMessage
		if dec.Decode(&extra) == nil {
			err = errors.New("more than one JSON value")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is over %d bytes", MaxBodyBytes))
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusBadRequest, "request_cancelled", "request cancelled")
	default:
		writeError(w, http.StatusBadRequest, "invalid_json", "request body must be one JSON object: "+jsonProblem(err))
	}
	return false
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return err.Error()
}

func (a *api) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, session.ErrNotFound):
		writeError(w, http.StatusNotFound, "session_not_found", "no session with this id; POST /sessions creates it")
	case errors.Is(err, session.ErrInvalidID):
		writeError(w, http.StatusBadRequest, "invalid_session_id", "session id must match ^[A-Za-z0-9_-]{1,64}$")
	case errors.Is(err, session.ErrNotConnected):
		writeError(w, http.StatusConflict, "session_not_connected", "the session's WhatsApp connection is not up")
	case errors.Is(err, session.ErrBusy):
		writeError(w, http.StatusConflict, "session_busy", "the session changed while the request ran; try again")
	case errors.Is(err, session.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the gateway is shutting down")
	case errors.Is(err, session.ErrNotOwner):
		// Cluster mode: the session's shard moved between routing and acting on it.
		w.Header().Set("Retry-After", RetryAfterMoving)
		writeError(w, http.StatusServiceUnavailable, "session_moving", "this session is moving to another gateway replica")
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusBadRequest, "request_cancelled", "request cancelled")
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "whatsapp_error", "the WhatsApp side failed: "+err.Error())
	}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// WriteError answers the API's error body ({"error": {"code", "message"}}) for the extra Routes
// the gateway's wiring mounts. code must be a string literal at the call: openapi_test reads the
// codes of these calls too, and each must be a value of the spec's ErrorCode enum.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
