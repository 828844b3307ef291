package fakelaravel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/laravel"
)

// Defaults of Config.
const (
	DefaultSeriesSeconds = 600
	maxIdempotencyKeyLen = 255
)

// Config configures a Server. Token is required; every other zero value takes a default.
type Config struct {
	// Token is the bearer token every /api request must carry.
	Token string
	// AdminToken protects /_fake/ (except /_fake/healthz); empty means Token.
	AdminToken string
	// Secret, when set, makes every POST carry a valid X-Wagate-Signature and X-Wagate-Timestamp.
	Secret []byte
	// SignatureSkew is how far a signed timestamp may be from now (default laravel.DefaultSignatureSkew).
	SignatureSkew time.Duration
	// RequireSignatureV2 refuses POSTs without a v2 signature (X-Wagate-Signature-V2); otherwise
	// v1 is accepted too, as during the migration (docs/security.md). An accepted v2 signature
	// seen again within the skew window is refused as a replay either way.
	RequireSignatureV2 bool
	// DBPath is the SQLite file; empty means a temporary file removed on Close.
	DBPath string
	// Capacity is the PHP-FPM model; the zero value means DefaultCapacityModel().
	Capacity CapacityModel
	// Faults are the faults injected from the start.
	Faults Faults
	// MaxItems is the largest batch accepted (default laravel.MaxBatchItems).
	MaxItems int
	// MaxBodyBytes is the largest body accepted, as nginx's client_max_body_size (default
	// laravel.MaxBodyBytes); larger bodies get 413 without reaching a worker.
	MaxBodyBytes int64
	// RejectUnknownSessions makes writes for a session that does not exist fail (a failed batch
	// item, a 404 for legacy writes) instead of creating the session.
	RejectUnknownSessions bool
	// SeriesSeconds is how many seconds of per-second series Stats keeps (default 600).
	SeriesSeconds int
	// Seed seeds the jitter and fault draws, for reproducible runs.
	Seed uint64
	// Logger receives start-up, shutdown and error messages (default slog.Default()); never secrets.
	Logger *slog.Logger
	// Upstream, when set, makes the Server the measuring front of a real Laravel app: /api is
	// forwarded to it instead of served here (Token, Secret, DBPath, Capacity, MaxItems and
	// RejectUnknownSessions are then the real app's business and ignored).
	Upstream *Upstream
}

// Server is fakelaravel: an http.Handler implementing the Laravel contract on SQLite behind the
// capacity model, with the admin API under /_fake/ and Prometheus metrics under /metrics.
type Server struct {
	cfg         Config
	log         *slog.Logger
	store       *store
	pool        *fpmPool     // the capacity model; serves /api unless upstream is set
	upstream    *upstreamApp // the real app /api is forwarded to, or nil
	workers     workerView   // pool or upstream, for Stats and /metrics
	faults      *faultState
	changed     chan struct{} // signalled when faults change, for the down-window watcher
	stats       atomic.Pointer[statsBook]
	metrics     *metrics
	tokenSum    [32]byte
	adminSum    [32]byte
	signatures  *laravel.SignatureVerifier // nil without a secret
	listener    atomic.Pointer[switchListener]
	inflightM   sync.Mutex
	inflight    map[string]struct{}
	stopSampler context.CancelFunc
	samplerDone chan struct{}
}

// New opens the database, creates the schema and starts the worker pool.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Upstream != nil {
		if err := cfg.Upstream.validate(); err != nil {
			return nil, fmt.Errorf("fakelaravel: %w", err)
		}
		if cfg.Token == "" {
			cfg.Token = cfg.AdminToken // the real app checks the /api token; this one is unused
		}
	}
	if cfg.Token == "" {
		return nil, errors.New("fakelaravel: a token is required")
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = cfg.Token
	}
	if cfg.SignatureSkew <= 0 {
		cfg.SignatureSkew = laravel.DefaultSignatureSkew
	}
	if cfg.Capacity == (CapacityModel{}) {
		cfg.Capacity = DefaultCapacityModel()
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = laravel.MaxBatchItems
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = laravel.MaxBodyBytes
	}
	if cfg.SeriesSeconds <= 0 {
		cfg.SeriesSeconds = DefaultSeriesSeconds
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("fakelaravel: %w", err)
	}
	if cfg.Upstream != nil {
		if err := checkFaultsForUpstream(cfg.Faults); err != nil {
			return nil, fmt.Errorf("fakelaravel: %w", err)
		}
	}
	pool, err := newPool(cfg.Capacity, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("fakelaravel: %w", err)
	}
	var st *store
	if cfg.Upstream != nil {
		st, err = openReadOnlyStore(ctx, cfg.Upstream.DBPath)
	} else {
		st, err = openStore(ctx, cfg.DBPath)
	}
	if err != nil {
		pool.close()
		return nil, fmt.Errorf("fakelaravel: %w", err)
	}
	now := time.Now()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    st,
		pool:     pool,
		faults:   newFaultState(cfg.Faults, now, cfg.Seed),
		changed:  make(chan struct{}, 1),
		tokenSum: sha256.Sum256([]byte(cfg.Token)),
		adminSum: sha256.Sum256([]byte(cfg.AdminToken)),
		inflight: map[string]struct{}{},
	}
	if len(cfg.Secret) > 0 {
		s.signatures = &laravel.SignatureVerifier{
			Secrets: [][]byte{cfg.Secret}, Skew: cfg.SignatureSkew, RequireV2: cfg.RequireSignatureV2,
			Replay: laravel.NewReplayGuard(0),
		}
	}
	s.workers = poolView{pool}
	if cfg.Upstream != nil {
		s.upstream = newUpstreamApp(*cfg.Upstream)
		s.workers = s.upstream
	}
	s.stats.Store(newStatsBook(now, cfg.SeriesSeconds))
	s.metrics = newMetrics(s.workers, s.isDown)
	samplerCtx, stopSampler := context.WithCancel(context.WithoutCancel(ctx))
	s.stopSampler, s.samplerDone = stopSampler, make(chan struct{})
	go s.sampleWorkers(samplerCtx)
	return s, nil
}

// sampleWorkers records the pool's busy workers and backlog every 100 ms for Stats.
func (s *Server) sampleWorkers(ctx context.Context) {
	defer close(s.samplerDone)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.stats.Load().sample(now, s.workers.busyNow(), s.workers.queuedNow())
		}
	}
}

// Close stops the worker pool and closes the database.
func (s *Server) Close() error {
	s.stopSampler()
	<-s.samplerDone
	s.pool.close()
	if s.upstream != nil {
		s.upstream.close()
	}
	return s.store.close()
}

// Capacity returns the capacity model in effect.
func (s *Server) Capacity() CapacityModel { return s.cfg.Capacity }

// DBPath returns the SQLite file in use.
func (s *Server) DBPath() string { return s.store.path }

func (s *Server) isDown() bool {
	down, _ := s.faults.down(time.Now())
	return down
}

// SetFaults replaces the injected faults; down windows count from now.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if s.upstream != nil {
		if err := checkFaultsForUpstream(f); err != nil {
			return err
		}
	}
	s.faults.set(f, time.Now())
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// Faults returns the faults in effect.
func (s *Server) Faults() Faults { return s.faults.get() }

// Stats returns the counters since start (or the last reset).
func (s *Server) Stats() Stats { return s.StatsRecent(-1) }

// StatsRecent is Stats with only the last seconds seconds of per-second series (none for 0, all
// kept for a negative value).
func (s *Server) StatsRecent(seconds int) Stats {
	now := time.Now()
	st := s.stats.Load().snapshot(now, seconds)
	st.Capacity = s.cfg.Capacity.Calibrated()
	if s.upstream != nil {
		st.Capacity = CalibratedModel{}
		st.Upstream = s.upstream.cfg.URL
	}
	book := s.stats.Load()
	busy := time.Duration(s.workers.busyNanosTotal() - book.busyBase)
	n := s.workers.count()
	st.Workers = WorkerStats{
		Workers:     n,
		Busy:        s.workers.busyNow(),
		Queued:      s.workers.queuedNow(),
		BusySeconds: busy.Seconds(),
		Abandoned:   s.workers.abandonedTotal() - book.abandonedBase,
		Series:      s.stats.Load().workerSeries(now, n, seconds),
	}
	if up := now.Sub(book.started); up > 0 && n > 0 {
		st.Workers.Utilization = min(1, busy.Seconds()/(float64(n)*up.Seconds()))
	}
	st.Down = s.isDown()
	return st
}

// State is the answer of GET /_fake/state: every session as stored, for ground-truth comparison.
type State struct {
	Sessions []SessionState `json:"sessions"`
}

// State returns every session ordered by session_id.
func (s *Server) State(ctx context.Context) (State, error) {
	ss, err := s.store.sessions(ctx)
	if err != nil {
		return State{}, err
	}
	return State{Sessions: ss}, nil
}

// Reset deletes every session and processed batch and restarts the stats; the Prometheus
// counters keep running.
func (s *Server) Reset(ctx context.Context) error {
	if s.upstream != nil {
		return fmt.Errorf("reset: %w (restart it, e.g. make laravel-up)", ErrUpstreamOnly)
	}
	if err := s.store.reset(ctx); err != nil {
		return err
	}
	book := newStatsBook(time.Now(), s.cfg.SeriesSeconds)
	book.busyBase, book.abandonedBase = s.workers.busyNanosTotal(), s.workers.abandonedTotal()
	s.stats.Store(book)
	return nil
}

// ServeHTTP routes /api (the contract), /_fake (admin) and /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.serveAPI(w, r)
	case strings.HasPrefix(r.URL.Path, "/_fake/"):
		s.serveAdmin(w, r)
	case r.URL.Path == "/metrics":
		s.metrics.handler().ServeHTTP(w, r)
	default:
		writeJSON(w, http.StatusNotFound, laravel.ErrorBody{Message: "Not Found"}, nil)
	}
}

// response is what the application (a worker) answers.
type response struct {
	status                        int
	body                          []byte
	header                        http.Header
	replayed                      bool
	applied                       bool // a write was committed
	items, updated, stale, failed int
}

func jsonResponse(status int, v any) *response {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"message":"Server Error"}`)
		status = http.StatusInternalServerError
	}
	return &response{status: status, body: b}
}

func messageResponse(status int, msg string) *response {
	return jsonResponse(status, laravel.ErrorBody{Message: msg})
}

// apiRequest is everything the application needs from the HTTP request, copied before the
// request is handed to a worker (the worker may outlive the handler).
type apiRequest struct {
	method, path, endpoint string
	auth, sig, ts, idemKey string
	sigV2, nonce, target   string // the v2 signature, its nonce and the request target it covers
	body                   []byte
	header                 http.Header // all of them, kept only in front of a real app (Upstream)
}

func endpointOf(path string) string {
	if ep := messageEndpointOf(path); ep != "" {
		return ep
	}
	switch {
	case path == laravel.PathQR:
		return EndpointQR
	case path == laravel.PathStatus:
		return EndpointStatus
	case path == laravel.PathQRBatch:
		return EndpointQRBatch
	case path == laravel.PathStatusBatch:
		return EndpointStatusBatch
	case strings.HasPrefix(path, laravel.PathSessionPrefix):
		return EndpointSession
	}
	return EndpointOther
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if s.isDown() {
		// Served by Serve the listener refuses connections; a bare handler drops them.
		s.countInjected(FaultDown, "")
		panic(http.ErrAbortHandler)
	}
	rec := record{endpoint: endpointOf(r.URL.Path), arrived: time.Now()}
	var body []byte
	var err error
	if r.ContentLength > s.cfg.MaxBodyBytes {
		// nginx answers from Content-Length before reading the body.
		err = &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			rec.status = http.StatusRequestEntityTooLarge
			s.finish(rec)
			writeJSON(w, rec.status, laravel.ErrorBody{Message: fmt.Sprintf("Request Entity Too Large: the body exceeds %d bytes.", s.cfg.MaxBodyBytes)}, nil)
			return
		}
		// The client went away while sending its body.
		rec.status = 499
		s.finish(rec)
		return
	}
	req := apiRequest{
		method: r.Method, path: r.URL.Path, endpoint: rec.endpoint,
		auth: r.Header.Get("Authorization"), sig: r.Header.Get(laravel.HeaderSignature),
		ts: r.Header.Get(laravel.HeaderTimestamp), idemKey: r.Header.Get(laravel.HeaderIdempotencyKey),
		sigV2: r.Header.Get(laravel.HeaderSignatureV2), nonce: r.Header.Get(laravel.HeaderNonce),
		target: laravel.Incoming(r, nil).Target, body: body,
	}
	var res poolResult
	if s.upstream != nil {
		req.header = r.Header
		res = s.serveUpstream(r.Context(), req)
	} else {
		// Reads (the session lookup) cost the model's LookupCPU, writes its BootstrapCPU.
		res = s.pool.do(r.Context(), r.Method == http.MethodGet, func(ctx context.Context, burn func(int)) *response { return s.app(ctx, req, burn) })
	}
	rec.outcome, rec.queueWait, rec.service = res.outcome, res.queueWait, res.service
	rec.queueHidden = s.upstream != nil
	switch res.outcome {
	case outcomeRejected, outcomeStopped:
		rec.status = http.StatusBadGateway
		s.finish(rec)
		writeJSON(w, rec.status, laravel.ErrorBody{Message: "Bad Gateway"}, nil)
		return
	case outcomeTimedOut:
		rec.status = http.StatusGatewayTimeout
		s.finish(rec)
		writeJSON(w, rec.status, laravel.ErrorBody{Message: "Gateway Timeout"}, nil)
		return
	case outcomeCanceled:
		rec.status = 499 // nginx's "client closed request"
		s.finish(rec)
		return
	}
	resp := res.resp
	rec.served = true
	rec.status = resp.status
	rec.items, rec.updated, rec.stale, rec.failed, rec.replayed = resp.items, resp.updated, resp.stale, resp.failed, resp.replayed
	if resp.applied {
		if mode := s.answerFaults(rec.endpoint, resp); mode != "" {
			s.finish(rec)
			if mode == LostResponseEmpty {
				w.Header().Set("Content-Length", "0")
				w.WriteHeader(http.StatusOK)
				return
			}
			panic(http.ErrAbortHandler)
		}
	}
	s.finish(rec)
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.status)
	w.Write(resp.body) //nolint:errcheck // the client may be gone; nothing to do
}

func (s *Server) finish(r record) {
	s.stats.Load().add(time.Now(), r)
	s.metrics.observe(r)
}

// authorized compares the bearer token in constant time (hashes first, so the length of the
// token does not leak either).
func authorized(header string, want [32]byte) bool {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// app is the Laravel application: middleware (auth, signature, injected faults) then the route.
func (s *Server) app(ctx context.Context, req apiRequest, burn func(int)) *response {
	if resp := s.authenticate(req); resp != nil {
		return resp
	}
	return s.withFaults(ctx, req.endpoint, func() *response { return s.route(ctx, req, burn) })
}

// authenticate is the bearer-token and signature middleware: nil lets the request through.
func (s *Server) authenticate(req apiRequest) *response {
	book := s.stats.Load()
	if !authorized(req.auth, s.tokenSum) {
		book.count(&book.authFailures)
		s.metrics.authFailures.Inc()
		return messageResponse(http.StatusUnauthorized, "Unauthenticated.")
	}
	if s.signatures != nil && req.method == http.MethodPost {
		_, err := s.signatures.Verify(laravel.IncomingRequest{
			Method: req.method, Target: req.target, IdempotencyKey: req.idemKey, Timestamp: req.ts,
			Signature: req.sig, SignatureV2: req.sigV2, Nonce: req.nonce, Body: req.body,
		}, time.Now())
		if errors.Is(err, laravel.ErrReplayGuardFull) {
			return messageResponse(http.StatusServiceUnavailable, "Replay guard full: try again later.")
		}
		if err != nil {
			book.count(&book.sigFailures)
			s.metrics.signatureFailures.Inc()
			return messageResponse(http.StatusUnauthorized, "Invalid signature: "+err.Error()+".")
		}
	}
	return nil
}

func methodNotAllowed(method, allowed string) *response {
	resp := messageResponse(http.StatusMethodNotAllowed,
		fmt.Sprintf("The %s method is not supported for this route. Supported methods: %s.", method, allowed))
	resp.header = http.Header{"Allow": {allowed}}
	return resp
}

func (s *Server) route(ctx context.Context, req apiRequest, burn func(int)) *response {
	switch req.endpoint {
	case EndpointSession:
		if req.method != http.MethodGet && req.method != http.MethodHead {
			return methodNotAllowed(req.method, "GET, HEAD")
		}
		return s.getSession(ctx, strings.TrimPrefix(req.path, laravel.PathSessionPrefix), burn)
	case EndpointOther:
		return messageResponse(http.StatusNotFound, "Not Found")
	}
	if req.method != http.MethodPost {
		return methodNotAllowed(req.method, "POST")
	}
	if resp := s.routeMessages(ctx, req, burn); resp != nil {
		return resp
	}
	switch req.endpoint {
	case EndpointQR:
		u, verr := DecodeQRUpdate(req.body)
		if verr != nil {
			return jsonResponse(http.StatusUnprocessableEntity, verr)
		}
		return s.legacyWrite(ctx, kindQR, u.SessionID, u.QR, burn)
	case EndpointStatus:
		u, verr := DecodeStatusUpdate(req.body)
		if verr != nil {
			return jsonResponse(http.StatusUnprocessableEntity, verr)
		}
		return s.legacyWrite(ctx, kindStatus, u.SessionID, string(u.EstadoQR), burn)
	case EndpointQRBatch:
		return s.batch(ctx, kindQR, req, burn)
	default:
		return s.batch(ctx, kindStatus, req, burn)
	}
}

func (s *Server) getSession(ctx context.Context, id string, burn func(int)) *response {
	if !laravel.ValidSessionID(id) {
		return messageResponse(http.StatusNotFound, "Session not found.")
	}
	burn(1)
	st, err := s.store.session(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return messageResponse(http.StatusNotFound, "Session not found.")
	}
	if err != nil {
		s.log.Error("fakelaravel: read session", "err", err)
		return messageResponse(http.StatusInternalServerError, "Server Error")
	}
	return jsonResponse(http.StatusOK, st.info())
}

// info converts a stored session to the contract's SessionInfo.
func (st SessionState) info() laravel.SessionInfo {
	updated, _ := time.Parse(timeLayout, st.UpdatedAt)
	return laravel.SessionInfo{
		SessionID:     st.SessionID,
		EstadoQR:      st.EstadoQR,
		Enabled:       st.Enabled,
		Active:        st.Enabled && st.EstadoQR == laravel.StatusConnected,
		QR:            st.QR,
		StatusVersion: st.StatusVersion,
		QRVersion:     st.QRVersion,
		UpdatedAt:     updated.UTC(),
	}
}

func (s *Server) legacyWrite(ctx context.Context, kind batchKind, sessionID, value string, burn func(int)) *response {
	burn(1)
	if resp := s.refuseLegacyWrite(kind, sessionID); resp != nil {
		return resp
	}
	err := s.store.setLegacy(ctx, kind, sessionID, value, !s.cfg.RejectUnknownSessions, time.Now())
	if errors.Is(err, errUnknownSession) {
		resp := messageResponse(http.StatusNotFound, "Session not found.")
		resp.items, resp.failed = 1, 1
		return resp
	}
	if err != nil {
		s.log.Error("fakelaravel: legacy write", "err", err)
		return messageResponse(http.StatusInternalServerError, "Server Error")
	}
	resp := jsonResponse(http.StatusOK, laravel.Ack{Success: true})
	resp.applied, resp.items, resp.updated = true, 1, 1
	return resp
}

// acquire marks key as in flight; false when it already is.
func (s *Server) acquire(key string) bool {
	s.inflightM.Lock()
	defer s.inflightM.Unlock()
	if _, busy := s.inflight[key]; busy {
		return false
	}
	s.inflight[key] = struct{}{}
	return true
}

func (s *Server) release(key string) {
	s.inflightM.Lock()
	delete(s.inflight, key)
	s.inflightM.Unlock()
}

// claimBatch runs a batch's Idempotency-Key steps: the key is required and bounded (422), one
// request per key at a time (409), a processed key replays its response or, with a different
// body, is refused (422). done is the answer when the batch must not be applied (the key is
// then not held); otherwise rec describes the batch and the caller holds rec.key until it
// calls s.release(rec.key).
func (s *Server) claimBatch(ctx context.Context, req apiRequest) (rec *batchRecord, done *response) {
	key := strings.TrimSpace(req.idemKey)
	switch {
	case key == "":
		return nil, validation(laravel.HeaderIdempotencyKey, "The Idempotency-Key header is required.")
	case len(key) > maxIdempotencyKeyLen:
		return nil, validation(laravel.HeaderIdempotencyKey, fmt.Sprintf("The Idempotency-Key header may not be greater than %d characters.", maxIdempotencyKeyLen))
	}
	sum := sha256.Sum256(append([]byte(req.endpoint+"\n"), req.body...))
	fingerprint := hex.EncodeToString(sum[:])
	if !s.acquire(key) {
		resp := messageResponse(http.StatusConflict, "A request with this Idempotency-Key is already being processed.")
		resp.header = http.Header{"Retry-After": {"1"}}
		return nil, resp
	}
	stored, err := s.store.lookupBatch(ctx, key)
	if err != nil {
		s.release(key)
		s.log.Error("fakelaravel: idempotency lookup", "err", err)
		return nil, messageResponse(http.StatusInternalServerError, "Server Error")
	}
	if stored != nil {
		s.release(key)
		if stored.fingerprint != fingerprint {
			return nil, validation(laravel.HeaderIdempotencyKey, "The Idempotency-Key was already used with a different request body.")
		}
		return nil, &response{status: stored.status, body: stored.response, replayed: true,
			header: http.Header{"Idempotent-Replayed": {"true"}}}
	}
	return &batchRecord{key: key, endpoint: req.endpoint, fingerprint: fingerprint}, nil
}

func validation(field, msg string) *response {
	return jsonResponse(http.StatusUnprocessableEntity, laravel.ValidationError{
		Message: validationMessage, Errors: map[string][]string{field: {msg}},
	})
}

// batch applies a QR or status batch: Idempotency-Key (replay, 409 in flight, 422 on a different
// body), validation (422, nothing applied), then one transaction with the version guard.
func (s *Server) batch(ctx context.Context, kind batchKind, req apiRequest, burn func(int)) *response {
	rec, done := s.claimBatch(ctx, req)
	if done != nil {
		return done
	}
	defer s.release(rec.key)
	var rows []versionedRow
	if kind == kindStatus {
		b, verr := DecodeStatusBatch(req.body, s.cfg.MaxItems)
		if verr != nil {
			return jsonResponse(http.StatusUnprocessableEntity, verr)
		}
		rows = make([]versionedRow, len(b.Statuses))
		for i, it := range b.Statuses {
			rows[i] = versionedRow{sessionID: it.SessionID, value: string(it.EstadoQR), version: it.Version, at: it.ChangedAt}
		}
	} else {
		b, verr := DecodeQRBatch(req.body, s.cfg.MaxItems)
		if verr != nil {
			return jsonResponse(http.StatusUnprocessableEntity, verr)
		}
		rows = make([]versionedRow, len(b.QRs))
		for i, it := range b.QRs {
			rows[i] = versionedRow{sessionID: it.SessionID, value: it.QR, version: it.Version, at: it.GeneratedAt}
		}
	}
	burn(len(rows))
	apply, held, refused := s.itemFaults(req.endpoint, rows)
	res, body, err := s.store.applyBatch(ctx, kind, apply, held, !s.cfg.RejectUnknownSessions,
		rec, time.Now())
	if err != nil {
		s.log.Error("fakelaravel: apply batch", "err", err)
		return messageResponse(http.StatusInternalServerError, "Server Error")
	}
	s.recordWithheld(held, refused)
	return &response{status: http.StatusOK, body: body, applied: true,
		items: len(rows), updated: res.Updated, stale: res.Stale, failed: res.Failed}
}

func writeJSON(w http.ResponseWriter, status int, v any, header http.Header) {
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client may be gone
}

// Serve serves on ln until ctx ends, then shuts down gracefully (in-flight requests get up to
// 10 s). During a down window it closes the listening socket, so new connections are refused,
// and closes the open ones; it listens again on the same address when the window ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	sl := newSwitchListener(ln)
	s.listener.Store(sl)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watchDown(watchCtx, sl)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sl) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fakelaravel: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("fakelaravel: shutdown: %w", err)
	}
	return nil
}

// watchDown opens and closes the listener at the edges of the down windows.
func (s *Server) watchDown(ctx context.Context, sl *switchListener) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		down, next := s.faults.down(time.Now())
		err := sl.setDown(down)
		if err != nil {
			s.log.Error("fakelaravel: down window", "down", down, "err", err)
		}
		wait := time.Hour
		switch {
		case err != nil:
			wait = 100 * time.Millisecond // listening again failed: retry shortly
		case !next.IsZero():
			wait = time.Until(next)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-t.C:
		}
	}
}
