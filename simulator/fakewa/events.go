package fakewa

import (
	"context"
	"sync"
	"time"
)

// EventKind names what happened. The kinds form the ground truth the simulator compares against.
type EventKind string

// The kinds of events fakewa records.
const (
	// EventQRRefsIssued: an unpaired client got pair-device refs (Refs holds them).
	EventQRRefsIssued EventKind = "qr_refs_issued"
	// EventPaired: a phone scanned a QR, the client signed the device identity; JID is the new device.
	EventPaired EventKind = "paired"
	// EventPairFailed: Server.Pair failed after reaching the client (Detail says why).
	EventPairFailed EventKind = "pair_failed"
	// EventConnected: a paired device logged in and got <success>.
	EventConnected EventKind = "connected"
	// EventConnectFailed: a login was answered with <failure reason=Code>.
	EventConnectFailed EventKind = "connect_failed"
	// EventDisconnected: a logged-in connection closed, for any reason (Detail: the cause). It is
	// recorded when the connection's handler ends, so it can follow the device's next
	// EventConnected: a login while the previous connection was still open (replaced, closed a
	// moment later) or while its handler was still finishing (a drop). Conn tells which
	// connection ended; the device is offline only when it is the one it logged in on last.
	EventDisconnected EventKind = "disconnected"
	// EventDropped: the server cut a device's connection without a stream error (network drop).
	EventDropped EventKind = "dropped"
	// EventReplaced: the server sent <conflict type="replaced"/> (Detail: control or new login).
	EventReplaced EventKind = "replaced"
	// EventLoggedOut: the device was removed (Detail: device_removed while connected, while offline,
	// or client logout).
	EventLoggedOut EventKind = "logged_out"
	// EventUnreachable: a login of a device under an outage (Server.Unreachable) was cut
	// unanswered, or a connection whose handshake ended while the whole server was down (JID
	// empty).
	EventUnreachable EventKind = "unreachable"
	// EventHandshakeCut: a connection was closed after the client's hello, before the server's
	// (Server.CutHandshakes).
	EventHandshakeCut EventKind = "handshake_cut"
	// EventSilenced: a silence began (Server.Silence; Detail: how many connections, for how
	// long): connections neither read nor answered, kept open.
	EventSilenced EventKind = "silenced"
	// EventRestarted: the server sent stream:error 503 to this connection (server restart).
	EventRestarted EventKind = "restarted"
	// EventKeepaliveIgnored: a keepalive ping was left unanswered on purpose.
	EventKeepaliveIgnored EventKind = "keepalive_ignored"
	// EventMessageAcked: the server acked a message the device sent (MessageID, To).
	EventMessageAcked EventKind = "message_acked"
	// EventReceiptSent: the server sent a delivery or read receipt (Detail) for MessageID, a
	// message the device sent; Attempt is 1 for the first delivery, more when the receipt was
	// delivered again at a login because the device had not acked it.
	EventReceiptSent EventKind = "receipt_sent"
	// EventReceiptHeld: a receipt (Detail) for MessageID was held because the device was offline
	// or its connection failed; it is delivered (EventReceiptSent) at the device's next login.
	EventReceiptHeld EventKind = "receipt_held"
	// EventReceiptAcked: the device acked a receipt (Detail) for MessageID (its <ack
	// class="receipt">); it is no longer held. Attempt: the deliveries it took.
	EventReceiptAcked EventKind = "receipt_acked"
	// EventReceiptDropped: a receipt the device had not acked was dropped, the oldest of more than
	// MaxHeldMessages held for it.
	EventReceiptDropped EventKind = "receipt_dropped"
	// EventPhoneMessageDelivered: the server delivered a message a contact's phone (From) wrote to
	// the device (JID): MessageID, Detail (text, reply or reaction), Enc (pkmsg or msg), Attempt
	// (1 for the first delivery; more when redelivered at a login because no receipt came).
	EventPhoneMessageDelivered EventKind = "phone_message_delivered"
	// EventPhoneMessageHeld: a phone's message was held because the device was offline; it is
	// delivered (EventPhoneMessageDelivered) when the device logs in.
	EventPhoneMessageHeld EventKind = "phone_message_held"
	// EventDeviceReceipt: the device sent a receipt (Detail: delivery, inactive, read, retry, ...)
	// for MessageID; From is set when it acknowledged a phone's message.
	EventDeviceReceipt EventKind = "device_receipt"
	// EventMediaDownloaded: a client fetched a media blob (Detail: its path; Code: 200 or 404).
	EventMediaDownloaded EventKind = "media_downloaded"
)

// Event is one thing fakewa caused or saw, with its time.
type Event struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      EventKind `json:"kind"`
	Conn      uint64    `json:"conn,omitempty"`
	JID       string    `json:"jid,omitempty"`
	Phone     string    `json:"phone,omitempty"`
	Refs      []string  `json:"refs,omitempty"`
	Code      int       `json:"code,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	To        string    `json:"to,omitempty"`
	From      string    `json:"from,omitempty"`
	Enc       string    `json:"enc,omitempty"`
	Attempt   int       `json:"attempt,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// eventLog is an append-only, bounded log: past its limit the oldest events are discarded (and
// counted), so memory stays bounded under any load.
type eventLog struct {
	mu      sync.Mutex
	limit   int
	events  []Event
	nextSeq uint64
	dropped uint64
	changed chan struct{}
}

func newEventLog(limit int) *eventLog {
	return &eventLog{limit: limit, nextSeq: 1, changed: make(chan struct{})}
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	e.Seq = l.nextSeq
	l.nextSeq++
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(l.events) >= l.limit {
		drop := max(1, l.limit/10)
		l.events = append(l.events[:0], l.events[drop:]...)
		l.dropped += uint64(drop)
	}
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// since returns a copy of the events with Seq > seq, the discarded count and a channel closed at
// the next append.
func (l *eventLog) since(seq uint64) ([]Event, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, n := 0, len(l.events)
	switch {
	case n == 0 || seq < l.events[0].Seq:
	case seq >= l.events[n-1].Seq:
		i = n
	default:
		i = int(seq - l.events[0].Seq + 1)
	}
	return append([]Event(nil), l.events[i:]...), l.dropped, l.changed
}

// discarded returns how many events the bound has discarded.
func (l *eventLog) discarded() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// wait blocks until an event after seq satisfies match, and returns it.
func (l *eventLog) wait(ctx context.Context, seq uint64, match func(Event) bool) (Event, error) {
	for {
		events, _, changed := l.since(seq)
		for _, e := range events {
			if match(e) {
				return e, nil
			}
			seq = e.Seq
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
