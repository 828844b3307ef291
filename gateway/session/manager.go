package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/storage"
)

// Errors of the Manager; match them with errors.Is.
var (
	ErrNotFound     = errors.New("session: unknown session")
	ErrInvalidID    = errors.New("session: invalid session id")
	ErrNotConnected = errors.New("session: not connected to WhatsApp")
	ErrClosed       = errors.New("session: manager is shut down")
	ErrBusy         = errors.New("session: session changed while the request ran; try again")
	// ErrNotOwner (cluster mode): another replica holds the session's shard, or it is moving.
	ErrNotOwner = errors.New("session: this replica does not hold the session's shard")
)

// Store is what the manager needs from the session registry (storage.Registry).
type Store interface {
	Load(ctx context.Context) ([]storage.Record, error)
	Put(rec storage.Record)
	Flush(ctx context.Context) error
	NextEpoch(ctx context.Context, floor int64) (int64, error)
}

// Hooks are optional callbacks for metrics.
type Hooks struct {
	// EventEmitted is called for every event handed to the delivery queue.
	EventEmitted func(ev event.Event)
	// DeliveryFailed is called when the delivery did not accept an event.
	DeliveryFailed func(ev event.Event, err error)
	// EventDropped is called when an event is dropped: an old QR code pushed out of a full
	// per-session queue, a QR code a later event of its session superseded before the delivery
	// took it (DroppedSuperseded), or an event emitted during shutdown.
	EventDropped func(ev event.Event, reason string)
	// FencedWrite is called (cluster mode) for a write not made because this replica no longer
	// holds the session's shard: where is FencedEvent, FencedRegistry or FencedConnect.
	FencedWrite func(where string)
}

// Info is a snapshot of one session.
type Info struct {
	SessionID string         `json:"session_id"`
	Status    laravel.Status `json:"status"`
	// Paired says a device is linked (it survives restarts).
	Paired bool `json:"paired"`
	// Connected says the WhatsApp connection is up and logged in right now.
	Connected bool `json:"connected"`
	// QR is the code to show now (pending sessions only) and QRExpiresAt when it is replaced.
	QR          string    `json:"qr,omitempty"`
	QRExpiresAt time.Time `json:"qr_expires_at,omitzero"`
	// Version is the version of the session's latest event (0 before the first one).
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Manager runs the sessions. Its methods are safe for concurrent use.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	driver Driver
	store  Store
	sink   delivery.Delivery
	owner  Owner // cluster mode; nil in single-process mode
	// adoptMu (cluster mode): Adopt holds it to claim shards and read their sessions; Start
	// holds it shared while it checks ownership and creates the session.
	adoptMu sync.RWMutex

	ctx    context.Context // lives until Close: deliveries and WhatsApp connections
	cancel context.CancelFunc

	epochMu sync.Mutex
	epoch   int64

	mu       sync.RWMutex
	sessions map[string]*session
	ids      []string // sorted, for pagination
	// counts are the sessions by status and the live ones, kept on each transition (counts.go).
	counts *sessionCounts

	drainers  inflight
	closed    atomic.Bool
	restoring atomic.Int64
	// connects holds one slot per paired session's reconnect in flight, restores after a start
	// and reconnects after drops alike (Config.RestoreConcurrency slots; reconnect.go).
	connects chan struct{}
	// backoffs are the reconnects waiting in a backoff, which a login wakes early (earlywake.go).
	backoffs backoffWaits

	messagingOff sync.Once // warns once that the delivery drops messages (messages.go)

	// Dirty sessions: their latest state may not have reached the delivery (resync.go).
	dirtyMu     sync.Mutex
	dirty       map[*session]struct{}
	resyncTimer *time.Timer
	resyncAt    time.Time
	lastResync  time.Time
}

type session struct {
	id string

	mu       sync.Mutex
	created  time.Time
	updated  time.Time
	deviceID string
	status   laravel.Status
	parked   string // why a paired session is not reconnected (storage.Parked*); "" when it may be
	dropped  bool   // cluster mode: its shard was handed over or lost; nothing acts for it any more
	conn     Conn
	// loggedIn: conn reported its login (Connected) and has not been detached since.
	loggedIn bool
	// counted is what the manager's counts hold for the session (tally).
	counted  counted
	gen      uint64 // bumped whenever conn is replaced or dropped; stale events are ignored
	starting bool
	// redeliveryGen is the gen a redelivery left when it dropped the connection (redeliverLater):
	// while it is still s.gen, no connection of the session's was opened since.
	redeliveryGen uint64

	qrPending []string
	qrCurrent string
	qrExpires time.Time
	qrShown   int
	qrTimer   *time.Timer
	qrGen     uint64
	pairTimer *time.Timer
	// dropBackoff is how long the next reconnect waits after a connection that dropped before it
	// logged in (reconnect.go, nextReconnectBackoff); 0 once a connection logs in.
	dropBackoff time.Duration
	// pairing is the gen of the connection whose pairing the session accepted (PairRequested)
	// and whose outcome has not arrived yet; 0 for none (pairing.go).
	pairing uint64

	epoch   int64
	seq     int64
	version int64
	resync  bool // the next setStatus emits even when the status does not change (ResyncRestored)
	dirty   bool // an event of this session was refused by the delivery (or dropped at shutdown)

	outq     []event.Event
	draining bool
	// qrInFlight cancels the delivery of the QR code the drainer hands over, while it does: a
	// later event that supersedes the code (queue.go supersedesQR) cancels it.
	qrInFlight context.CancelCauseFunc

	msgs messaging // message and receipt events (messages.go)
}

// New creates a Manager; it reserves a version epoch in store. Call Restore next to bring back
// the sessions of a previous run.
func New(ctx context.Context, cfg Config, driver Driver, store Store, sink delivery.Delivery) (*Manager, error) {
	cfg.fill()
	epoch, err := store.NextEpoch(ctx, time.Now().Unix())
	if err != nil {
		return nil, fmt.Errorf("session: reserve version epoch: %w", err)
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		driver:   driver,
		store:    store,
		sink:     sink,
		owner:    cfg.Owner,
		ctx:      mctx,
		cancel:   cancel,
		epoch:    epoch,
		sessions: make(map[string]*session),
		counts:   newSessionCounts(),
		dirty:    make(map[*session]struct{}),
		connects: make(chan struct{}, cfg.RestoreConcurrency),
	}, nil
}

// Start starts a session: a paired session reconnects, an unpaired one begins a QR flow. Starting
// a session that is already running (or starting) changes nothing. The session is created when
// unknown. A paired session whose connect fails is kept and retried in the background, and
// returned as it is (startKept).
func (m *Manager) Start(ctx context.Context, id string) (Info, error) {
	if !laravel.ValidSessionID(id) {
		return Info{}, ErrInvalidID
	}
	if m.closed.Load() {
		return Info{}, ErrClosed
	}
	if m.owner == nil {
		return m.startKept(ctx, m.getOrCreate(id))
	}
	m.adoptMu.RLock()
	if _, _, held := m.owner.Epoch(id); !held {
		m.adoptMu.RUnlock()
		return Info{}, ErrNotOwner
	}
	s := m.getOrCreate(id)
	m.adoptMu.RUnlock()
	return m.startKept(ctx, s)
}

// start connects s. allowPairing says whether an unpaired session may begin a QR flow (false for
// the automatic reconnects after a restart).
func (m *Manager) start(ctx context.Context, s *session, allowPairing bool) (Info, error) {
	if m.owner != nil {
		if info, done, err := m.fenceStart(ctx, s); done {
			return info, err
		}
	}
	s.mu.Lock()
	if s.dropped {
		s.mu.Unlock()
		return Info{}, ErrNotOwner
	}
	if s.conn != nil || s.starting {
		info := m.info(s)
		s.mu.Unlock()
		return info, nil
	}
	if (s.deviceID == "" || s.parked != "") && !allowPairing {
		s.mu.Unlock()
		return Info{}, nil
	}
	if s.parked != "" {
		s.parked = "" // an explicit start takes the device back
		m.persist(s)
	}
	s.starting = true
	s.gen++
	gen := s.gen
	deviceID := s.deviceID
	pairing := deviceID == ""
	if pairing {
		m.beginPairing(s)
	}
	s.mu.Unlock()

	handle := func(ev DriverEvent) error { return m.handleEvent(s, gen, ev) }
	conn, err := m.driver.Open(ctx, s.id, deviceID, handle)
	if errors.Is(err, ErrDeviceNotFound) {
		// The device was deleted (unlinked while the gateway was down, or its data removed).
		m.log.Warn("paired device is gone from the store", "session_id", s.id)
		s.mu.Lock()
		s.deviceID = ""
		if !allowPairing {
			s.starting = false
			gone := laravel.StatusLoggedOut
			if s.status == laravel.StatusPending {
				// Recorded when a scan was accepted (pairing.go), never logged in, and not in the
				// store: the client failed to store or confirm it (a crash mid-pairing). The
				// phone saw the linking fail; the QR flow ended.
				gone = laravel.StatusExpired
			}
			m.setStatus(s, gone)
			m.persist(s)
			s.mu.Unlock()
			return Info{}, nil
		}
		pairing = true
		m.beginPairing(s)
		m.persist(s)
		s.mu.Unlock()
		conn, err = m.driver.Open(ctx, s.id, "", handle)
	}
	if err != nil {
		m.abortStart(s, gen, pairing)
		return Info{}, fmt.Errorf("session %s: open connection: %w", s.id, err)
	}
	s.mu.Lock()
	if s.gen != gen || m.closed.Load() {
		s.starting = false
		s.mu.Unlock()
		conn.Release()
		if m.closed.Load() {
			return Info{}, ErrClosed
		}
		return Info{}, ErrBusy
	}
	s.conn = conn
	s.loggedIn = false // its login is yet to come
	s.mu.Unlock()

	err = conn.Connect(ctx)
	s.mu.Lock()
	s.starting = false
	dropped := s.gen != gen // stopped, logged out or failed while connecting
	if err != nil && !dropped {
		s.conn = nil
		s.gen++
		m.tally(s)
		if pairing {
			m.stopQR(s)
			m.setStatus(s, laravel.StatusExpired)
		}
	}
	info := m.info(s)
	if err == nil && !dropped && !pairing && !conn.LoggedIn() {
		// A connect of a paired device that neither logs in nor reports Disconnected (whatsmeow
		// sets its disconnect handler only after its last handshake message: a socket closed in
		// that instant reports nothing) is torn down and retried (watchLogin).
		m.watchLogin(s, gen)
	}
	s.mu.Unlock()
	if err != nil || dropped {
		conn.Disconnect()
		conn.Release()
	}
	if err != nil {
		return Info{}, fmt.Errorf("session %s: connect: %w", s.id, err)
	}
	return info, nil
}

// abortStart undoes a start whose connection could not be opened: a QR flow that began expires.
func (m *Manager) abortStart(s *session, gen uint64, pairing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting = false
	if s.gen != gen {
		return
	}
	s.gen++
	if pairing {
		m.stopQR(s)
		m.setStatus(s, laravel.StatusExpired)
	}
}

// Stop disconnects a session without logging out: a paired device stays paired (Start
// reconnects it), a QR flow ends as expired, a connected session reports disconnected.
func (m *Manager) Stop(ctx context.Context, id string) (Info, error) {
	s := m.lookup(id)
	if s == nil {
		return Info{}, ErrNotFound
	}
	s.mu.Lock()
	if !m.holds(s) {
		s.mu.Unlock()
		return Info{}, ErrNotOwner
	}
	conn := m.detachConn(s)
	m.stopQR(s)
	switch s.status {
	case laravel.StatusPending:
		m.setStatus(s, laravel.StatusExpired)
	case laravel.StatusConnected:
		m.setStatus(s, laravel.StatusDisconnected)
	}
	info := m.info(s)
	s.mu.Unlock()
	if conn != nil {
		conn.Disconnect()
		conn.Release()
	}
	return info, nil
}

// Logout unlinks a session's device from the phone when WhatsApp can be reached, deletes the
// device's data in any case, and reports logged_out. A later Start pairs a new device.
func (m *Manager) Logout(ctx context.Context, id string) (Info, error) {
	s := m.lookup(id)
	if s == nil {
		return Info{}, ErrNotFound
	}
	if err := m.fenceLogout(ctx, id); err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	if !m.holds(s) {
		// Cluster mode: another replica holds the session now; unlinking or forgetting its
		// device here would log out the device the holder runs.
		s.mu.Unlock()
		return Info{}, ErrNotOwner
	}
	conn := m.detachConn(s)
	deviceID := s.deviceID
	m.stopQR(s)
	gen := s.gen
	s.mu.Unlock()

	unlinked := false
	switch {
	case conn != nil && deviceID != "" && conn.LoggedIn():
		if err := conn.Logout(ctx); err != nil {
			m.log.Warn("logout request to WhatsApp failed; forgetting the device locally", "session_id", id, "err", err)
			conn.Disconnect()
		} else {
			unlinked = true
		}
	case conn != nil:
		conn.Disconnect()
	}
	if conn != nil {
		conn.Release()
	}
	if deviceID != "" && !unlinked {
		// The phone still lists the device until it unlinks it (WhatsApp was not reached).
		m.log.Info("logged out without reaching WhatsApp; the device is forgotten here only", "session_id", id)
		if err := m.driver.Forget(ctx, deviceID); err != nil {
			m.log.Warn("deleting the device data failed", "session_id", id, "err", err)
		}
	}

	s.mu.Lock()
	if s.gen == gen && s.deviceID == deviceID {
		s.deviceID = ""
		m.setStatus(s, laravel.StatusLoggedOut)
		m.persist(s)
	}
	info := m.info(s)
	s.mu.Unlock()
	// The answer says logged_out, so the record saying it (no device) is stored before the
	// answer: a process killed right after it, its device data left behind by a failed delete
	// above, must not bring the device back at its next start.
	if err := m.store.Flush(ctx); err != nil {
		return Info{}, fmt.Errorf("session: recording the logout of %s: %w", id, err)
	}
	return info, nil
}

// Get returns a session's snapshot.
func (m *Manager) Get(ctx context.Context, id string) (Info, error) {
	s := m.lookup(id)
	if s == nil {
		return Info{}, ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.info(s), nil
}

// List returns up to limit sessions whose id sorts after the cursor `after`, in id order, and the
// cursor of the next page ("" on the last page).
func (m *Manager) List(ctx context.Context, after string, limit int) ([]Info, string, error) {
	if limit <= 0 {
		limit = 100
	}
	m.mu.RLock()
	i, found := slices.BinarySearch(m.ids, after)
	if found {
		i++
	}
	end := min(i+limit, len(m.ids))
	page := make([]*session, 0, end-i)
	for _, id := range m.ids[i:end] {
		page = append(page, m.sessions[id])
	}
	more := end < len(m.ids)
	m.mu.RUnlock()
	out := make([]Info, 0, len(page))
	for _, s := range page {
		s.mu.Lock()
		out = append(out, m.info(s))
		s.mu.Unlock()
	}
	next := ""
	if more && len(out) > 0 {
		next = out[len(out)-1].SessionID
	}
	return out, next, nil
}

// Counts returns how many sessions the manager runs in each status (every status of the contract,
// zeros included; "" for sessions not started yet), and how many are live: their connection
// reported its login and has not ended since. It reads running tallies (counts.go), so a scrape
// costs the same at 10 sessions and at 10,000.
func (m *Manager) Counts() (byStatus map[laravel.Status]int, live int) {
	return m.counts.snapshot()
}

// SendText sends a text message (a reply when msg.Quote is set) from a connected session and
// returns the WhatsApp message id.
func (m *Manager) SendText(ctx context.Context, id string, msg OutgoingText) (string, error) {
	s := m.lookup(id)
	if s == nil {
		return "", ErrNotFound
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil || !conn.LoggedIn() {
		return "", ErrNotConnected
	}
	msgID, err := conn.SendText(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("session %s: send: %w", id, err)
	}
	return msgID, nil
}

// Close shuts the manager down: no new starts, every WhatsApp connection is closed without
// logging out (paired devices stay paired and reconnect on the next start), events already
// queued get until ctx's deadline to reach the delivery, and the registry is flushed. It does not
// close the delivery.
func (m *Manager) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	m.mu.RLock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.RUnlock()

	var errs []error
	// A scan accepted before the shutdown (closed now refuses new ones) completes on its
	// connection first: its device is in the registry, and the next start logs it in (pairing.go).
	if err := m.awaitPairings(ctx, all); err != nil {
		errs = append(errs, err)
	}
	var conns []Conn
	for _, s := range all {
		s.mu.Lock()
		if c := m.detachConn(s); c != nil {
			conns = append(conns, c)
		}
		m.stopQR(s)
		s.mu.Unlock()
	}
	disconnected := disconnectAll(conns)

	select {
	case <-disconnected:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("session: disconnecting %d clients: %w", len(conns), ctx.Err()))
	}
	select {
	case <-m.drainers.close():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("session: waiting for queued events: %w", ctx.Err()))
	}
	m.cancel()
	m.stopResync()
	if n := m.Dirty(); n > 0 {
		m.log.Warn("stopping with sessions whose latest state the delivery did not accept; the next start sends every status again", "sessions", n)
	}
	if err := m.store.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	m.log.Info("sessions closed", "disconnected", len(conns))
	return errors.Join(errs...)
}

// ---- internals ----

func (m *Manager) lookup(id string) *session {
	m.mu.RLock()
	s := m.sessions[id]
	m.mu.RUnlock()
	return s
}

func (m *Manager) getOrCreate(id string) *session {
	if s := m.lookup(id); s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[id]; s != nil {
		return s
	}
	now := time.Now()
	s := &session{id: id, created: now, updated: now, epoch: m.firstEpoch()}
	m.tally(s) // not yet locked by anyone: nobody else sees s before m.mu is released
	m.sessions[id] = s
	i, _ := slices.BinarySearch(m.ids, id)
	m.ids = slices.Insert(m.ids, i, id)
	return s
}

// info snapshots s. Callers hold s.mu.
func (m *Manager) info(s *session) Info {
	st := s.status
	if st == "" {
		st = laravel.StatusPending
	}
	return Info{
		SessionID:   s.id,
		Status:      st,
		Paired:      s.deviceID != "",
		Connected:   s.conn != nil && s.conn.LoggedIn(),
		QR:          s.qrCurrent,
		QRExpiresAt: s.qrExpires,
		Version:     s.version,
		CreatedAt:   s.created,
		UpdatedAt:   s.updated,
	}
}

// onEvent applies one driver event to the state machine.
func (m *Manager) onEvent(s *session, gen uint64, ev DriverEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer m.tally(s)
	if (s.gen != gen || s.conn == nil) && !lastWordAfterRedeliveryDrop(s, gen, ev) {
		return // from a connection that was replaced or dropped
	}
	switch e := ev.(type) {
	case QRCodes:
		if s.deviceID != "" || s.status != laravel.StatusPending {
			return
		}
		s.qrPending = slices.Clone(e.Codes)
		if s.qrCurrent == "" {
			m.showNextQR(s)
		}
	case PairSuccess:
		m.log.Info("session paired", "session_id", s.id)
		m.endPairing(s, true)
		m.stopQR(s)
		s.deviceID = e.DeviceID
		m.persist(s)
		m.watchLogin(s, gen)
	case PairFailed:
		m.log.Warn("pairing rejected", "session_id", s.id, "reason", e.Reason)
		m.endPairing(s, false)
	case Connected:
		s.loggedIn = true
		m.stopQR(s)
		m.setStatus(s, laravel.StatusConnected)
		m.stopLoginWatch(s)
		s.dropBackoff = 0
		if n := m.backoffs.loginSeen(); n > 0 {
			m.log.Info("a session logged in: reconnects waiting in a backoff woken early", "session_id", s.id, "woken", n)
		}
	case Disconnected:
		if s.deviceID == "" {
			// An unpaired socket closed: its QR codes are dead and nothing reconnects it.
			m.stopQR(s)
			m.dropConnLocked(s)
			m.setStatus(s, laravel.StatusExpired)
			return
		}
		delay := m.dropDelay(s)
		m.setStatus(s, laravel.StatusDisconnected)
		// whatsmeow does not reconnect by itself (its reconnect ran a second handler loop on
		// the client's one queue while the old one still delivered: a session's messages were
		// numbered out of order). A new connection, with a queue of its own, takes over; a
		// message still in the old one's handler is refused and WhatsApp delivers it again, in
		// order. In cluster mode start checks in Redis that the shard is still ours first.
		m.dropConnLocked(s)
		m.reconnectAfterCut(s, delay)
	case LoggedOut:
		m.log.Info("session logged out by WhatsApp", "session_id", s.id, "reason", e.Reason)
		m.stopQR(s)
		m.dropConnLocked(s)
		s.deviceID = ""
		m.setStatus(s, laravel.StatusLoggedOut)
		m.persist(s)
	case StreamReplaced:
		if !m.holds(s) {
			// Cluster mode: the replica now holding the shard connected; the record is its to write.
			m.log.Info("the session's new holder replaced this replica's connection", "session_id", s.id)
			m.dropConnLocked(s)
			return
		}
		m.log.Warn("another client took over this session's device; not reconnecting", "session_id", s.id)
		m.dropConnLocked(s)
		s.parked = storage.ParkedStreamReplaced // a restart must not take the device back either
		m.persist(s)
		m.setStatus(s, laravel.StatusDisconnected)
	case MessageReceived:
		m.onMessage(s, e)
	case ReceiptReceived:
		m.onReceipt(s, e)
	case LoginFailed:
		m.log.Warn("a paired device's login failed; reconnecting it", "session_id", s.id, "reason", e.Reason)
		m.fireLoginWatch(s, gen)
	case ConnectFailed:
		m.log.Warn("WhatsApp refused the connection; not reconnecting", "session_id", s.id, "reason", e.Reason)
		m.stopQR(s)
		m.dropConnLocked(s)
		if s.deviceID == "" {
			m.setStatus(s, laravel.StatusExpired)
		} else {
			s.parked = storage.ParkedConnectFailed
			m.persist(s)
			m.setStatus(s, laravel.StatusDisconnected)
		}
	}
}

// lastWordAfterRedeliveryDrop reports whether ev, from the connection of generation gen, is
// WhatsApp's final word on it (another client took the device over; the device was logged out)
// arriving after the session dropped that very connection for a redelivery (redeliverLater) and
// before it opened another. whatsmeow hands a connection's events over one at a time, so a
// stream:error that came right behind a refused message reaches the session only after the
// refusal dropped the connection; with no connection of the session's open since, nothing of the
// gateway's can have caused it, and ignoring it would have the redelivery take the device back.
// Callers hold s.mu.
func lastWordAfterRedeliveryDrop(s *session, gen uint64, ev DriverEvent) bool {
	switch ev.(type) {
	case StreamReplaced, LoggedOut:
	default:
		return false
	}
	return s.redeliveryGen == s.gen && gen+1 == s.gen && s.conn == nil && !s.starting
}

// detachConn detaches s.conn: events from it are ignored from now on. It returns the connection
// for the caller to close, or nil when there is none or start() still owns it (start closes it
// when Connect returns and sees the change). Callers hold s.mu.
func (m *Manager) detachConn(s *session) Conn {
	s.gen++
	m.stopLoginWatch(s)
	c := s.conn
	s.conn = nil
	s.loggedIn = false
	m.tally(s)
	if s.starting {
		return nil
	}
	return c
}

// dropConnLocked detaches s.conn and closes it in the background: never call into the WhatsApp
// client under s.mu or from its event goroutine. Callers hold s.mu.
func (m *Manager) dropConnLocked(s *session) {
	if c := m.detachConn(s); c != nil {
		go func() {
			c.Disconnect()
			c.Release()
		}()
	}
}

// setStatus moves s to st, persists it and emits a status event; no-op when unchanged. Callers
// hold s.mu.
func (m *Manager) setStatus(s *session, st laravel.Status) {
	if s.status == st && !s.resync {
		return
	}
	s.resync = false
	s.status = st
	m.tally(s)
	m.persist(s)
	m.emit(s, event.KindStatus, string(st))
}

// persist schedules s's registry record. Callers hold s.mu.
func (m *Manager) persist(s *session) {
	s.updated = time.Now()
	epoch := s.epoch
	if m.owner != nil {
		_, e, held := m.owner.Epoch(s.id)
		if !held || s.dropped {
			m.fenced(FencedRegistry)
			return
		}
		epoch = e
	}
	m.store.Put(storage.Record{SessionID: s.id, DeviceJID: s.deviceID, Status: s.status,
		CreatedAt: s.created, UpdatedAt: s.updated, Parked: s.parked, Epoch: epoch})
}

// disconnectAll disconnects and releases conns, up to 64 at a time; the channel closes when all
// are done.
func disconnectAll(conns []Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for _, c := range conns {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.Disconnect()
				c.Release()
			}()
		}
		wg.Wait()
	}()
	return done
}
