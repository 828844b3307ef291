// Package sessiontest provides in-process fakes for testing code built on the session package:
// a Driver whose connections are steered by the test (scan a QR code, drop, replace, log out), a
// memory Store, and a Delivery that records events. They are for unit tests only; benchmarks and
// end-to-end tests run the real whatsmeow driver against fakewa.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"wagate/gateway/event"
	"wagate/gateway/session"
	"wagate/gateway/storage"
)

// Driver is a fake session.Driver. Its devices live in memory.
type Driver struct {
	// Codes are the QR codes an unpaired connection offers; default six distinct codes.
	Codes []string
	// ConnectErr, when set, makes every Connect fail with it.
	ConnectErr error
	// ConnectGate, when set, makes every Connect wait for a receive from it (or its ctx) before
	// it connects: a connect still in flight (a slow handshake).
	ConnectGate chan struct{}
	// LoginUnanswered, when set, makes a paired Connect succeed and then report nothing: no
	// Connected, no Disconnected (whatsmeow's handshake race: a socket closed right after the
	// client's last handshake message).
	LoginUnanswered atomic.Bool
	// CutBeforeLogin, when set, makes a paired Connect succeed and its connection drop before it
	// logs in (an outage covering the device: WhatsApp cuts its logins unanswered).
	CutBeforeLogin atomic.Bool

	mu      sync.Mutex
	devices map[string]bool
	conns   map[string]*Conn // latest connection per session
	opens   int
	nextDev int

	connecting    atomic.Int64 // Connects in flight
	maxConnecting atomic.Int64 // the most Connects in flight at once
}

// NewDriver returns a Driver with no devices.
func NewDriver() *Driver {
	return &Driver{devices: make(map[string]bool), conns: make(map[string]*Conn)}
}

// Open implements session.Driver.
func (d *Driver) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if deviceID != "" && !d.devices[deviceID] {
		return nil, session.ErrDeviceNotFound
	}
	d.opens++
	c := &Conn{d: d, sessionID: sessionID, deviceID: deviceID, handle: handle}
	d.conns[sessionID] = c
	return c, nil
}

// Forget implements session.Driver.
func (d *Driver) Forget(ctx context.Context, deviceID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.devices, deviceID)
	return nil
}

// Opens returns how many connections were opened.
func (d *Driver) Opens() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opens
}

// Connecting returns how many Connects are in flight right now (held at ConnectGate).
func (d *Driver) Connecting() int { return int(d.connecting.Load()) }

// MaxConnecting returns the most Connects that were in flight at once.
func (d *Driver) MaxConnecting() int { return int(d.maxConnecting.Load()) }

// Conn returns the latest connection opened for a session, or nil.
func (d *Driver) Conn(sessionID string) *Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[sessionID]
}

// HasDevice reports whether a device is stored.
func (d *Driver) HasDevice(deviceID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.devices[deviceID]
}

// RemoveDevice deletes a device behind the gateway's back (as if its data were lost).
func (d *Driver) RemoveDevice(deviceID string) { _ = d.Forget(context.Background(), deviceID) }

func (d *Driver) codes() []string {
	if len(d.Codes) > 0 {
		return slices.Clone(d.Codes)
	}
	return []string{"code-1", "code-2", "code-3", "code-4", "code-5", "code-6"}
}

// Conn is a fake session.Conn. The test plays WhatsApp and the phone through its methods.
type Conn struct {
	d         *Driver
	sessionID string
	handle    func(session.DriverEvent) error

	mu        sync.Mutex
	deviceID  string
	connected bool
	loggedIn  atomic.Bool
	released  bool
	logouts   int
	sent      []string
}

// Connect implements session.Conn: an unpaired connection offers QR codes, a paired one logs in.
func (c *Conn) Connect(ctx context.Context) error {
	if c.d.ConnectErr != nil {
		return c.d.ConnectErr
	}
	if c.d.ConnectGate != nil {
		n := c.d.connecting.Add(1)
		for m := c.d.maxConnecting.Load(); n > m && !c.d.maxConnecting.CompareAndSwap(m, n); m = c.d.maxConnecting.Load() {
		}
		defer c.d.connecting.Add(-1)
		select {
		case <-c.d.ConnectGate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.connected = true
	paired := c.deviceID != ""
	c.mu.Unlock()
	switch {
	case paired && c.d.LoginUnanswered.Load():
	case paired && c.d.CutBeforeLogin.Load():
		go c.handle(session.Disconnected{})
	case paired:
		c.loggedIn.Store(true)
		go c.handle(session.Connected{})
	default:
		codes := c.d.codes()
		go c.handle(session.QRCodes{Codes: codes})
	}
	return nil
}

// Disconnect implements session.Conn.
func (c *Conn) Disconnect() {
	c.mu.Lock()
	c.connected = false
	c.mu.Unlock()
	c.loggedIn.Store(false)
}

// Logout implements session.Conn.
func (c *Conn) Logout(ctx context.Context) error {
	if !c.loggedIn.Load() {
		return errors.New("fake: not logged in")
	}
	c.mu.Lock()
	c.logouts++
	dev := c.deviceID
	c.deviceID = ""
	c.connected = false
	c.mu.Unlock()
	c.loggedIn.Store(false)
	c.d.RemoveDevice(dev)
	return nil
}

// LoggedIn implements session.Conn.
func (c *Conn) LoggedIn() bool { return c.loggedIn.Load() }

// SendText implements session.Conn.
func (c *Conn) SendText(ctx context.Context, msg session.OutgoingText) (string, error) {
	if !c.loggedIn.Load() {
		return "", errors.New("fake: not logged in")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, msg.Phone+":"+msg.Text)
	if msg.ID != "" {
		return msg.ID, nil
	}
	return fmt.Sprintf("3EB0%08X", len(c.sent)), nil
}

// Media implements session.Conn: the fake keeps no media.
func (c *Conn) Media(context.Context, string) (session.Media, error) {
	return session.Media{}, session.ErrMediaNotFound
}

// Release implements session.Conn.
func (c *Conn) Release() {
	c.mu.Lock()
	c.released = true
	c.mu.Unlock()
}

// Released reports whether the gateway released the connection.
func (c *Conn) Released() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}

// Logouts returns how many times Logout succeeded.
func (c *Conn) Logouts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logouts
}

// Sent returns the messages sent, as "phone:text".
func (c *Conn) Sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

// DeviceID returns the connection's device id ("" before pairing).
func (c *Conn) DeviceID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deviceID
}

// Scan plays a phone scanning the QR code: the device is stored, then it logs in. It returns ""
// when the gateway refused the pairing (PairRequested answered with an error).
func (c *Conn) Scan() string {
	dev := c.ScanWithoutLogin()
	if dev == "" {
		return ""
	}
	c.loggedIn.Store(true)
	c.handle(session.Connected{})
	return dev
}

// ScanWithoutLogin plays a scan after which the client never logs in (it missed the server's
// request to reconnect). As whatsmeow does, the client asks the gateway first (PairRequested) and
// pairs nothing when it refuses: it returns "" then.
func (c *Conn) ScanWithoutLogin() string {
	c.d.mu.Lock()
	c.d.nextDev++
	dev := fmt.Sprintf("1555000%04d.0:%d@s.whatsapp.net", c.d.nextDev, 1)
	c.d.mu.Unlock()
	if err := c.handle(session.PairRequested{DeviceID: dev}); err != nil {
		return ""
	}
	c.d.mu.Lock()
	c.d.devices[dev] = true
	c.d.mu.Unlock()
	c.mu.Lock()
	c.deviceID = dev
	c.mu.Unlock()
	c.handle(session.PairSuccess{DeviceID: dev})
	return dev
}

// Drop plays a network drop followed by a reconnect of the same client, as whatsmeow's
// auto-reconnect did (the gateway turns it off: the manager ignores the late Connected of the
// connection it released and connects a new one).
func (c *Conn) Drop() {
	c.loggedIn.Store(false)
	c.handle(session.Disconnected{})
	c.loggedIn.Store(true)
	c.handle(session.Connected{})
}

// DropAndStayDown plays a network drop without reconnecting.
func (c *Conn) DropAndStayDown() {
	c.loggedIn.Store(false)
	c.handle(session.Disconnected{})
}

// Replace plays another client taking over the device.
func (c *Conn) Replace() {
	c.loggedIn.Store(false)
	c.handle(session.StreamReplaced{})
}

// UnlinkFromPhone plays the user removing the linked device on the phone.
func (c *Conn) UnlinkFromPhone() {
	c.loggedIn.Store(false)
	c.d.RemoveDevice(c.DeviceID())
	c.handle(session.LoggedOut{Reason: "device_removed"})
}

// Emit passes any event to the gateway, as the client would, and returns the handler's answer:
// an error means the gateway did not make a message or receipt durable, so a real client would
// not acknowledge it and WhatsApp would deliver it again.
func (c *Conn) Emit(ev session.DriverEvent) error { return c.handle(ev) }

// SetLoggedIn sets what LoggedIn reports.
func (c *Conn) SetLoggedIn(v bool) { c.loggedIn.Store(v) }

// Store is a memory session.Store. Put records at once (Load and Record see it); Flush copies what
// was Put into what a restart would find (Durable), as storage.Registry's Flush writes its pending
// records.
type Store struct {
	mu       sync.Mutex
	recs     map[string]storage.Record
	durable  map[string]storage.Record
	epoch    int64
	flushErr error
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{recs: make(map[string]storage.Record), durable: make(map[string]storage.Record)}
}

// Load implements session.Store.
func (s *Store) Load(ctx context.Context) ([]storage.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b storage.Record) int { return strings.Compare(a.SessionID, b.SessionID) })
	return out, nil
}

// Put implements session.Store.
func (s *Store) Put(rec storage.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[rec.SessionID] = rec
}

// Flush implements session.Store.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushErr != nil {
		return s.flushErr
	}
	maps.Copy(s.durable, s.recs)
	return nil
}

// FailFlushes makes every later Flush return err and store nothing (nil: Flush stores again).
func (s *Store) FailFlushes(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushErr = err
}

// Durable returns the record of a session as the last Flush stored it.
func (s *Store) Durable(id string) (storage.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.durable[id]
	return r, ok
}

// NextEpoch implements session.Store.
func (s *Store) NextEpoch(ctx context.Context, floor int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch = max(s.epoch+1, floor)
	return s.epoch, nil
}

// Record returns a stored record.
func (s *Store) Record(id string) (storage.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

// Sink is a Delivery that records every event. Block, when set, is waited on before each event.
type Sink struct {
	// Block, when not nil, is received from before each event is recorded.
	Block chan struct{}
	// Err, when set, is returned for every event (after recording it).
	Err error

	mu       sync.Mutex
	events   []event.Event
	closed   bool
	refusing error
}

// SetRefusing makes Deliver refuse every event with err, without recording it (nil: accept
// again), like an outbox that stays full.
func (s *Sink) SetRefusing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusing = err
}

// Deliver implements delivery.Delivery.
func (s *Sink) Deliver(ctx context.Context, ev event.Event) error {
	if s.Block != nil {
		select {
		case <-s.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusing != nil {
		return s.refusing
	}
	s.events = append(s.events, ev)
	return s.Err
}

// Close implements delivery.Delivery.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Events returns the recorded events.
func (s *Sink) Events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Of returns the recorded events of one session, rendered "qr:<code>" or "status:<estado>".
func (s *Sink) Of(sessionID string) []string {
	var out []string
	for _, ev := range s.Events() {
		if ev.SessionID == sessionID {
			out = append(out, string(ev.Kind)+":"+ev.Payload)
		}
	}
	return out
}
