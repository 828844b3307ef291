package fakewa

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// ReceiptPolicy says which receipts the server sends for a message it acked.
type ReceiptPolicy int

// Receipt policies. The zero value sends both.
const (
	ReceiptsDeliveredAndRead ReceiptPolicy = iota
	ReceiptsDelivered
	ReceiptsNone
)

// Config configures a Server. The zero value is usable: every field has a default.
type Config struct {
	// Listen is the WebSocket listen address; default "127.0.0.1:0" (a free loopback port).
	Listen string
	// RootKey signs the certificate chain; default a fresh key (clients must then be told
	// RootPublicKey). Share one key between servers in a process: whatsmeow's trust is global.
	RootKey *RootKey
	// PairRefs is how many pair-device refs an unpaired client gets; default 6.
	PairRefs int
	// PreKeyCount is the server-side prekey count reported to clients; default 50 (below 5 makes
	// the client re-upload on every connect).
	PreKeyCount int
	// Receipts chooses which receipts follow a message ack; ReceiptDelay is the pause before each.
	Receipts     ReceiptPolicy
	ReceiptDelay time.Duration
	// StreamErrorCloseDelay is the pause between a stream:error and closing the socket; default
	// 200 ms (whatsmeow handles the error asynchronously; an immediate close reads as a drop).
	StreamErrorCloseDelay time.Duration
	// PairRestartCloseTimeout bounds the wait for the client to close its socket after the 515
	// that follows pairing (whatsmeow closes it itself); default 30 s.
	PairRestartCloseTimeout time.Duration
	// HandshakeTimeout bounds the Noise handshake; default 20 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame write; default 10 s.
	WriteTimeout time.Duration
	// MaxFrameSize bounds a client frame and a decompressed node; default 1 MiB.
	MaxFrameSize int
	// MaxHeldMessages bounds the phone messages a device has not acknowledged yet (held while it
	// is offline, or waiting for its receipt); SendMessage refuses more. Default 10,000. It bounds
	// apart the receipts for the device's messages it has not acked: past it the oldest is dropped.
	MaxHeldMessages int
	// MaxMediaBytes bounds the media blobs the phones uploaded that the server keeps serving
	// (the oldest are dropped first). Default 256 MiB.
	MaxMediaBytes int
	// MaxEvents bounds the event log; the oldest tenth is discarded when full. Default 1,000,000.
	MaxEvents int
	// Logger receives debug logs; default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.RootKey == nil {
		c.RootKey = GenerateRootKey()
	}
	if c.PairRefs <= 0 {
		c.PairRefs = 6
	}
	if c.PreKeyCount <= 0 {
		c.PreKeyCount = 50
	}
	if c.StreamErrorCloseDelay <= 0 {
		c.StreamErrorCloseDelay = 200 * time.Millisecond
	}
	if c.PairRestartCloseTimeout <= 0 {
		c.PairRestartCloseTimeout = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 20 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = 1 << 20
	}
	if c.MaxMediaBytes <= 0 {
		c.MaxMediaBytes = 256 << 20
	}
	if c.MaxHeldMessages <= 0 {
		c.MaxHeldMessages = 10_000
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1_000_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Errors of the control API.
var (
	ErrUnknownDevice = errors.New("fakewa: unknown device")
	ErrNotConnected  = errors.New("fakewa: device not connected")
	ErrLoggedOut     = errors.New("fakewa: device logged out")
	ErrNotStarted    = errors.New("fakewa: server not started")
	ErrClosed        = errors.New("fakewa: server closed")
)

// DeviceState is the server's view of a paired device.
type DeviceState string

// Device states.
const (
	DeviceOnline    DeviceState = "online"
	DeviceOffline   DeviceState = "offline"
	DeviceLoggedOut DeviceState = "logged_out"
)

// DeviceInfo is a snapshot of one paired device.
type DeviceInfo struct {
	JID         string      `json:"jid"`
	LID         string      `json:"lid"`
	Phone       string      `json:"phone"`
	State       DeviceState `json:"state"`
	PairedAt    time.Time   `json:"paired_at"`
	ConnectedAt time.Time   `json:"connected_at,omitzero"`
	Logins      int         `json:"logins"`
	// KeepaliveSilent is true while the server ignores this device's keepalive pings.
	KeepaliveSilent bool `json:"keepalive_silent,omitempty"`
}

// account is a phone number's WhatsApp account: its identity key (the phone's key A) and LID.
type account struct {
	phone      string
	lid        string
	key        *keys.KeyPair
	nextDevice uint8
}

// device is a companion device paired with an account.
type device struct {
	jid, lid    types.JID
	account     *account
	noisePub    [32]byte
	identityPub [32]byte
	pairedAt    time.Time
	loggedOut   bool
	conn        *conn // the logged-in connection, nil when offline
	connectedAt time.Time
	logins      int
	silent      bool // ignore keepalive pings
	failNext    int  // answer the next login with <failure reason=failNext>
	keys        deviceKeys
	receipts    *ReceiptSchedule // the recipients' receipts for this device's messages; nil: cfg.Receipts

	// unreachableUntil: logins before it are cut unanswered (an outage: outage.go)
	unreachableUntil time.Time

	// sendMu orders the phones' messages to this device: encryption, delivery, redelivery at
	// login. Lock it before s.mu, never after.
	sendMu  sync.Mutex
	outbox  []*heldMessage    // not acknowledged by a receipt yet, in order; protected by sendMu
	authors map[string]string // message id -> phone that wrote it; protected by sendMu
	// receiptsOut are the recipients' receipts for this device's messages that it has not acked
	// yet, in order; protected by sendMu.
	receiptsOut []*heldReceipt
}

// Stats are the server's resource counters. Goroutines, RSSBytes and CPUSeconds are the whole
// process's.
type Stats struct {
	Connections      int64   `json:"connections"`       // open WebSocket connections
	Handlers         int64   `json:"handlers"`          // running per-connection handler goroutines
	Refused          int64   `json:"refused"`           // connections refused (HTTP 503) during a restart's downtime or an outage, cut at the end of their handshake then, and logins cut by a device outage
	HandshakesFailed int64   `json:"handshakes_failed"` // connections that ended before finishing the Noise handshake
	ClientAcks       int64   `json:"client_acks"`       // <ack> nodes clients sent back for receipts
	Devices          int     `json:"devices"`           // devices ever paired, logged-out ones included
	Online           int     `json:"online"`            // devices with a logged-in connection
	Goroutines       int     `json:"goroutines"`
	RSSBytes         uint64  `json:"rss_bytes"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	EventsDiscarded  uint64  `json:"events_discarded"` // events dropped by the MaxEvents bound
}

// Server is a fake WhatsApp multi-device server. Create it with New, then Start it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	static   *keys.KeyPair
	chain    []byte
	events   *eventLog
	contacts *contactKeys
	media    *mediaStore

	ln      net.Listener
	httpSrv *http.Server
	ctx     context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	started   bool
	closed    bool
	conns     map[*conn]struct{}
	refs      map[string]*conn // pair-device ref -> unpaired connection
	devices   map[types.JID]*device
	accounts  map[string]*account // by phone number
	byLID     map[string]*account
	phones    map[string]*phoneSignal // contact phones that wrote, by number
	accountN  int
	idCounter atomic.Uint64
	connIDs   atomic.Uint64

	silence    silence      // connections neither read nor answered (silence.go)
	downUntil  atomic.Int64 // unix nanos until which new connections are refused with HTTP 503
	refused    atomic.Int64 // connections refused while down, and logins cut by a device outage
	hsFailed   atomic.Int64 // handshakes that did not complete
	clientAcks atomic.Int64 // <ack> nodes clients sent (for receipts)
	// cutHandshakesUntil: unix nanos until which handshakes are cut before the server's hello
	// (handshakecut.go).
	cutHandshakesUntil atomic.Int64

	active   atomic.Int64 // open connections
	handlers atomic.Int64 // running connection handler goroutines
}

// New creates a server from cfg (defaults filled in). It does not listen until Start.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	static := keys.NewKeyPair()
	chain, err := certChain(cfg.RootKey, static, time.Now())
	if err != nil {
		return nil, fmt.Errorf("fakewa: certificate chain: %w", err)
	}
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		static:   static,
		chain:    chain,
		events:   newEventLog(cfg.MaxEvents),
		contacts: newContactKeys(),
		media:    newMediaStore(cfg.MaxMediaBytes),
		conns:    make(map[*conn]struct{}),
		refs:     make(map[string]*conn),
		devices:  make(map[types.JID]*device),
		accounts: make(map[string]*account),
		byLID:    make(map[string]*account),
		phones:   make(map[string]*phoneSignal),
	}, nil
}

// Start listens on cfg.Listen and serves WebSocket connections until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("fakewa: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("fakewa: listen: %w", err)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveWebSocket),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.started = true
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fakewa: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.ctx.Done():
		}
	}()
	return nil
}

// Addr returns the WebSocket listen address (host:port), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// RootPublicKey returns the root public key clients must trust.
func (s *Server) RootPublicKey() []byte {
	return append([]byte(nil), s.cfg.RootKey.Pub[:]...)
}

// Close stops listening and closes every connection at once. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	if s.httpSrv != nil {
		err = s.httpSrv.Close()
		s.cancel()
	}
	for _, c := range conns {
		c.close("server closed")
	}
	return err
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, mediaPathPrefix) {
		s.serveMedia(w, r) // a media download through the same test-only dialer
		return
	}
	if s.refuseWhileDown(w) {
		return
	}
	// A silent server holds a new connection before its upgrade, unanswered (silence.go).
	if !s.awaitSilenceEnd(types.EmptyJID, r.Context().Done()) {
		return
	}
	if s.refuseWhileDown(w) { // an outage that began while the silence held the dial
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // whatsmeow sends Origin: https://web.whatsapp.com
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Debug("fakewa: websocket accept", "err", err)
		return
	}
	ws.SetReadLimit(int64(s.cfg.MaxFrameSize) + 64)
	c := newConn(s, ws)
	if !s.track(c) {
		ws.CloseNow()
		return
	}
	s.handlers.Add(1)
	defer s.handlers.Add(-1)
	defer s.untrack(c)
	c.serve()
}

// refuseWhileDown answers a new connection 503 while the server is down (a restart's downtime, an
// outage) and reports whether it did. A connection admitted just before the server went down is
// cut at the end of its handshake instead (admitHandshaken), never before the server's hello.
func (s *Server) refuseWhileDown(w http.ResponseWriter) bool {
	if time.Now().UnixNano() < s.downUntil.Load() {
		s.refused.Add(1)
		http.Error(w, "fakewa is restarting", http.StatusServiceUnavailable)
		return true
	}
	return false
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.active.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	c.close("handler ended")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.active.Add(-1)
	for _, ref := range c.refs {
		if s.refs[ref] == c {
			delete(s.refs, ref)
		}
	}
	if d := c.device; d != nil {
		if d.conn == c {
			d.conn = nil
		}
		s.events.add(Event{Kind: EventDisconnected, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone, Detail: c.closeCause()})
	}
}

func (s *Server) newID() string {
	return "fakewa-" + strconv.FormatUint(s.idCounter.Add(1), 10)
}

func newRef() string {
	b := make([]byte, 18)
	rand.Read(b)
	return "2@" + base64.StdEncoding.EncodeToString(b)
}

// Events returns every recorded event (the log keeps the last MaxEvents).
func (s *Server) Events() []Event {
	events, _, _ := s.events.since(0)
	return events
}

// EventsFor returns the events of one device (its JID), in order.
func (s *Server) EventsFor(jid types.JID) []Event {
	want := jid.String()
	var out []Event
	for _, e := range s.Events() {
		if e.JID == want {
			out = append(out, e)
		}
	}
	return out
}

// EventsSince returns the events with Seq greater than seq.
func (s *Server) EventsSince(seq uint64) []Event {
	events, _, _ := s.events.since(seq)
	return events
}

// WaitEvent blocks until an event (already recorded or future) satisfies match.
func (s *Server) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	return s.events.wait(ctx, 0, match)
}

// Devices returns a snapshot of every device ever paired, logged-out ones included.
func (s *Server) Devices() []DeviceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceInfo, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d.info())
	}
	return out
}

// Device returns the snapshot of one device.
func (s *Server) Device(jid types.JID) (DeviceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[jid]
	if !ok {
		return DeviceInfo{}, fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
	}
	return d.info(), nil
}

func (d *device) info() DeviceInfo {
	state := DeviceOffline
	switch {
	case d.loggedOut:
		state = DeviceLoggedOut
	case d.conn != nil:
		state = DeviceOnline
	}
	return DeviceInfo{
		JID: d.jid.String(), LID: d.lid.String(), Phone: d.account.phone, State: state,
		PairedAt: d.pairedAt, ConnectedAt: d.connectedAt, Logins: d.logins, KeepaliveSilent: d.silent,
	}
}

// Stats returns the server's resource counters (RSS and goroutines are the whole process's).
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Devices: len(s.devices)}
	for _, d := range s.devices {
		if d.conn != nil {
			st.Online++
		}
	}
	s.mu.Unlock()
	st.Connections = s.active.Load()
	st.Refused = s.refused.Load()
	st.HandshakesFailed = s.hsFailed.Load()
	st.ClientAcks = s.clientAcks.Load()
	st.Handlers = s.handlers.Load()
	st.Goroutines = goroutines()
	st.RSSBytes = ProcessRSS()
	st.CPUSeconds = ProcessCPUSeconds()
	st.EventsDiscarded = s.events.discarded()
	return st
}

// connectedDevice returns the device's live connection.
func (s *Server) connectedDevice(jid types.JID) (*device, *conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[jid]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
	}
	if d.loggedOut {
		return d, nil, fmt.Errorf("%w: %s", ErrLoggedOut, jid)
	}
	if d.conn == nil {
		return d, nil, fmt.Errorf("%w: %s", ErrNotConnected, jid)
	}
	return d, d.conn, nil
}

// Drop cuts the device's connection without a stream error, like a network failure. whatsmeow
// emits Disconnected and reconnects at once.
func (s *Server) Drop(jid types.JID) error {
	d, c, err := s.connectedDevice(jid)
	if err != nil {
		return err
	}
	s.events.add(Event{Kind: EventDropped, Conn: c.id, JID: jid.String(), Phone: d.account.phone})
	c.close("dropped by server")
	return nil
}

// Replace sends <stream:error><conflict type="replaced"/></stream:error> and closes the socket
// after the configured delay, as when the session is opened elsewhere. whatsmeow emits
// StreamReplaced and does not reconnect. The device stays paired.
func (s *Server) Replace(jid types.JID) error {
	d, c, err := s.connectedDevice(jid)
	if err != nil {
		return err
	}
	s.events.add(Event{Kind: EventReplaced, Conn: c.id, JID: jid.String(), Phone: d.account.phone, Detail: "control"})
	c.streamErrorAndClose(streamError("", "replaced"), "replaced")
	return nil
}

// Logout removes the device, as when the user unlinks it on the phone. Online: the server sends
// stream:error 401 device_removed and closes (whatsmeow: LoggedOut{OnConnect: false}). Offline:
// its next login is refused with <failure reason="401"/> (LoggedOut{OnConnect: true}).
func (s *Server) Logout(jid types.JID) error {
	d, c, err := s.markLoggedOut(jid)
	if err != nil {
		return err
	}
	if c == nil {
		s.events.add(Event{Kind: EventLoggedOut, JID: jid.String(), Phone: d.account.phone, Detail: "device_removed while offline"})
		return nil
	}
	s.events.add(Event{Kind: EventLoggedOut, Conn: c.id, JID: jid.String(), Phone: d.account.phone, Detail: "device_removed"})
	c.streamErrorAndClose(streamError("401", "device_removed"), "device removed")
	return nil
}

// markLoggedOut flags a known, not yet logged-out device as logged out and returns it with its
// current connection (nil when offline).
func (s *Server) markLoggedOut(jid types.JID) (*device, *conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[jid]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
	}
	if d.loggedOut {
		return nil, nil, fmt.Errorf("%w: %s", ErrLoggedOut, jid)
	}
	d.loggedOut = true
	return d, d.conn, nil
}

// LogoutOnConnect removes the device and cuts its connection without a stream error, so the
// client reconnects and is refused with <failure reason="401"/>: LoggedOut{OnConnect: true}.
func (s *Server) LogoutOnConnect(jid types.JID) error {
	d, c, err := s.markLoggedOut(jid)
	if err != nil {
		return err
	}
	s.events.add(Event{Kind: EventLoggedOut, JID: jid.String(), Phone: d.account.phone, Detail: "device_removed, refused at next connect"})
	if c != nil {
		s.events.add(Event{Kind: EventDropped, Conn: c.id, JID: jid.String(), Phone: d.account.phone})
		c.close("dropped by server")
	}
	return nil
}

// FailNextConnect makes the device's next login get <failure reason=reason/> instead of
// success (401 logged out, 402 temporary ban, 405 client outdated, 503 service unavailable, ...).
// A 401 also marks the device logged out.
func (s *Server) FailNextConnect(jid types.JID, reason int) error {
	return s.updateDevice(jid, func(d *device) { d.failNext = reason })
}

// SetKeepaliveSilence makes the server ignore (silent=true) or answer the device's keepalive
// pings. whatsmeow then emits KeepAliveTimeout, and after its KeepAliveMaxFailTime reconnects.
func (s *Server) SetKeepaliveSilence(jid types.JID, silent bool) error {
	return s.updateDevice(jid, func(d *device) { d.silent = silent })
}

// updateDevice applies set to a known device under the server's lock.
func (s *Server) updateDevice(jid types.JID, set func(*device)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[jid]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
	}
	set(d)
	return nil
}

// Restart behaves like a server restart: every connection gets stream:error 503 and is closed
// after the configured delay. whatsmeow reconnects at once.
func (s *Server) Restart() error {
	return s.RestartWithDowntime(0)
}

// RestartWithDowntime is Restart followed by downtime during which new WebSocket connections are
// refused with HTTP 503 (whatsmeow retries with its growing backoff: 0 s, 2 s, 4 s, ...).
func (s *Server) RestartWithDowntime(downtime time.Duration) error {
	if downtime > 0 {
		s.downUntil.Store(time.Now().Add(s.cfg.StreamErrorCloseDelay + downtime).UnixNano())
	}
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return ErrNotStarted
	}
	// Connections still in their handshake have no stream to send the error on: they go on,
	// and are cut at its end while the downtime lasts (admitHandshaken).
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.handshaken {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	// Several writers at once, so one client that does not read cannot hold the others up for
	// its whole write timeout.
	work := make(chan *conn)
	var wg sync.WaitGroup
	for range min(len(conns), 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				e := Event{Kind: EventRestarted, Conn: c.id}
				if d := c.loggedInDevice(); d != nil {
					e.JID, e.Phone = d.jid.String(), d.account.phone
				}
				s.events.add(e)
				c.streamErrorAndClose(streamError("503", ""), "server restart")
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	return nil
}
