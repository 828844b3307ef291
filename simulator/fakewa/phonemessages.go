package fakewa

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Errors of phone messages.
var (
	ErrBadMessage    = errors.New("fakewa: bad phone message")
	ErrOutboxFull    = errors.New("fakewa: too many messages held for this device")
	ErrNoDeviceKeys  = errors.New("fakewa: the device never gave its Signal keys")
	errSignalEncrypt = errors.New("fakewa: signal encrypt")
)

// PhoneMessage is what a contact's phone writes to a session's device.
type PhoneMessage struct {
	// From is the writing phone's number (digits, country code first).
	From string `json:"from"`
	// Text is the message text, or the reaction emoji when ReactTo is set.
	Text string `json:"text"`
	// Quote, when set, makes the message a reply quoting this message id.
	Quote string `json:"quote,omitempty"`
	// ReactTo, when set, makes the message a reaction (Text: the emoji, "" removes it) to this
	// message id.
	ReactTo string `json:"react_to,omitempty"`
	// Media, when set, makes the message an image or a document (Text: its caption).
	Media *PhoneMedia `json:"media,omitempty"`
}

// kind names the message for the event log: text, reply or reaction.
func (m PhoneMessage) kind() string {
	switch {
	case m.ReactTo != "":
		return "reaction"
	case m.Media != nil:
		return m.Media.Kind
	case m.Quote != "":
		return "reply"
	default:
		return "text"
	}
}

func (m PhoneMessage) validate() error {
	switch {
	case !validPhone(m.From):
		return fmt.Errorf("%w: from must be 5 to 15 digits, got %q", ErrBadMessage, m.From)
	case m.ReactTo == "" && m.Media == nil && m.Text == "":
		return fmt.Errorf("%w: empty text", ErrBadMessage)
	case m.ReactTo != "" && (m.Quote != "" || m.Media != nil):
		return fmt.Errorf("%w: a reaction carries neither a quote nor media", ErrBadMessage)
	case m.Media != nil:
		return m.Media.validate()
	case len(m.Text) > 64<<10:
		return fmt.Errorf("%w: text over 64 KiB", ErrBadMessage)
	}
	return nil
}

// deviceKeys is what a device told the server about its Signal keys: its registration ID and
// signed prekey (in the pairing registration data and every prekey upload) and the one-time
// prekeys it uploaded and nobody used yet.
type deviceKeys struct {
	regID         uint32
	signedID      uint32
	signedPub     [32]byte
	signedSig     [64]byte
	oneTimePreKey []uploadedPreKey
}

type uploadedPreKey struct {
	id  uint32
	pub [32]byte
}

// maxStoredPreKeys bounds the one-time prekeys kept per device (a first upload has 812).
const maxStoredPreKeys = 64

// heldMessage is a phone message the device has not acknowledged with a receipt yet: sent and
// waiting for its receipt, or held while the device is offline. It is (re)delivered at each login
// until a receipt arrives, as WhatsApp does.
type heldMessage struct {
	id    string
	from  string // the phone's number
	kind  string
	enc   string // pkmsg or msg
	node  waBinary.Node
	phone *phoneSignal
	tries int
	// plaintext is the padded message, kept to encrypt it again when the device asks (retry).
	plaintext []byte
	retries   int
}

// maxRetries bounds how often a message is encrypted afresh for a device's retry receipts
// (whatsmeow stops asking after its fourth).
const maxRetries = 4

// SendMessage plays a contact's phone writing to a session's device: the phone encrypts the
// message with its Signal session with the device (built from the device's prekey bundle on the
// first message, a pkmsg; msg once the device acknowledged one), and the server delivers it in a
// <message> node, or holds it while the device is offline and delivers it when the device logs
// in. The device's delivery receipt is recorded; a message without one is delivered again at the
// next login. It returns the message id.
func (s *Server) SendMessage(ctx context.Context, to types.JID, m PhoneMessage) (string, error) {
	if err := m.validate(); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	d, ok := s.devices[to]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownDevice, to)
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	h, err := s.sendLocked(ctx, d, m)
	if err != nil {
		return "", err
	}
	return h.id, nil
}

// sendLocked encrypts m, queues it on the device and delivers it when the device is online.
// Call with d.sendMu held.
func (s *Server) sendLocked(ctx context.Context, d *device, m PhoneMessage) (*heldMessage, error) {
	s.mu.Lock()
	loggedOut, keysKnown, c := d.loggedOut, d.keys.regID != 0, d.conn
	s.mu.Unlock()
	switch {
	case loggedOut:
		return nil, fmt.Errorf("%w: %s", ErrLoggedOut, d.jid)
	case !keysKnown:
		return nil, fmt.Errorf("%w: %s", ErrNoDeviceKeys, d.jid)
	case len(d.outbox) >= s.cfg.MaxHeldMessages:
		return nil, fmt.Errorf("%w: %s holds %d", ErrOutboxFull, d.jid, len(d.outbox))
	}
	now := time.Now()
	id := newMessageID()
	phone := s.phoneSignal(m.From)
	msg, err := s.messageProto(d, m, now)
	if err != nil {
		return nil, err
	}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("fakewa: marshal message: %w", err)
	}
	padded := padMessage(plaintext)
	encType, ciphertext, err := s.encryptFor(ctx, phone, d, padded)
	if err != nil {
		return nil, err
	}
	msgType, encAttrs := "text", waBinary.Attrs{"v": "2", "type": encType}
	switch {
	case m.ReactTo != "":
		msgType = "reaction"
	case m.Media != nil:
		msgType, encAttrs["mediatype"] = "media", m.Media.Kind
	}
	h := &heldMessage{
		id: id, from: m.From, kind: m.kind(), enc: encType, phone: phone, plaintext: padded,
		node: waBinary.Node{
			Tag: "message",
			Attrs: waBinary.Attrs{
				"id": id, "from": types.NewJID(m.From, types.DefaultUserServer), "type": msgType,
				"t": unixString(now), "notify": "Contact " + m.From,
			},
			Content: []waBinary.Node{{Tag: "enc", Attrs: encAttrs, Content: ciphertext}},
		},
	}
	d.outbox = append(d.outbox, h)
	s.rememberAuthor(d, id, m.From)
	if c == nil || !s.deliverHeld(c, d, h) {
		s.events.add(Event{Kind: EventPhoneMessageHeld, JID: d.jid.String(), Phone: d.account.phone,
			MessageID: id, From: m.From, Detail: h.kind, Enc: encType})
	}
	return h, nil
}

// deliverHeld writes one held message to the device's connection and records it; false when the
// write failed (the message stays held for the next login). Call with d.sendMu held.
func (s *Server) deliverHeld(c *conn, d *device, h *heldMessage) bool {
	if err := c.sendNode(h.node); err != nil {
		return false
	}
	h.tries++
	s.events.add(Event{Kind: EventPhoneMessageDelivered, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone,
		MessageID: h.id, From: h.from, Detail: h.kind, Enc: h.enc, Attempt: h.tries})
	return true
}

// redeliverHeld delivers, in order, every message the device has not acknowledged, then every
// receipt for its own messages it has not acked, then tells it the offline backlog is done.
// Called at login with d.sendMu held.
func (s *Server) redeliverHeld(c *conn, d *device) {
	n := 0
	for _, h := range d.outbox {
		if !s.deliverHeld(c, d, h) {
			return
		}
		n++
	}
	for _, r := range d.receiptsOut {
		if !s.deliverReceipt(c, r) {
			return
		}
		n++
	}
	if err := c.sendNode(waBinary.Node{Tag: "ib", Content: []waBinary.Node{
		{Tag: "offline", Attrs: waBinary.Attrs{"count": itoa(n)}},
	}}); err != nil {
		s.log.Debug("fakewa: offline marker", "conn", c.id, "err", err)
	}
}

// receiptFromDevice handles a <receipt> the device sent for a message it got (delivery, read,
// retry, ...): a held message is acknowledged by any receipt but a retry; the first one turns the
// phone's session from pkmsg to msg.
func (c *conn) receiptFromDevice(n *waBinary.Node) {
	d := c.loggedInDevice()
	if d == nil {
		return
	}
	typ := attrString(n, "type")
	ids := []string{attrString(n, "id")}
	if list, ok := n.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildren() {
			if id := attrString(&item, "id"); id != "" {
				ids = append(ids, id)
			}
		}
	}
	to := ""
	if jid, ok := attrJID(n, "to"); ok {
		to = jid.String()
	}
	detail := typ
	if detail == "" {
		detail = "delivery"
	}
	s := c.s
	for _, id := range ids {
		if id == "" {
			continue
		}
		var acked *heldMessage
		if typ == "retry" {
			s.retryHeld(c, d, id, n)
		} else {
			acked = d.takeHeld(id)
		}
		e := Event{Kind: EventDeviceReceipt, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone,
			MessageID: id, To: to, Detail: detail}
		if acked != nil {
			e.From = acked.from
			acked.phone.acknowledge(d.jid)
		}
		s.events.add(e)
	}
}

// retryHeld answers a device's retry receipt (it could not decrypt a message) as a phone does: it
// drops its session with the device, builds a new one from the keys the receipt carries (or the
// ones the device uploaded) and sends the message again, encrypted afresh as a pkmsg.
func (s *Server) retryHeld(c *conn, d *device, id string, receipt *waBinary.Node) {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	var h *heldMessage
	for _, held := range d.outbox {
		if held.id == id {
			h = held
			break
		}
	}
	if h == nil || h.retries >= maxRetries {
		return
	}
	h.retries++
	if keys, ok := receipt.GetOptionalChildByTag("keys"); ok {
		s.mu.Lock()
		d.storeRetryKeys(keys)
		s.mu.Unlock()
	}
	if reg, ok := receipt.GetOptionalChildByTag("registration"); ok {
		if b, _ := reg.Content.([]byte); len(b) == 4 {
			s.mu.Lock()
			d.keys.regID = binary.BigEndian.Uint32(b)
			s.mu.Unlock()
		}
	}
	h.phone.forget(d.jid)
	encType, ciphertext, err := s.encryptFor(c.ctx, h.phone, d, h.plaintext)
	if err != nil {
		s.log.Debug("fakewa: encrypt a retried message", "message_id", id, "err", err)
		return
	}
	h.enc = encType
	attrs := waBinary.Attrs{"v": "2", "type": encType, "count": itoa(h.retries)}
	if children := h.node.GetChildren(); len(children) == 1 {
		if mt, ok := children[0].Attrs["mediatype"]; ok {
			attrs["mediatype"] = mt
		}
	}
	h.node.Content = []waBinary.Node{{Tag: "enc", Attrs: attrs, Content: ciphertext}}
	s.deliverHeld(c, d, h)
}

// forget drops the phone's session with the device: the next message builds a new one.
func (p *phoneSignal) forget(device types.JID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sessions, device.SignalAddress().String())
}

// storeRetryKeys records the keys a retry receipt carries: the signed prekey and one fresh
// one-time prekey (used first). Call with s.mu held.
func (d *device) storeRetryKeys(n waBinary.Node) {
	if skey, ok := n.GetOptionalChildByTag("skey"); ok {
		id, val, sig := childBytes(skey, "id"), childBytes(skey, "value"), childBytes(skey, "signature")
		if len(id) == 3 && len(val) == 32 && len(sig) == 64 {
			d.keys.signedID = uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2])
			d.keys.signedPub, d.keys.signedSig = [32]byte(val), [64]byte(sig)
		}
	}
	if key, ok := n.GetOptionalChildByTag("key"); ok {
		id, val := childBytes(key, "id"), childBytes(key, "value")
		if len(id) == 3 && len(val) == 32 {
			otk := uploadedPreKey{id: uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2]), pub: [32]byte(val)}
			d.keys.oneTimePreKey = append([]uploadedPreKey{otk}, d.keys.oneTimePreKey...)
		}
	}
}

// takeHeld removes and returns the held message with this id, if any.
func (d *device) takeHeld(id string) *heldMessage {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	for i, h := range d.outbox {
		if h.id == id {
			d.outbox = append(d.outbox[:i], d.outbox[i+1:]...)
			return h
		}
	}
	return nil
}

// acknowledge records that the device decrypted a message of this phone: the phone's next
// messages to it are plain msg, no longer pkmsg.
func (p *phoneSignal) acknowledge(device types.JID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.sessions[device.SignalAddress().String()]; ok {
		r.SessionState().ClearUnackPreKeyMessage()
	}
}

// phoneSignal returns (creating) the Signal state of the phone number. Its identity is the one
// bundleNode gives the same phone, so the gateway and the phone agree on it whichever writes first.
func (s *Server) phoneSignal(phone string) *phoneSignal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.phones[phone]; ok {
		return p
	}
	jid := types.NewJID(phone, types.DefaultUserServer)
	key := s.identityForLocked(jid)
	regSeed := s.contacts.derive("registration", jid.User)
	p := newPhoneSignal(key, 1+binary.BigEndian.Uint32(regSeed[:4])%16380)
	s.phones[phone] = p
	return p
}

// identityForLocked is the identity key of a user's device: an account's phone uses the account
// key, anyone else a key derived from the address. Call with s.mu held.
func (s *Server) identityForLocked(jid types.JID) *keys.KeyPair {
	if a, ok := s.accounts[jid.User]; ok && jid.Device == 0 {
		return a.key
	}
	if a, ok := s.byLID[jid.User]; ok && jid.Device == 0 {
		return a.key
	}
	return keys.NewKeyPairFromPrivateKey(s.contacts.derive("identity", jid.SignalAddress().String()))
}

// encryptFor encrypts plaintext from phone to the device, building the Signal session from the
// device's keys first when there is none. It returns "pkmsg" or "msg" and the ciphertext.
func (s *Server) encryptFor(ctx context.Context, phone *phoneSignal, d *device, plaintext []byte) (string, []byte, error) {
	addr := d.jid.SignalAddress()
	phone.mu.Lock()
	defer phone.mu.Unlock()
	builder := session.NewBuilder(phone, phone, phone, phone, addr, signalSerializer)
	if _, ok := phone.sessions[addr.String()]; !ok {
		if err := builder.ProcessBundle(ctx, s.deviceBundle(d)); err != nil {
			return "", nil, fmt.Errorf("%w: session with %s: %w", errSignalEncrypt, d.jid, err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, plaintext)
	if err != nil {
		return "", nil, fmt.Errorf("%w: to %s: %w", errSignalEncrypt, d.jid, err)
	}
	if msg.Type() == protocol.PREKEY_TYPE {
		return "pkmsg", msg.Serialize(), nil
	}
	return "msg", msg.Serialize(), nil
}

// deviceBundle is the device's prekey bundle as WhatsApp would serve it: identity, signed prekey,
// and one of its uploaded one-time prekeys while any is left (each is used once).
func (s *Server) deviceBundle(d *device) *prekey.Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &d.keys
	preKeyID := optional.NewEmptyUint32()
	var preKeyPub ecc.ECPublicKeyable
	if len(k.oneTimePreKey) > 0 {
		otk := k.oneTimePreKey[0]
		k.oneTimePreKey = k.oneTimePreKey[1:]
		preKeyID, preKeyPub = optional.NewOptionalUint32(otk.id), ecc.NewDjbECPublicKey(otk.pub)
	}
	return prekey.NewBundle(k.regID, uint32(d.jid.Device), preKeyID, k.signedID, preKeyPub,
		ecc.NewDjbECPublicKey(k.signedPub), k.signedSig, identity.NewKey(ecc.NewDjbECPublicKey(d.identityPub)))
}

// messageProto builds the WhatsApp message protobuf of m (uploading its media, if any).
func (s *Server) messageProto(d *device, m PhoneMessage, now time.Time) (*waE2E.Message, error) {
	phoneJID := types.NewJID(m.From, types.DefaultUserServer)
	var quote *waE2E.ContextInfo
	if m.Quote != "" {
		author := d.account.phone
		if a := s.authorOf(d, m.Quote); a != "" {
			author = a
		}
		quote = &waE2E.ContextInfo{
			StanzaID:      proto.String(m.Quote),
			Participant:   proto.String(types.NewJID(author, types.DefaultUserServer).String()),
			QuotedMessage: &waE2E.Message{Conversation: proto.String("")},
		}
	}
	switch {
	case m.Media != nil:
		return s.mediaMessage(m, quote)
	case m.ReactTo != "":
		return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: &waCommon.MessageKey{
				RemoteJID: proto.String(phoneJID.String()),
				FromMe:    proto.Bool(s.authorOf(d, m.ReactTo) == m.From),
				ID:        proto.String(m.ReactTo),
			},
			Text:              proto.String(m.Text),
			SenderTimestampMS: proto.Int64(now.UnixMilli()),
		}}, nil
	case quote != nil:
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(m.Text), ContextInfo: quote}}, nil
	default:
		return &waE2E.Message{Conversation: proto.String(m.Text)}, nil
	}
}

// maxRememberedAuthors bounds the message authors a device remembers for quotes and reactions.
const maxRememberedAuthors = 1024

// rememberAuthor records that phone wrote message id to the device (for later quotes and
// reactions). Call with d.sendMu held.
func (s *Server) rememberAuthor(d *device, id, phone string) {
	if d.authors == nil {
		d.authors = make(map[string]string)
	}
	if len(d.authors) >= maxRememberedAuthors {
		clear(d.authors)
	}
	d.authors[id] = phone
}

// authorOf returns the phone that wrote message id to the device, or "" (a message the device
// sent, or one forgotten). Call with d.sendMu held.
func (s *Server) authorOf(d *device, id string) string {
	return d.authors[id]
}

// padMessage appends WhatsApp's random padding (1 to 15 bytes, each the pad length).
func padMessage(plaintext []byte) []byte {
	var b [1]byte
	rand.Read(b[:])
	n := int(b[0] & 0xf)
	if n == 0 {
		n = 0xf
	}
	out := make([]byte, len(plaintext), len(plaintext)+n)
	copy(out, plaintext)
	for range n {
		out = append(out, byte(n))
	}
	return out
}

// newMessageID returns a message id in the form phones use: 32 upper-case hex digits.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// storeRegistrationKeys records the Signal keys a registering client gave in its pairing data.
func (d *device) storeRegistrationKeys(regID, skeyID, skeyVal, skeySig []byte) {
	if len(regID) != 4 || len(skeyID) != 3 || len(skeyVal) != 32 || len(skeySig) != 64 {
		return
	}
	d.keys.regID = binary.BigEndian.Uint32(regID)
	d.keys.signedID = uint32(skeyID[0])<<16 | uint32(skeyID[1])<<8 | uint32(skeyID[2])
	d.keys.signedPub, d.keys.signedSig = [32]byte(skeyVal), [64]byte(skeySig)
}

// storeUploadedKeys records a prekey upload (<iq xmlns="encrypt" type="set">): registration ID,
// signed prekey and one-time prekeys (at most maxStoredPreKeys kept). Call with s.mu held.
func (d *device) storeUploadedKeys(n *waBinary.Node) {
	if reg := childBytes(*n, "registration"); len(reg) == 4 {
		d.keys.regID = binary.BigEndian.Uint32(reg)
	}
	if skey, ok := n.GetOptionalChildByTag("skey"); ok {
		id, val, sig := childBytes(skey, "id"), childBytes(skey, "value"), childBytes(skey, "signature")
		if len(id) == 3 && len(val) == 32 && len(sig) == 64 {
			d.keys.signedID = uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2])
			d.keys.signedPub, d.keys.signedSig = [32]byte(val), [64]byte(sig)
		}
	}
	if list, ok := n.GetOptionalChildByTag("list"); ok {
		for _, key := range list.GetChildren() {
			if len(d.keys.oneTimePreKey) >= maxStoredPreKeys {
				break
			}
			id, val := childBytes(key, "id"), childBytes(key, "value")
			if key.Tag != "key" || len(id) != 3 || len(val) != 32 {
				continue
			}
			d.keys.oneTimePreKey = append(d.keys.oneTimePreKey, uploadedPreKey{
				id: uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2]), pub: [32]byte(val),
			})
		}
	}
}

// childBytes returns the byte content of parent's child tag, or nil.
func childBytes(parent waBinary.Node, tag string) []byte {
	child, ok := parent.GetOptionalChildByTag(tag)
	if !ok {
		return nil
	}
	b, _ := child.Content.([]byte)
	return b
}
