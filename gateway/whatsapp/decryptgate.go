package whatsapp

import (
	"context"
	"fmt"
	"sync"

	"go.mau.fi/whatsmeow/store"
)

// One decryption at a time per device.
//
// whatsmeow decrypts a message through its event buffer (Client.bufferedDecrypt): it looks the
// ciphertext up (GetBufferedEvent) and, when it is not there, decrypts it and stores the
// plaintext in one transaction (DoDecryptionTxn). The look-up is outside the transaction, so two
// goroutines handling the same ciphertext at once both miss it; one decrypts, and the other's
// decryption fails with "old counter" (the Signal ratchet moved on), which whatsmeow takes for a
// duplicate: it sends the delivery receipt without handing the message over. That happens when
// WhatsApp delivers a message again on a new connection while the old connection's copy still
// waits behind a handler that blocks (an append the outbox holds back): whatsmeow runs one
// handler loop per connection on a shared queue, and its auto-reconnect starts the new loop
// before the old one ends; a redelivery's new client of the same device is another such pair.
// If the first copy's handler then fails (the gateway refuses a message from a connection it
// replaced), the message is acknowledged to WhatsApp and never delivered: chaos seed 1 schedule
// 199 lost a customer's message so. The gate makes look-up and decryption one step per device
// (across every client of it in this process): the second copy waits, finds the plaintext the
// first stored and is handed to the gateway like any redelivery.
//
// Every client of a device decrypts behind the gate, the one that paired it included: whatsmeow's
// sqlstore gives a device its event buffer when it is first saved (PutDevice at pairing, which
// replaces whatever the client's store held), and that client goes on to log in and receive the
// device's first messages (chaos seed 1 schedule 31: the pairing client, ungated, decrypted a
// message its dropped connection still held while the session's next client, gated, decrypted
// WhatsApp's redelivery of it; the next client's copy failed with "old counter", was
// acknowledged, and the first copy's handler failed: lost). Driver.gateDevice gates a client
// when it is built for a stored device (Open) and when it logs in after pairing (the 515).
//
// The gate orders the clients of one process; in cluster mode the replicas share whatsmeow's
// store, and Postgres orders their decryption transactions by row locks. A replica paused
// (SIGSTOP, a VM stall) inside a decryption holds its transaction, with the device's Signal
// session row locked, across the pause. The session's new holder decrypts WhatsApp's redelivery
// of that message behind the lock, and when the paused replica resumed and committed, the new
// holder's decryption failed (its plaintext's row was a duplicate in the event buffer): whatsmeow
// sent a retry receipt, the sender encrypted the message again and it arrived after the newer
// ones (the cluster's SIGSTOP process test, at e05c978: a chat's 10th message stored last). The
// paused replica, fenced, handed its plaintext to nobody. So a decryption commits only while the
// replica still holds the session (Config.Holds): otherwise it is rolled back (errNotHolder) and
// the new holder's proceeds.

// decryptGates holds one gate per device JID.
type decryptGates struct {
	mu    sync.Mutex
	gates map[string]chan struct{}
}

// gateDevice puts the event buffer of the client's device behind the device's gate, once: a
// device not paired yet (no JID, no buffer) is left alone, a gated one too. whatsmeow reads the
// buffer without a lock, so callers swap it only while none of the client's sockets is up.
func (c *conn) gateDevice() {
	dev := c.cli.Store
	if dev.ID == nil || dev.EventBuffer == nil {
		return
	}
	if _, gated := dev.EventBuffer.(*gatedEventBuffer); gated {
		return
	}
	dev.EventBuffer = c.d.gates.wrap(dev.ID.String(), dev.EventBuffer, c.decryptOff.Load, c.holds)
}

// holds reports whether this replica still holds the connection's session (always outside
// cluster mode).
func (c *conn) holds() bool { return c.d.holds == nil || c.d.holds(c.sessionID) }

// errDecryptOff ends the decryption of a message on a connection the session closed. It wraps
// context.Canceled: whatsmeow then gives the message up without a receipt or a retry receipt
// (message.go decryptMessages), the ratchet untouched, and WhatsApp delivers it again.
var errDecryptOff = fmt.Errorf("whatsapp: the session closed this connection, WhatsApp delivers the message again: %w", context.Canceled)

// errNotHolder rolls back the decryption of a message by a replica that no longer holds its
// session (its cluster lease lapsed, as after a pause): the session's new holder decrypts
// WhatsApp's redelivery. It wraps context.Canceled, as errDecryptOff.
var errNotHolder = fmt.Errorf("whatsapp: this replica no longer holds the session, its decryption is rolled back for the new holder's: %w", context.Canceled)

// wrap returns the event buffer of a paired device (deviceID, its JID) behind the device's gate,
// for a client that decrypts nothing once off reports true and commits a decryption only while
// holds reports true (nil: always).
func (g *decryptGates) wrap(deviceID string, buf store.EventBuffer, off, holds func() bool) store.EventBuffer {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates == nil {
		g.gates = map[string]chan struct{}{}
	}
	gate, ok := g.gates[deviceID]
	if !ok {
		gate = make(chan struct{}, 1)
		g.gates[deviceID] = gate
	}
	return &gatedEventBuffer{EventBuffer: buf, gate: gate, off: off, holds: holds}
}

// gatedEventBuffer is a device's event buffer whose look-up that misses holds the device's gate
// until the decryption that follows it (DoDecryptionTxn) ends. whatsmeow calls DoDecryptionTxn
// only right after a GetBufferedEvent that found nothing.
type gatedEventBuffer struct {
	store.EventBuffer
	gate chan struct{} // one slot: taken by a look-up that missed, until its decryption ends
	off  func() bool   // the client's connection was closed by the session (nil: never)
	// holds: this replica still holds the client's session (nil: always); asked before a
	// decryption commits.
	holds func() bool
}

// GetBufferedEvent looks the ciphertext up once no other decryption of the device is under way;
// when it is not buffered, the gate stays taken for the decryption whatsmeow runs next. A client
// whose connection the session closed looks nothing up (errDecryptOff), also after waiting.
func (b *gatedEventBuffer) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*store.BufferedEvent, error) {
	if b.off != nil && b.off() {
		return nil, errDecryptOff
	}
	select {
	case b.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.off != nil && b.off() {
		<-b.gate
		return nil, errDecryptOff
	}
	ev, err := b.EventBuffer.GetBufferedEvent(ctx, ciphertextHash)
	if err != nil || ev != nil {
		<-b.gate // nothing to decrypt follows
	}
	return ev, err
}

// DoDecryptionTxn runs the decryption, commits it only while this replica holds the session
// (else errNotHolder rolls it back, whether or not it failed), and frees the gate its look-up
// took.
func (b *gatedEventBuffer) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	defer func() {
		select {
		case <-b.gate:
		default: // not after a look-up (not whatsmeow's way): nothing to free
		}
	}()
	return b.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		err := fn(ctx)
		if b.holds != nil && !b.holds() {
			// Also when the decryption failed (the new holder stored the plaintext first): a
			// retry receipt would have the sender send the message again.
			if err != nil {
				return fmt.Errorf("%w (the decryption failed: %w)", errNotHolder, err)
			}
			return errNotHolder
		}
		return err
	})
}
