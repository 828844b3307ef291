package session

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
)

// recentIDsKept bounds how many message and receipt keys a session remembers to drop the
// duplicates WhatsApp re-delivers (they come back within a reconnect, not days later); Laravel's
// upsert by (session_id, message_id) covers anything older.
const recentIDsKept = 256

// messaging is one session's numbering of message and receipt events (its own sequence, apart
// from QR and status versions, so messages never move a session's state version) and its
// memory of the keys it already turned into events. It costs nothing until the first message.
type messaging struct {
	epoch int64
	seq   int64
	seen  recentKeys
	// appendMu serializes the synchronous appends of this session's messages and receipts
	// (deliverMessaging), so the delivery receives them in sequence order. Taken before s.mu.
	appendMu sync.Mutex
	// refusals counts the delivery's refusals in a row (guarded by appendMu): the back-off of
	// the reconnect that brings refused messages back (redeliverLater).
	refusals int
}

// maxRedeliveryBackoff bounds the wait before a session whose message the delivery refused
// reconnects to have WhatsApp deliver it again.
const maxRedeliveryBackoff = 30 * time.Second

// recentKeys is a bounded set remembering the last recentIDsKept keys added. It keeps a 128-bit
// hash of each key in a ring and looks keys up by scanning it (256 comparisons, well under a
// microsecond, once per message or receipt): a full set of message and receipt keys held as
// strings in a ring and a map took 30.8 KB per session, the ring of hashes takes 4 KB, and less
// until it is full (BenchmarkRecentKeys). Two different keys share a hash with probability 2^-128 per pair
// (seeds drawn per process: the set lives in memory only): never, in practice.
type recentKeys struct {
	ring []keyHash
	next int
}

// keyHash is a recentKeys entry: two 64-bit hashes of the key under independent seeds. The zero
// value marks a forgotten entry.
type keyHash [2]uint64

var recentKeySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func hashKey(key string) keyHash {
	return keyHash{maphash.String(recentKeySeeds[0], key), maphash.String(recentKeySeeds[1], key)}
}

// add remembers key and reports whether it is new.
func (r *recentKeys) add(key string) bool {
	h := hashKey(key)
	if slices.Contains(r.ring, h) {
		return false
	}
	if len(r.ring) < recentIDsKept {
		// Grown as keys come (16-byte entries: append doubles it in whole size classes, 256
		// entries exactly at the end), not made whole at the first: a session with a few
		// messages holds a few hundred bytes, not 4 KB (issue 18, memory per session).
		r.ring = append(r.ring, h)
	} else {
		r.ring[r.next] = h
		r.next = (r.next + 1) % recentIDsKept
	}
	return true
}

// forget drops key, so that adding it again reports it new (its event was refused).
func (r *recentKeys) forget(key string) {
	if i := slices.Index(r.ring, hashKey(key)); i >= 0 {
		r.ring[i] = keyHash{}
	}
}

// nextSequence returns s's next message/receipt sequence: epoch*VersionsPerEpoch + a counter, so
// it grows across restarts (each run reserves a newer epoch). Callers hold s.mu.
func (m *Manager) nextSequence(s *session) int64 {
	if s.msgs.epoch == 0 {
		m.epochMu.Lock()
		s.msgs.epoch = m.epoch
		m.epochMu.Unlock()
	}
	if m.owner != nil {
		// Cluster mode: continue above the shard's epoch, so a session's sequences keep growing
		// when it moves to a replica that started earlier.
		if _, e, held := m.owner.Epoch(s.id); held && e > s.msgs.epoch {
			s.msgs.epoch, s.msgs.seq = e, 0
		}
	}
	if s.msgs.seq >= VersionsPerEpoch-1 {
		s.msgs.epoch = m.renewEpoch(s.msgs.epoch)
		s.msgs.seq = 0
	}
	s.msgs.seq++
	return s.msgs.epoch*VersionsPerEpoch + s.msgs.seq
}

// handleEvent is the handler start gives the driver for one connection. With a delivery that
// makes events durable (batch), messages and receipts are appended to it before handleEvent
// returns (deliverMessaging), so the driver acknowledges them to WhatsApp only once they survive
// a crash; everything else goes through onEvent and the per-session queue.
func (m *Manager) handleEvent(s *session, gen uint64, ev DriverEvent) error {
	switch e := ev.(type) {
	case MessageReceived, ReceiptReceived:
		if delivery.Durable(m.sink) {
			return m.deliverMessaging(s, gen, ev)
		}
	case PairRequested:
		return m.admitPairing(s, gen, e) // pairing.go
	}
	m.onEvent(s, gen, ev)
	return nil
}

// errStaleConn refuses a message from a connection that was replaced or closed: unacknowledged,
// WhatsApp delivers it again on the session's current connection.
var errStaleConn = errors.New("session: event from a connection that was replaced or closed")

// Journal keeps customers' messages and receipts outside the delivery until Laravel settled them
// (batch mode: storage.Journal, in the SQL store), so that a Redis that loses its data, and the
// outbox with it, does not lose what the gateway already acknowledged to WhatsApp.
type Journal interface {
	// Record stores ev, as it is then handed to the delivery; nil only once it is stored.
	Record(ctx context.Context, ev event.Event) error
}

// journal records ev in the configured journal (nil without one).
func (m *Manager) journal(ev event.Event) error {
	if m.cfg.Journal == nil {
		return nil
	}
	if err := m.cfg.Journal.Record(m.ctx, ev); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// deliverMessaging numbers and dedupes a message or receipt under s.mu, then records each of its
// events in the journal (Config.Journal, when set) and appends it to the delivery synchronously,
// one session at a time (s.msgs.appendMu), so the delivery receives them in sequence order and
// the journal holds every event before the delivery does. When the journal or the delivery
// refuses one, that event's and the later ones' keys are forgotten (a redelivery by WhatsApp is
// taken, not dropped as a duplicate) and the error is returned: the driver then sends no receipt.
// Events appended before the refusal stay (a redelivery finds them seen and skips them).
func (m *Manager) deliverMessaging(s *session, gen uint64, ev DriverEvent) error {
	s.msgs.appendMu.Lock()
	defer s.msgs.appendMu.Unlock()
	if !m.drainers.add() {
		return ErrClosed
	}
	defer m.drainers.done()

	s.mu.Lock()
	if s.gen != gen || s.conn == nil {
		s.mu.Unlock()
		return errStaleConn
	}
	var evs []keyedEvent
	switch e := ev.(type) {
	case MessageReceived:
		evs = m.messageEvents(s, e)
	case ReceiptReceived:
		evs = m.receiptEvents(s, e)
	}
	s.mu.Unlock()

	for i, k := range evs {
		if h := m.cfg.Hooks.EventEmitted; h != nil {
			h(k.ev)
		}
		err := m.journal(k.ev)
		if err == nil {
			err = m.sink.Deliver(m.ctx, k.ev)
		}
		if err == nil {
			continue
		}
		s.mu.Lock()
		for _, later := range evs[i:] {
			s.msgs.seen.forget(later.key)
		}
		delay := m.redeliverLater(s, gen)
		s.mu.Unlock()
		m.log.Warn("message or receipt not accepted by the journal or the delivery; not acknowledged to WhatsApp, which delivers it again when the session reconnects",
			"session_id", s.id, "kind", k.ev.Kind, "message_id", k.ev.Payload, "sequence", k.ev.Version, "reconnect_in", delay, "err", err)
		if h := m.cfg.Hooks.DeliveryFailed; h != nil {
			h(k.ev, err)
		}
		return fmt.Errorf("session %s: %s %s: %w", s.id, k.ev.Kind, k.ev.Payload, err)
	}
	s.msgs.refusals = 0
	return nil
}

// redeliveryCloseGrace is how long a connection dropped for a redelivery stays open before it
// is closed: a gateway resumed from a long pause (SIGSTOP, a GC stall) decides on its timers
// before it reads its sockets, and closing at once would discard a replaced stream WhatsApp sent
// meanwhile (chaos seed 4 schedule 9).
const redeliveryCloseGrace = 200 * time.Millisecond

// redeliverLater has WhatsApp deliver again what the delivery refused: WhatsApp delivers a
// device's unacknowledged messages at its next login, in order. The connection is detached at
// once, so the session's later messages on it are refused too (as from a closed connection) and
// none overtakes the refused one, and closed redeliveryCloseGrace later; the session reconnects
// after ResyncRetry, doubling while refusals go on, up to maxRedeliveryBackoff. A stop or a
// logout meanwhile cancels the reconnect. It returns the wait (0 when the connection was already replaced). Callers hold
// s.msgs.appendMu and s.mu.
func (m *Manager) redeliverLater(s *session, gen uint64) time.Duration {
	if s.gen != gen || s.conn == nil {
		return 0
	}
	if c := m.detachConn(s); c != nil {
		go func() {
			// Left open a moment: frames WhatsApp sent before the refusal are still read, so a
			// stream error among them (another client took the device over) reaches the driver
			// instead of being discarded by the close (see lastWordAfterRedeliveryDrop). The
			// session ignores everything else on it: gen changed.
			time.Sleep(redeliveryCloseGrace)
			c.Disconnect()
			c.Release()
		}()
	}
	dropped := s.gen
	s.redeliveryGen = dropped
	s.msgs.refusals++
	delay := min(m.cfg.ResyncRetry<<min(s.msgs.refusals-1, 6), maxRedeliveryBackoff)
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		idle := s.gen == dropped && s.conn == nil && !s.starting && s.deviceID != ""
		s.mu.Unlock()
		if !idle || m.closed.Load() {
			return
		}
		if _, err := m.start(m.ctx, s, false); err != nil && !errors.Is(err, ErrClosed) {
			m.log.Warn("reconnecting for WhatsApp to deliver refused messages again failed", "session_id", s.id, "err", err)
		}
	})
	return delay
}

// keyedEvent is a message or receipt event with the key that marks it seen.
type keyedEvent struct {
	key string
	ev  event.Event
}

// onMessage queues a received message for delivery (deliveries that are not durable). Callers
// hold s.mu.
func (m *Manager) onMessage(s *session, e MessageReceived) {
	for _, k := range m.messageEvents(s, e) {
		m.enqueue(s, k.ev)
	}
}

// onReceipt queues a receipt's events for delivery (deliveries that are not durable). Callers
// hold s.mu.
func (m *Manager) onReceipt(s *session, e ReceiptReceived) {
	for _, k := range m.receiptEvents(s, e) {
		m.enqueue(s, k.ev)
	}
}

// messageEvents turns a received message into a KindMessage event, once per message id. Callers
// hold s.mu.
func (m *Manager) messageEvents(s *session, e MessageReceived) []keyedEvent {
	item := e.Message
	key := "m\x00" + item.MessageID
	if !s.msgs.seen.add(key) {
		m.log.Debug("duplicate message dropped", "session_id", s.id, "message_id", item.MessageID)
		return nil
	}
	item.SessionID = s.id
	ev, ok := m.messagingEvent(s, event.KindMessage, item.MessageID, func(seq int64, ev *event.Event) {
		item.Sequence = seq
		ev.Message = &item
	})
	if !ok {
		return nil
	}
	return []keyedEvent{{key: key, ev: ev}}
}

// receiptEvents turns a receipt into one KindReceipt event per message id, once per (message id,
// status, sender). Callers hold s.mu.
func (m *Manager) receiptEvents(s *session, e ReceiptReceived) []keyedEvent {
	var out []keyedEvent
	for _, id := range e.MessageIDs {
		key := "r\x00" + string(e.Receipt.Status) + "\x00" + e.Receipt.Sender + "\x00" + id
		if id == "" || !s.msgs.seen.add(key) {
			continue
		}
		item := e.Receipt
		item.SessionID, item.MessageID = s.id, id
		ev, ok := m.messagingEvent(s, event.KindReceipt, id, func(seq int64, ev *event.Event) {
			item.Sequence = seq
			ev.Receipt = &item
		})
		if !ok {
			return nil
		}
		out = append(out, keyedEvent{key: key, ev: ev})
	}
	return out
}

// messagingEvent builds a numbered message or receipt event, or drops it (false; counted, logged
// once) when the delivery does not deliver that kind. Callers hold s.mu.
func (m *Manager) messagingEvent(s *session, kind event.Kind, messageID string, fill func(seq int64, ev *event.Event)) (event.Event, bool) {
	ev := event.Event{SessionID: s.id, Kind: kind, Payload: messageID, Time: time.Now(), Priority: event.PriorityNormal}
	if !delivery.Accepts(m.sink, kind) {
		m.messagingOff.Do(func() {
			m.log.Warn("this delivery mode does not deliver incoming messages and receipts yet; they are dropped (counted as not_delivered_in_mode)")
		})
		if h := m.cfg.Hooks.EventDropped; h != nil {
			h(ev, "not_delivered_in_mode")
		}
		return ev, false
	}
	seq := m.nextSequence(s)
	ev.ID = s.id + "-" + string(kind) + "-" + strconv.FormatInt(seq, 10)
	ev.Version = seq
	fill(seq, &ev)
	return ev, true
}
