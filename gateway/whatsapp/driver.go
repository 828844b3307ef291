// Package whatsapp is the production session.Driver: one whatsmeow client per session, devices in
// whatsmeow's sqlstore on the gateway's database (one shared Container). It translates
// whatsmeow's events into session.DriverEvents and nothing more: the state machine lives in the
// session package.
//
// With a test-only wadial.Config the clients dial a fake WhatsApp server and trust its root key;
// the caller must gate that behind WAGATE_WA_INSECURE_TEST=1 and log wadial.Warning.
package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
)

// Config configures the Driver.
type Config struct {
	// DB is the gateway's database; whatsmeow's tables are created in it.
	DB *storage.DB
	// Dial, when not nil, points every client at a fake WhatsApp server. TEST-ONLY.
	Dial *wadial.Config
	// Logger receives whatsmeow's warnings and errors (its info and debug lines are dropped
	// unless Debug is set).
	Logger *slog.Logger
	// Debug passes whatsmeow's info and debug lines to Logger too.
	Debug bool
	// ConnectTimeout bounds the first connection attempt of Conn.Connect (default 30 s).
	ConnectTimeout time.Duration
	// TestKeepalive, when not zero, shortens whatsmeow's keepalive for the whole process
	// (ScaledKeepaliveTiming) so that a fake WhatsApp server going silent is noticed in seconds.
	// TEST-ONLY: refused without Dial.
	TestKeepalive time.Duration
	// Holds, in cluster mode, reports whether this replica still holds a session (its shard's
	// lease has not lapsed); a message's decryption commits to the shared store only while it
	// does (decryptgate.go). nil: always (one process).
	Holds func(sessionID string) bool
}

// Driver opens whatsmeow clients. It is safe for concurrent use.
type Driver struct {
	container *sqlstore.Container
	ctx       context.Context
	cancel    context.CancelFunc
	log       *slog.Logger
	waLog     waLog.Logger
	dialHTTP  *http.Client // test-only; shared by every client
	// wsDial makes every client's WebSocket dials (each connection watches its own sockets
	// through it: socketwatch.go): a clone of http.DefaultTransport, as whatsmeow's own, or the
	// test-only dial's.
	wsDial  http.RoundTripper
	timeout time.Duration
	media   *mediaStore
	gates   decryptGates                // one decryption at a time per device (decryptgate.go)
	holds   func(sessionID string) bool // Config.Holds
}

// New prepares whatsmeow's store in cfg.DB (creating or upgrading its tables) and returns a Driver.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.DB == nil {
		return nil, errors.New("whatsapp: no database")
	}
	if cfg.TestKeepalive != 0 {
		if cfg.Dial == nil {
			return nil, errors.New("whatsapp: a test keepalive needs a test dial (a fake WhatsApp server)")
		}
		if err := checkTestKeepalive(cfg.TestKeepalive); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	wl := &slogAdapter{log: log, module: "whatsmeow", debug: cfg.Debug}
	container := sqlstore.NewWithDB(cfg.DB.SQL, string(cfg.DB.Dialect), wl.Sub("store"))
	if err := container.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("whatsapp: prepare whatsmeow store in %s: %w", cfg.DB.Where, err)
	}
	media, err := newMediaStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &Driver{container: container, ctx: dctx, cancel: cancel, log: log, waLog: wl, timeout: cfg.ConnectTimeout,
		media: media, holds: cfg.Holds}
	if d.timeout <= 0 {
		d.timeout = 30 * time.Second
	}
	d.wsDial = http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Dial != nil {
		if err := cfg.Dial.Validate(); err != nil {
			cancel()
			return nil, err
		}
		if err := wadial.SetRootKey(cfg.Dial.RootPubKey); err != nil {
			cancel()
			return nil, err
		}
		log.Warn(wadial.Warning, "dial", cfg.Dial.Addr)
		hc := cfg.Dial.HTTPClient()
		if tr, ok := hc.Transport.(*http.Transport); ok {
			// One transport for every session: the WebSocket connections are hijacked, so only
			// pre-upgrade keep-alives would be pooled; keep a few.
			tr.MaxIdleConns = 16
			tr.MaxIdleConnsPerHost = 16
		}
		d.dialHTTP = hc
		d.wsDial = hc.Transport
	}
	if cfg.TestKeepalive != 0 {
		t := ScaledKeepaliveTiming(cfg.TestKeepalive)
		t.applyProcessWide()
		log.Warn("!!! "+TestKeepaliveWarning+" !!! Never run it like this against WhatsApp",
			"ping_every_min", t.IntervalMin, "ping_every_max", t.IntervalMax, "deadline", t.Deadline, "dead_after", t.MaxFail)
	}
	return d, nil
}

// Close stops background work of clients that are still running (auto-reconnect loops).
func (d *Driver) Close() { d.cancel() }

// Devices returns the device ids stored in whatsmeow's store.
func (d *Driver) Devices(ctx context.Context) ([]string, error) {
	devs, err := d.container.GetAllDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: list devices: %w", err)
	}
	out := make([]string, 0, len(devs))
	for _, dev := range devs {
		if dev.ID != nil {
			out = append(out, dev.ID.String())
		}
	}
	return out, nil
}

// Open implements session.Driver.
func (d *Driver) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	var dev *store.Device
	if deviceID == "" {
		dev = d.container.NewDevice()
	} else {
		jid, err := types.ParseJID(deviceID)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: stored device id %q: %w", deviceID, err)
		}
		dev, err = d.container.GetDevice(ctx, jid)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: load device: %w", err)
		}
		if dev == nil {
			return nil, session.ErrDeviceNotFound
		}
	}
	hook := &streamErrorHook{}
	cli := whatsmeow.NewClient(dev, d.clientLog(sessionID, hook))
	// whatsmeow never reconnects by itself: a dropped or failed connection is reported and the
	// session layer reconnects with a new client (in cluster mode after checking in Redis that
	// the shard is still this replica's). whatsmeow's reconnect started the new connection's
	// handler loop on the client's one event queue before the old loop ended, so two loops took
	// one session's consecutive messages at once and a later one could be numbered first.
	cli.EnableAutoReconnect = false
	cli.InitialAutoReconnect = false
	cli.ManualHistorySyncDownload = true // the gateway never needs chat history
	// After pairing, WhatsApp's 515 asks the client to log in again. whatsmeow's own handling
	// disconnects and dials unconditionally, even on a connection the session already closed,
	// so a stale client could log in and replace the session's newer one (the device then
	// parks as taken over); the conn reconnects itself instead, never after its Disconnect.
	cli.DisableLoginAutoReconnect = true
	cli.BackgroundEventCtx = d.ctx
	// Messages are acknowledged to WhatsApp only once the gateway made them durable: whatsmeow
	// sends a message's receipt (and, with SynchronousAck, a receipt's ack) only when the
	// handler reports success, and keeps the decrypted plaintext in its store until then, so a
	// message WhatsApp delivers again after a failure or a crash decrypts again (its Signal
	// ratchet already moved on).
	cli.EnableDecryptedEventBuffer = true
	cli.SynchronousAck = true
	c := &conn{d: d, cli: cli, handle: handle, sessionID: sessionID}
	ws := &http.Client{Transport: &socketWatch{base: d.wsDial, attempt: c.attempt.Load}}
	cli.SetPreLoginHTTPClient(ws)
	cli.SetWebsocketHTTPClient(ws)
	if d.dialHTTP != nil {
		cli.SetMediaHTTPClient(d.dialHTTP) // media downloads are served by the fake server too
	}
	hook.seen = c.sawStreamError // before Connect: no frame has arrived yet
	// A stored device decrypts behind its gate from the start; a device paired on this client
	// gets its store at pairing and its gate before the login that follows (loginReconnect).
	c.gateDevice()
	c.batchPreKeys() // prekeys.go
	// A scan is confirmed only when the session accepts it (session.PairRequested: its
	// connection is current, its replica holds it and is not closing; the device is recorded
	// first). Refused, whatsmeow answers WhatsApp with an error and the phone shows the linking
	// failed, as for a QR whose connection is gone, instead of linking a device the session
	// would never learn of.
	cli.PrePairCallback = func(jid types.JID, _, _ string) bool {
		return !c.released.Load() && c.handle(session.PairRequested{DeviceID: jid.String()}) == nil
	}
	cli.AddEventHandlerWithSuccessStatus(c.onEvent)
	return c, nil
}

// Forget implements session.Driver.
func (d *Driver) Forget(ctx context.Context, deviceID string) error {
	jid, err := types.ParseJID(deviceID)
	if err != nil {
		return fmt.Errorf("whatsapp: device id %q: %w", deviceID, err)
	}
	dev, err := d.container.GetDevice(ctx, jid)
	if err != nil {
		return fmt.Errorf("whatsapp: load device: %w", err)
	}
	if dev == nil {
		return nil
	}
	if err := d.container.DeleteDevice(ctx, dev); err != nil {
		return fmt.Errorf("whatsapp: delete device: %w", err)
	}
	return nil
}

type conn struct {
	d      *Driver
	cli    *whatsmeow.Client
	handle func(session.DriverEvent) error
	// sessionID is the session the connection belongs to (media references are kept by it).
	sessionID string
	// live is true between a Connected event and the next event or call that ends the
	// connection. whatsmeow's own IsLoggedIn stays true after a network drop (it is only cleared
	// by a stream error), so it cannot tell a dropped session from a connected one.
	live atomic.Bool
	// replaced: WhatsApp sent this client's stream <stream:error><conflict type="replaced"/>
	// (seen as the frame arrives: clientLog); replacedSent: the session was told (StreamReplaced).
	// whatsmeow queues the stream error behind the event being handled and drops its queue when
	// the socket closes first, so a slow handler (a refused message) could lose it: the driver
	// then tells the session itself.
	replaced, replacedSent atomic.Bool
	// dialMu orders Disconnect against the reconnect after a 515 (loginReconnect): once closed
	// is set, that reconnect does not dial.
	dialMu sync.Mutex
	closed bool
	// abandoned (under dialMu): Connect returned while whatsmeow's connect still runs (its socket
	// closed during the handshake, or ctx ended); whatsmeow holds the client's socket lock until
	// it returns, so Disconnect leaves the client to abandon's goroutine.
	abandoned bool
	// attempt is the current Connect's dial: its socket's first failed read marks it
	// (socketwatch.go).
	attempt atomic.Pointer[dialAttempt]
	// released is set by Release: the session let go of the connection. whatsmeow takes an event
	// dispatched to no handler for handled, so removing the handler would acknowledge a message
	// decrypted before the release (and whatsmeow would clear its buffered plaintext in the
	// device store, shared by every replica): WhatsApp's redelivery to the session's next
	// connection would then be dropped as already processed, the message lost. The handler
	// stays and refuses messages and receipts (not acknowledged: WhatsApp delivers them again)
	// and passes nothing on.
	released atomic.Bool
	// decryptOff is set once Disconnect closed the socket: the client decrypts nothing more
	// (gatedEventBuffer), whatever its handler loop still holds; WhatsApp delivers it again to
	// the session's next connection, possibly another replica's, whose decryption the gate of
	// this process cannot order.
	decryptOff atomic.Bool
	// beforeLogin, set by tests only before Connect, runs as the login after a 515 is about to
	// dial (slowlogin_test.go holds that login there).
	beforeLogin func()
}

// Connect implements session.Conn. The client lives in the driver's context, not in ctx (which
// only bounds how long the caller waits for the first connection).
func (c *conn) Connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.d.timeout)
	defer cancel()
	c.dialMu.Lock()
	c.closed = false
	c.dialMu.Unlock()
	c.decryptOff.Store(false)
	c.gateDevice() // a no-op but for a client that paired its device and dials it again
	c.batchPreKeys()
	return c.dialWatched(ctx, "connect", c.abandon)
}

// dialWatched runs whatsmeow's Connect on a fresh dialAttempt (socketwatch.go) and returns its
// result, or as soon as the socket it dialled closes during the handshake, or when ctx ends; in
// the last two cases whatsmeow's connect is left to end by itself through leave (abandon, or
// abandonLocked when the caller holds dialMu). what names the dial in errors.
func (c *conn) dialWatched(ctx context.Context, what string, leave func(done <-chan error)) error {
	attempt := newDialAttempt()
	c.attempt.Store(attempt)
	done := make(chan error, 1)
	go func() { done <- c.cli.Connect() }()
	select {
	case err := <-done:
		if gone := attempt.goneErr(); err == nil && gone != nil {
			// The socket closed as the handshake ended, before whatsmeow watched it for a close
			// (it reports a Disconnected only from then on): nothing would report this one.
			return fmt.Errorf("whatsapp: %s: %w: %w", what, errClosedInHandshake, gone)
		}
		return err
	case <-attempt.gone:
		leave(done)
		return fmt.Errorf("whatsapp: %s: %w: %w", what, errClosedInHandshake, attempt.goneErr())
	case <-ctx.Done():
		leave(done)
		return fmt.Errorf("whatsapp: %s: %w", what, ctx.Err())
	}
}

// abandon leaves whatsmeow's connect, whose result done will carry, to end by itself: a handshake
// on a socket that closed ends only at whatsmeow's NoiseHandshakeResponseTimeout (20 s), a dial
// only when the server answers it. Until then whatsmeow holds the client's socket lock, which
// every call that closes the client takes, so Disconnect does not wait for it: when the connect
// returns, whatever it opened is closed here (the session has given this connection up).
func (c *conn) abandon(done <-chan error) {
	c.dialMu.Lock()
	c.abandonLocked(done)
	c.dialMu.Unlock()
}

// abandonLocked is abandon for a caller that holds dialMu.
func (c *conn) abandonLocked(done <-chan error) {
	c.abandoned = true
	go func() {
		err := <-done
		c.dialMu.Lock()
		c.abandoned = false
		c.closed = true
		c.live.Store(false)
		c.cli.Disconnect()
		c.decryptOff.Store(true)
		c.dialMu.Unlock()
		c.d.log.Debug("whatsapp: an abandoned connect ended; its client is closed", "session_id", c.sessionID, "err", err)
	}()
}

// Disconnect implements session.Conn.
func (c *conn) Disconnect() {
	c.dialMu.Lock()
	c.closed = true
	c.live.Store(false)
	if !c.abandoned {
		c.cli.Disconnect()
	} // else abandon closes the client when whatsmeow's connect returns
	// After the socket closed (or before an abandoned connect's could open): nothing whatsmeow
	// does then reaches WhatsApp.
	c.decryptOff.Store(true)
	c.dialMu.Unlock()
	if c.replaced.Load() && !c.replacedSent.Swap(true) {
		// The session dropped the connection (a redelivery) before whatsmeow dispatched the
		// replaced stream it had queued: unaware, the session would reconnect and take the
		// device back from the client that took it over.
		_ = c.handle(session.StreamReplaced{})
	}
}

// loginReconnect logs in again after WhatsApp's 515 (events.ManualLoginReconnect), as whatsmeow
// would, unless the session closed the connection: under dialMu, so a Disconnect either comes
// first (no dial) or after the new socket is up (and closes it).
//
// Its dial is watched like Connect's (socketwatch.go): a socket closed during its handshake gives
// the login up at the close instead of after whatsmeow's 20 s (issue 19, whatsapp-handshake-cut:
// a session paired during a cut waited 20 s, then the login watch's 20 s). A failed login is
// reported (session.LoginFailed): nothing of whatsmeow retries it, and the session's login watch
// reconnects the device on a new connection at once.
func (c *conn) loginReconnect() {
	err := c.loginAgain()
	if err == nil {
		return
	}
	c.d.log.Warn("whatsapp: login reconnect after 515 failed", "session_id", c.sessionID, "err", err)
	if !c.released.Load() {
		_ = c.handle(session.LoginFailed{Reason: err.Error()})
	}
}

// loginAgain dials the login after a 515 on this client: nil when it is up or the connection was
// closed (no dial).
func (c *conn) loginAgain() error {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	if c.closed {
		c.d.log.Debug("whatsapp: no login reconnect after 515: the connection was closed", "session_id", c.sessionID)
		return nil
	}
	c.cli.Disconnect()
	// The device paired on this client: whatsmeow's store replaced its event buffer with an
	// ungated one at pairing, and the first messages arrive on the socket dialled now. The
	// buffer is swapped while no socket of the client is up: nothing of whatsmeow's reads it.
	c.gateDevice()
	c.batchPreKeys() // prekeys.go
	if c.beforeLogin != nil {
		c.beforeLogin()
	}
	// No deadline of ours: whatsmeow's own dial and handshake timeouts end it.
	return c.dialWatched(context.Background(), "login reconnect", c.abandonLocked)
}

// sawStreamError records a stream error the client received (its XML, as whatsmeow logs it).
func (c *conn) sawStreamError(xml string) {
	if strings.Contains(xml, `<conflict type="replaced"`) {
		c.replaced.Store(true)
	}
}

// LoggedIn implements session.Conn: logged in (Connected seen since the last drop) and the socket
// is up.
func (c *conn) LoggedIn() bool { return c.live.Load() && c.cli.IsConnected() && c.cli.IsLoggedIn() }

// LoggingIn implements session.LoginProgress: WhatsApp accepted the login (whatsmeow marks the
// client logged in as it takes the <success> node, before its synchronous store writes and the
// prekey upload and passive request that precede Connected) on a socket that is up, and Connected
// has not been seen yet. whatsmeow dispatches Connected whatever those requests answered (each
// bounded by its request timeout), and a socket that closes meanwhile reports Disconnected.
// IsLoggedIn (an atomic) is asked before IsConnected, which waits for the client's socket lock:
// a connect in its handshake holds that lock up to 20 s, and its client is not logged in (a new
// client, or the login after a 515, which whatsmeow clears it for).
func (c *conn) LoggingIn() bool { return !c.live.Load() && c.cli.IsLoggedIn() && c.cli.IsConnected() }

// Release implements session.Conn.
func (c *conn) Release() { c.released.Store(true) }

// Logout implements session.Conn.
func (c *conn) Logout(ctx context.Context) error {
	err := c.cli.Logout(ctx)
	if err == nil {
		c.live.Store(false)
	}
	return err
}

// SendText implements session.Conn.
func (c *conn) SendText(ctx context.Context, msg session.OutgoingText) (string, error) {
	to := types.NewJID(strings.TrimPrefix(msg.Phone, "+"), types.DefaultUserServer)
	var own types.JID
	if id := c.cli.Store.ID; id != nil {
		own = id.ToNonAD()
	}
	resp, err := c.cli.SendMessage(ctx, to, outgoingText(msg, to, own), whatsmeow.SendRequestExtra{ID: types.MessageID(msg.ID)})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// onEvent translates one whatsmeow event and reports whether whatsmeow may acknowledge it to
// WhatsApp: false when the session layer could not make a message or receipt durable.
func (c *conn) onEvent(raw any) bool {
	if c.released.Load() {
		switch raw.(type) {
		case *events.Message, *events.Receipt:
			return false // not acknowledged: WhatsApp delivers it again to the session's next connection
		}
		return true
	}
	var ev session.DriverEvent
	keepLive := false // the event is about a socket the client has already replaced
	switch e := raw.(type) {
	case *events.QR:
		ev = session.QRCodes{Codes: e.Codes}
	case *events.ManualLoginReconnect:
		go c.loginReconnect() // off whatsmeow's handler goroutine, as whatsmeow's own handling does
		return true
	case *events.PairSuccess:
		ev = session.PairSuccess{DeviceID: e.ID.String()}
	case *events.PairError:
		ev = session.PairFailed{Reason: fmt.Sprint(e.Error)}
	case *events.QRScannedWithoutMultidevice:
		ev = session.PairFailed{Reason: "scanned without multi-device"}
	case *events.Connected:
		c.replaced.Store(false)
		ev = session.Connected{}
	case *events.Disconnected:
		ev = session.Disconnected{}
		if c.replaced.Load() && !c.replacedSent.Swap(true) {
			// The socket closed after WhatsApp said another client took the device over, and
			// whatsmeow has not dispatched that yet: a replaced stream, not a network drop.
			ev = session.StreamReplaced{}
		} else if c.cli.IsConnected() && c.cli.IsLoggedIn() {
			// whatsmeow dispatches Disconnected on a goroutine of its own: a socket of this
			// client dialed since (its auto-reconnect when it was on; now only the login
			// reconnect after a 515) may already be up and its Connected handled first. Clearing
			// live then would leave the connection reporting down while it is logged in.
			keepLive = true
		}
	case *events.LoggedOut:
		ev = session.LoggedOut{Reason: e.Reason.String()}
	case *events.StreamReplaced:
		if c.replacedSent.Swap(true) {
			return true // already told (Disconnect, Disconnected)
		}
		ev = session.StreamReplaced{}
	case *events.KeepAliveTimeout:
		if !keepaliveDead(e, time.Now()) {
			return true // whatsmeow keeps pinging; WhatsApp may still answer
		}
		// With its auto-reconnect off, whatsmeow only reports failing keepalives and keeps the
		// socket: a connection whose peer went silent (a half-open TCP path) would stay
		// "connected" for good. It is dropped here, as whatsmeow's auto-reconnect would have,
		// and reported so that the session connects a new client.
		c.d.log.Warn("whatsapp: no keepalive answered; dropping the connection", "session_id", c.sessionID,
			"failed_keepalives", e.ErrorCount, "last_answered", e.LastSuccess)
		c.Disconnect()
		if c.replacedSent.Load() {
			return true // Disconnect told the session: WhatsApp had replaced the stream
		}
		ev = session.Disconnected{}
	case *events.TemporaryBan:
		ev = session.ConnectFailed{Reason: "temporary ban: " + e.String()}
	case *events.ClientOutdated:
		ev = session.ConnectFailed{Reason: "client outdated"}
	case *events.ConnectFailure:
		ev = session.ConnectFailed{Reason: fmt.Sprintf("%d %s", int(e.Reason), e.Message)}
	case *events.CATRefreshError:
		ev = session.ConnectFailed{Reason: "CAT refresh: " + fmt.Sprint(e.Error)}
	case *events.Message:
		msg, ok := messageEvent(e)
		if !ok {
			return true
		}
		// The file's reference and keys are kept before the message is acknowledged, so
		// GET .../media can download it later, after any restart.
		if err := c.d.media.put(c.d.ctx, c.sessionID, e.Info.ID, e.Message); err != nil {
			c.d.log.Warn("media message not acknowledged: its reference could not be kept; WhatsApp delivers it again", "session_id", c.sessionID, "err", err)
			return false
		}
		ev = msg
	case *events.Receipt:
		r, ok := receiptEvent(e)
		if !ok {
			return true
		}
		ev = r
	default:
		return true
	}
	_, connected := ev.(session.Connected)
	switch ev.(type) {
	case session.QRCodes, session.PairSuccess, session.PairFailed, session.MessageReceived, session.ReceiptReceived:
	default:
		if !keepLive {
			c.live.Store(connected)
		}
	}
	return c.handle(ev) == nil
}

// keepaliveDead reports whether a connection whose keepalive just failed is dead: none answered
// for longer than whatsmeow.KeepAliveMaxFailTime (3 min), whatsmeow's own threshold for
// reconnecting.
func keepaliveDead(e *events.KeepAliveTimeout, now time.Time) bool {
	return now.Sub(e.LastSuccess) > whatsmeow.KeepAliveMaxFailTime
}

// slogAdapter passes whatsmeow's log lines to slog. Sub loggers only extend a module string, so
// a client costs no logger allocations beyond a few small structs.
type slogAdapter struct {
	log    *slog.Logger
	module string
	debug  bool
	// streamErrors, on a client's logger and its Recv logger, receives the client's stream errors.
	streamErrors *streamErrorHook
}

// routineConnectionErrors are the prefixes of whatsmeow's ERROR lines that report a connection
// dropping or a reconnect attempt failing: routine with WhatsApp (network changes, server
// restarts, a phone unlinking), retried by whatsmeow or the session layer, and reported as
// disconnected/connected events. They are logged at WARN so that ERROR stays for what needs a person.
var routineConnectionErrors = []string{
	"Error reading from websocket",
	"Error reconnecting after autoreconnect sleep",
	"Initial connection failed but reconnecting in background",
	"Failed to reconnect after 515 code",
}

// errorLevel is the slog level of one of whatsmeow's ERROR lines.
func errorLevel(msg string) slog.Level {
	for _, p := range routineConnectionErrors {
		if strings.HasPrefix(msg, p) {
			return slog.LevelWarn
		}
	}
	return slog.LevelError
}

// Errorf implements waLog.Logger: ERROR, except routine connection churn (errorLevel).
func (a *slogAdapter) Errorf(msg string, args ...any) {
	a.log.Log(context.Background(), errorLevel(msg), fmt.Sprintf(msg, args...), "module", a.module)
}

// Warnf implements waLog.Logger.
func (a *slogAdapter) Warnf(msg string, args ...any) {
	a.log.Warn(fmt.Sprintf(msg, args...), "module", a.module)
}

// Infof implements waLog.Logger (dropped unless debug).
func (a *slogAdapter) Infof(msg string, args ...any) {
	if a.debug {
		a.log.Info(fmt.Sprintf(msg, args...), "module", a.module)
	}
}

// Debugf implements waLog.Logger (dropped unless debug).
func (a *slogAdapter) Debugf(msg string, args ...any) {
	if h := a.streamErrors; h != nil && h.seen != nil && len(args) == 1 {
		if xml, ok := args[0].(string); ok && strings.HasPrefix(xml, "<stream:error") {
			h.seen(xml)
		}
	}
	if a.debug {
		a.log.Debug(fmt.Sprintf(msg, args...), "module", a.module)
	}
}

// Sub implements waLog.Logger.
func (a *slogAdapter) Sub(module string) waLog.Logger {
	sub := &slogAdapter{log: a.log, module: a.module + "/" + module, debug: a.debug}
	if module == "Recv" {
		sub.streamErrors = a.streamErrors // whatsmeow logs every node the client receives there
	}
	return sub
}

// streamErrorHook passes a client's received stream errors to its conn.
type streamErrorHook struct{ seen func(xml string) }

// clientLog is the logger of session sessionID's client: it also shows hook the stream errors
// the client receives, in order and as they arrive (whatsmeow logs each received node, at
// debug level, before it queues the node for its handlers).
func (d *Driver) clientLog(sessionID string, hook *streamErrorHook) waLog.Logger {
	l := d.waLog.Sub(sessionID).(*slogAdapter)
	l.streamErrors = hook
	return l
}
