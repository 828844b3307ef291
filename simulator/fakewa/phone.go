package fakewa

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Pairing errors.
var (
	ErrBadQR          = errors.New("fakewa: malformed QR string")
	ErrBadPhone       = errors.New("fakewa: phone must be 5 to 15 digits")
	ErrUnknownRef     = errors.New("fakewa: QR ref unknown (expired, used, or its client is gone)")
	ErrQRMismatch     = errors.New("fakewa: QR keys do not match the connection that got the ref")
	ErrPairInProgress = errors.New("fakewa: this client is already being paired")
	ErrPairRejected   = errors.New("fakewa: client rejected the pairing")
)

// The ADV signature prefixes (whatsmeow's AdvAccountSignaturePrefix and AdvDeviceSignaturePrefix).
var (
	advAccountSignaturePrefix = []byte{6, 0}
	advDeviceSignaturePrefix  = []byte{6, 1}
)

// QRCode is the content of a pairing QR code.
type QRCode struct {
	Ref         string
	NoisePub    [32]byte
	IdentityPub [32]byte
	AdvSecret   []byte
}

// ParseQR parses both QR string formats: "ref,noise,identity,adv" as whatsmeow's makeQRData
// writes it, and the newer form wrapped in a URL (e.g. https://wa.me/settings/linked_devices#ref,
// noise,identity,adv,platform), where the comma list follows '#' (or is the last path segment or
// the query) and fields after the fourth are ignored.
func ParseQR(s string) (QRCode, error) {
	var q QRCode
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return q, fmt.Errorf("%w: %w", ErrBadQR, err)
		}
		switch {
		case u.Fragment != "":
			s = u.Fragment
		case u.RawQuery != "":
			s, _ = url.QueryUnescape(u.RawQuery)
		default:
			s = u.Path[strings.LastIndexByte(u.Path, '/')+1:]
		}
	}
	parts := strings.Split(s, ",")
	if len(parts) < 4 {
		return q, fmt.Errorf("%w: %d comma-separated fields, want at least 4", ErrBadQR, len(parts))
	}
	q.Ref = parts[0]
	if q.Ref == "" {
		return q, fmt.Errorf("%w: empty ref", ErrBadQR)
	}
	noise, err1 := base64.StdEncoding.DecodeString(parts[1])
	ident, err2 := base64.StdEncoding.DecodeString(parts[2])
	adv, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return q, fmt.Errorf("%w: %w", ErrBadQR, err)
	}
	if len(noise) != 32 || len(ident) != 32 || len(adv) == 0 {
		return q, fmt.Errorf("%w: key lengths %d/%d/%d", ErrBadQR, len(noise), len(ident), len(adv))
	}
	q.NoisePub, q.IdentityPub, q.AdvSecret = [32]byte(noise), [32]byte(ident), adv
	return q, nil
}

func validPhone(phone string) bool {
	if len(phone) < 5 || len(phone) > 15 || phone[0] == '0' {
		return false
	}
	for _, r := range phone {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// accountLocked returns (creating) the account of phone. Call with s.mu held.
func (s *Server) accountLocked(phone string) *account {
	if a, ok := s.accounts[phone]; ok {
		return a
	}
	s.accountN++
	a := &account{phone: phone, lid: strconv.Itoa(100_000_000_000_000 + s.accountN), key: keys.NewKeyPair()}
	s.accounts[phone] = a
	s.byLID[a.lid] = a
	return a
}

// Pair plays the phone: it scans qr as the owner of phone and links the client that showed it.
// It sends pair-success, waits for the client's signed confirmation, registers the device, and
// sends stream:error 515 so the client reconnects as the new device. It returns the device JID.
func (s *Server) Pair(ctx context.Context, qr, phone string) (types.JID, error) {
	q, err := ParseQR(qr)
	if err != nil {
		return types.EmptyJID, err
	}
	if !validPhone(phone) {
		return types.EmptyJID, fmt.Errorf("%w: %q", ErrBadPhone, phone)
	}
	s.mu.Lock()
	c := s.refs[q.Ref]
	switch {
	case c == nil:
		s.mu.Unlock()
		return types.EmptyJID, ErrUnknownRef
	case c.clientStatic != q.NoisePub || !bytes.Equal(c.payload.GetDevicePairingData().GetEIdent(), q.IdentityPub[:]):
		s.mu.Unlock()
		return types.EmptyJID, ErrQRMismatch
	case c.pairing:
		s.mu.Unlock()
		return types.EmptyJID, ErrPairInProgress
	}
	c.pairing = true
	acct := s.accountLocked(phone)
	acct.nextDevice++
	if acct.nextDevice == 0 {
		acct.nextDevice = 1
	}
	devID := acct.nextDevice
	s.mu.Unlock()

	jid := types.NewADJID(phone, 0, devID)
	lid := types.JID{User: acct.lid, Device: uint16(devID), Server: types.HiddenUserServer}
	fail := func(err error) error {
		s.mu.Lock()
		c.pairing = false
		s.mu.Unlock()
		s.events.add(Event{Kind: EventPairFailed, Conn: c.id, JID: jid.String(), Phone: phone, Detail: err.Error()})
		return err
	}

	if err := ctx.Err(); err != nil {
		return types.EmptyJID, fail(err) // the caller went away before the phone scanned: nothing was sent
	}
	container, err := deviceIdentityContainer(acct.key, q, devID)
	if err != nil {
		return types.EmptyJID, fail(err)
	}
	id := s.newID()
	resp := c.expect(id)
	err = c.sendNode(waBinary.Node{
		Tag:   "iq",
		Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "result", "id": id},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
			{Tag: "biz", Attrs: waBinary.Attrs{"name": ""}},
		}}},
	})
	if err != nil {
		c.forget(id)
		return types.EmptyJID, fail(fmt.Errorf("fakewa: send pair-success: %w", err))
	}
	// The client has the new device's identity from here on: once it has signed, it stores the
	// device and logs in as it. So the phone waits for the sign as long as the connection lives
	// (the client answers a sign or a pair error; a client that stops showing codes closes the
	// connection), never on a clock of its own nor on its caller's: a loaded machine's sign can
	// take longer than any fixed wait, and a sign read after the phone gave up would leave a
	// device the client uses and WhatsApp does not know (its login refused with 401). A caller
	// that goes away (the control request's client gave up) is answered at once and the pairing
	// completes, or fails, as the client decides, as a real phone's does whoever stopped
	// watching. Before, a caller's cancellation abandoned it: a sign that came after left that
	// device, and one that came with the cancellation completed the pairing or not at random (in a
	// starved run, 374 pairings the simulated users had given up on were gateway mismatches).
	done := make(chan error, 1)
	go func() { done <- s.completePair(c, resp, acct, q, jid, lid, phone, fail) }()
	select {
	case err := <-done:
		if err != nil {
			return types.EmptyJID, err
		}
		return jid, nil
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("fakewa: pairing %s: the caller gave up (it completes if the client signs): %w", jid, ctx.Err())
	}
}

// completePair is the end of Pair after pair-success went out: it waits for the client's answer
// on resp (nil: the connection closed), registers the device it signed and sends the 515 that
// makes the client log in as it; fail records a pairing that failed.
func (s *Server) completePair(c *conn, resp <-chan *waBinary.Node, acct *account, q QRCode, jid, lid types.JID, phone string,
	fail func(error) error) error {
	n := <-resp
	if n == nil {
		return fail(fmt.Errorf("%w: connection closed", ErrPairRejected))
	}
	if err := verifyPairSign(n, acct.key, q.IdentityPub); err != nil {
		return fail(err)
	}

	d := &device{
		jid: jid, lid: lid, account: acct, noisePub: q.NoisePub, identityPub: q.IdentityPub, pairedAt: time.Now(),
	}
	reg := c.payload.GetDevicePairingData()
	d.storeRegistrationKeys(reg.GetERegid(), reg.GetESkeyID(), reg.GetESkeyVal(), reg.GetESkeySig())
	s.mu.Lock()
	s.devices[jid] = d
	for _, ref := range c.refs {
		delete(s.refs, ref)
	}
	c.refs = nil
	s.mu.Unlock()
	s.events.add(Event{Kind: EventPaired, Conn: c.id, JID: jid.String(), Phone: phone, Refs: []string{q.Ref}})
	// whatsmeow answers 515 by closing the socket itself and logging in again. The server waits
	// for that close: closing first (the usual 200 ms) can beat the client's handling of the 515
	// when its CPU is starved, and whatsmeow then drops the queued 515 and never reconnects.
	c.streamErrorAndCloseAfter(streamError("515", ""), "pairing restart (515)", s.cfg.PairRestartCloseTimeout)
	return nil
}

// deviceIdentityContainer is what the phone signs for a new companion: the device identity
// details signed with the account key, wrapped in an HMAC keyed with the QR's adv secret.
func deviceIdentityContainer(account *keys.KeyPair, q QRCode, devID uint8) ([]byte, error) {
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:       proto.Uint32(uint32(devID)),
		Timestamp:   proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:    proto.Uint32(1),
		AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
		DeviceType:  waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return nil, err
	}
	msg := append(append(append([]byte{}, advAccountSignaturePrefix...), details...), q.IdentityPub[:]...)
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*account.Priv), msg)
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details: details, AccountSignatureKey: account.Pub[:], AccountSignature: sig[:],
	})
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, q.AdvSecret)
	mac.Write(signed)
	return proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
}

// verifyPairSign checks the client's pair-device-sign: its device signature over the details,
// its identity key and the account key.
func verifyPairSign(n *waBinary.Node, account *keys.KeyPair, identityPub [32]byte) error {
	if attrString(n, "type") != "result" {
		code := ""
		if e, ok := n.GetOptionalChildByTag("error"); ok {
			code = attrString(&e, "code") + " " + attrString(&e, "text")
		}
		return fmt.Errorf("%w: %s", ErrPairRejected, strings.TrimSpace(code))
	}
	idNode, ok := n.GetOptionalChildByTag("pair-device-sign", "device-identity")
	raw, isBytes := idNode.Content.([]byte)
	if !ok || !isBytes {
		return fmt.Errorf("%w: no pair-device-sign/device-identity", ErrPairRejected)
	}
	var signed waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(raw, &signed); err != nil {
		return fmt.Errorf("%w: device identity: %w", ErrPairRejected, err)
	}
	if len(signed.DeviceSignature) != 64 {
		return fmt.Errorf("%w: device signature has %d bytes", ErrPairRejected, len(signed.DeviceSignature))
	}
	msg := append(append(append(append([]byte{}, advDeviceSignaturePrefix...), signed.Details...), identityPub[:]...), account.Pub[:]...)
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(identityPub), msg, [64]byte(signed.DeviceSignature)) {
		return fmt.Errorf("%w: device signature does not verify", ErrPairRejected)
	}
	return nil
}
