package fakewa

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
)

// conn is one client WebSocket connection. Its handler goroutine (serve) is the only reader; any
// goroutine may write through sendNode.
type conn struct {
	s      *Server
	id     uint64
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc

	dec     *frameDecoder
	pending [][]byte // frames decoded but not consumed yet

	// Set by the handshake (handler goroutine) before any other goroutine can see the conn
	// through the server's maps; read-only afterwards.
	clientStatic [32]byte
	payload      *waWa6.ClientPayload
	read         cipher.AEAD
	readCount    uint32

	wmu        sync.Mutex
	write      cipher.AEAD
	writeCount uint32

	closeOnce sync.Once
	causeMu   sync.Mutex
	cause     string

	waitMu  sync.Mutex
	waiters map[string]chan *waBinary.Node

	// loginJID is the device logged in on this connection (nil before its login), read without
	// the server's lock (silences).
	loginJID atomic.Pointer[types.JID]

	// Protected by s.mu.
	refs    []string
	pairing bool
	device  *device
	// handshaken: the Noise handshake ended (admitHandshaken); until then an outage or a
	// restart leaves the connection to be cut at its end.
	handshaken bool
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s: s, id: s.connIDs.Add(1), ws: ws, ctx: ctx, cancel: cancel,
		dec: newFrameDecoder(s.cfg.MaxFrameSize),
	}
}

// close closes the socket now; the first cause given is kept.
func (c *conn) close(cause string) {
	c.causeMu.Lock()
	if c.cause == "" {
		c.cause = cause
	}
	c.causeMu.Unlock()
	c.closeOnce.Do(func() {
		c.cancel()
		c.ws.CloseNow()
		c.waitMu.Lock()
		for id, ch := range c.waiters {
			close(ch)
			delete(c.waiters, id)
		}
		c.waitMu.Unlock()
	})
}

func (c *conn) closeCause() string {
	c.causeMu.Lock()
	defer c.causeMu.Unlock()
	return c.cause
}

// streamErrorAndClose sends a stream:error and closes the socket after the configured delay:
// whatsmeow handles stream errors asynchronously, and a close seen first reads as a network drop.
func (c *conn) streamErrorAndClose(n waBinary.Node, cause string) {
	c.streamErrorAndCloseAfter(n, cause, c.s.cfg.StreamErrorCloseDelay)
}

// streamErrorAndCloseAfter sends a stream:error and closes the socket after delay, unless the
// client closes it first.
func (c *conn) streamErrorAndCloseAfter(n waBinary.Node, cause string, delay time.Duration) {
	c.causeMu.Lock()
	if c.cause == "" {
		c.cause = cause
	}
	c.causeMu.Unlock()
	if err := c.sendNode(n); err != nil {
		c.close(cause)
		return
	}
	time.AfterFunc(delay, func() { c.close(cause) })
}

func (c *conn) loggedInDevice() *device {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.device
}

// nextFrame returns the next whole frame from the client.
func (c *conn) nextFrame(ctx context.Context) ([]byte, error) {
	for len(c.pending) == 0 {
		typ, msg, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		frames, err := c.dec.feed(msg)
		if err != nil {
			return nil, err
		}
		c.pending = frames
	}
	f := c.pending[0]
	c.pending[0] = nil
	c.pending = c.pending[1:]
	return f, nil
}

// writeFrame sends one whole frame as one WebSocket message.
func (c *conn) writeFrame(data []byte) error {
	frame, err := encodeFrame(data)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, frame)
}

// sendNode encrypts and sends one node.
func (c *conn) sendNode(n waBinary.Node) error {
	payload, err := waBinary.Marshal(n)
	if err != nil {
		return fmt.Errorf("fakewa: marshal %s: %w", n.Tag, err)
	}
	// A silence pushes nothing until it ends (silence.go).
	if !c.awaitAudible() {
		return fmt.Errorf("fakewa: connection closed while silent: %w", context.Canceled)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.write == nil {
		return errors.New("fakewa: send before handshake")
	}
	ct := c.write.Seal(nil, nonce(c.writeCount), payload, nil)
	c.writeCount++
	return c.writeFrame(ct)
}

// expect registers a waiter for the client's response to the server iq with this id.
func (c *conn) expect(id string) <-chan *waBinary.Node {
	ch := make(chan *waBinary.Node, 1)
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if c.ctx.Err() != nil {
		close(ch)
		return ch
	}
	if c.waiters == nil {
		c.waiters = make(map[string]chan *waBinary.Node)
	}
	c.waiters[id] = ch
	return ch
}

func (c *conn) forget(id string) {
	c.waitMu.Lock()
	delete(c.waiters, id)
	c.waitMu.Unlock()
}

func (c *conn) deliverResponse(n *waBinary.Node) {
	id := attrString(n, "id")
	c.waitMu.Lock()
	ch, ok := c.waiters[id]
	delete(c.waiters, id)
	c.waitMu.Unlock()
	if ok {
		ch <- n
	}
}

// serve runs the connection: handshake, then the node loop, until the socket closes.
func (c *conn) serve() {
	defer c.close("connection closed by client")
	if err := c.handshake(); err != nil {
		c.s.hsFailed.Add(1)
		c.s.log.Debug("fakewa: handshake failed", "conn", c.id, "err", err)
		return
	}
	if !c.admitHandshaken() {
		c.close("unreachable")
		return
	}
	if c.payload.Username == nil {
		if err := c.startPairing(); err != nil {
			c.s.log.Debug("fakewa: pair-device", "conn", c.id, "err", err)
			return
		}
	} else if !c.login() {
		return
	}
	for {
		frame, err := c.nextFrame(c.ctx)
		if err != nil {
			return
		}
		// A silence leaves what the client sent unread until it ends (silence.go).
		if !c.awaitAudible() {
			return
		}
		plain, err := c.read.Open(frame[:0], nonce(c.readCount), frame, nil)
		c.readCount++
		if err != nil {
			c.s.log.Debug("fakewa: undecryptable frame", "conn", c.id, "err", err)
			return // counters are out of step: nothing later can be read
		}
		node, err := decodeNode(plain, c.s.cfg.MaxFrameSize)
		if err != nil {
			c.s.log.Debug("fakewa: bad node", "conn", c.id, "err", err)
			continue
		}
		c.handleNode(node)
	}
}

func (c *conn) handshake() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.HandshakeTimeout)
	defer cancel()
	hs := newServerHandshake(socket.WAConnHeader, c.s.static, c.s.chain)
	frame, err := c.nextFrame(ctx)
	if err != nil {
		return fmt.Errorf("read client hello: %w", err)
	}
	if c.s.cutsHandshakes() {
		c.s.events.add(Event{Kind: EventHandshakeCut, Conn: c.id, Detail: "closed before the server hello"})
		c.close("handshake cut")
		return fmt.Errorf("%w: cut before the server hello (CutHandshakes)", ErrHandshake)
	}
	hello, err := hs.hello(frame)
	if err != nil {
		return err
	}
	if err := c.writeFrame(hello); err != nil {
		return fmt.Errorf("write server hello: %w", err)
	}
	frame, err = c.nextFrame(ctx)
	if err != nil {
		return fmt.Errorf("read client finish: %w", err)
	}
	res, err := hs.finish(frame)
	if err != nil {
		return err
	}
	if res.payload.Username == nil && res.payload.GetDevicePairingData() == nil {
		return fmt.Errorf("%w: payload is neither a login nor a registration", ErrHandshake)
	}
	if res.payload.Username == nil && len(res.payload.GetDevicePairingData().GetEIdent()) != 32 {
		return fmt.Errorf("%w: registration without a 32-byte identity key", ErrHandshake)
	}
	c.clientStatic, c.payload, c.read = res.clientStatic, res.payload, res.read
	c.wmu.Lock()
	c.write = res.write
	c.wmu.Unlock()
	return nil
}

// startPairing gives an unpaired client its pair-device refs.
func (c *conn) startPairing() error {
	refs := make([]string, c.s.cfg.PairRefs)
	content := make([]waBinary.Node, len(refs))
	for i := range refs {
		refs[i] = newRef()
		content[i] = waBinary.Node{Tag: "ref", Content: []byte(refs[i])}
	}
	c.s.mu.Lock()
	c.refs = refs
	for _, ref := range refs {
		c.s.refs[ref] = c
	}
	c.s.mu.Unlock()
	c.s.events.add(Event{Kind: EventQRRefsIssued, Conn: c.id, Refs: refs})
	return c.sendNode(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"from": types.ServerJID, "type": "set", "id": c.s.newID(), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: content}},
	})
}

// login answers a paired device's login with <success> or <failure>; false ends the connection.
func (c *conn) login() bool {
	p := c.payload
	if p.GetDevice() > 255 {
		c.refuse(types.EmptyJID, "", 401, "device id out of range")
		return false
	}
	jid := types.NewADJID(strconv.FormatUint(p.GetUsername(), 10), 0, uint8(p.GetDevice()))
	s := c.s
	// A silent server or device holds the login unanswered (silence.go).
	if !s.awaitSilenceEnd(jid, c.ctx.Done()) {
		return false
	}
	// Hold the device's message order from before it is online until its held messages are
	// redelivered, so no new message overtakes them.
	s.mu.Lock()
	known := s.devices[jid]
	s.mu.Unlock()
	if known != nil {
		known.sendMu.Lock()
		defer known.sendMu.Unlock()
	}
	s.mu.Lock()
	d := s.devices[jid]
	if c.refuseUnreachable(d, time.Now()) {
		s.mu.Unlock()
		c.close("unreachable")
		return false
	}
	reason, detail := 0, ""
	switch {
	case d == nil:
		reason, detail = 401, "unknown device"
	case d.loggedOut:
		reason, detail = 401, "device removed"
	case d.failNext != 0:
		reason, detail = d.failNext, "scheduled failure"
		d.failNext = 0
		if reason == 401 {
			d.loggedOut = true
		}
	case d.noisePub != c.clientStatic:
		reason, detail = 401, "noise key does not match the paired device"
	}
	if reason != 0 {
		s.mu.Unlock()
		phone := ""
		if d != nil {
			phone = d.account.phone
		}
		c.refuse(jid, phone, reason, detail)
		return false
	}
	old := d.conn
	d.conn, d.connectedAt = c, time.Now()
	d.logins++
	c.device = d
	c.loginJID.Store(&jid)
	lid := d.lid
	s.mu.Unlock()
	// A previous connection that is still open is replaced, as WhatsApp does when a session is
	// opened twice; one already closed (a drop whose handler has not finished) is not.
	if old != nil && old.ctx.Err() == nil {
		s.events.add(Event{Kind: EventReplaced, Conn: old.id, JID: jid.String(), Phone: d.account.phone, Detail: "new login"})
		old.streamErrorAndClose(streamError("", "replaced"), "replaced by new login")
	}
	s.events.add(Event{Kind: EventConnected, Conn: c.id, JID: jid.String(), Phone: d.account.phone})
	err := c.sendNode(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t": unixString(time.Now()), "lid": lid, "location": "fakewa", "props": "1", "abprops": "1",
	}})
	if err != nil {
		return false
	}
	s.redeliverHeld(c, d)
	return true
}

func (c *conn) refuse(jid types.JID, phone string, reason int, detail string) {
	e := Event{Kind: EventConnectFailed, Conn: c.id, Phone: phone, Code: reason, Detail: detail}
	if !jid.IsEmpty() {
		e.JID = jid.String()
	}
	c.s.events.add(e)
	failure := waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": strconv.Itoa(reason), "location": "fakewa"}}
	c.streamErrorAndClose(failure, "connect failure "+strconv.Itoa(reason))
	<-c.ctx.Done() // keep the handler (and the socket) alive until the delayed close
}
