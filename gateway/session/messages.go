package session

import (
	"strconv"
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
}

// recentKeys is a bounded set remembering the last recentIDsKept keys added.
type recentKeys struct {
	ring []string
	set  map[string]struct{}
	next int
}

// add remembers key and reports whether it is new.
func (r *recentKeys) add(key string) bool {
	if _, dup := r.set[key]; dup {
		return false
	}
	if r.set == nil {
		r.set = make(map[string]struct{}, 16)
	}
	if len(r.ring) < recentIDsKept {
		r.ring = append(r.ring, key)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = key
		r.next = (r.next + 1) % recentIDsKept
	}
	r.set[key] = struct{}{}
	return true
}

// nextSequence returns s's next message/receipt sequence: epoch*VersionsPerEpoch + a counter, so
// it grows across restarts (each run reserves a newer epoch). Callers hold s.mu.
func (m *Manager) nextSequence(s *session) int64 {
	if s.msgs.epoch == 0 {
		m.epochMu.Lock()
		s.msgs.epoch = m.epoch
		m.epochMu.Unlock()
	}
	if s.msgs.seq >= VersionsPerEpoch-1 {
		s.msgs.epoch = m.renewEpoch(s.msgs.epoch)
		s.msgs.seq = 0
	}
	s.msgs.seq++
	return s.msgs.epoch*VersionsPerEpoch + s.msgs.seq
}

// onMessage turns a received message into a KindMessage event, once per message id. Callers hold
// s.mu.
func (m *Manager) onMessage(s *session, e MessageReceived) {
	item := e.Message
	if !s.msgs.seen.add("m\x00" + item.MessageID) {
		m.log.Debug("duplicate message dropped", "session_id", s.id, "message_id", item.MessageID)
		return
	}
	item.SessionID = s.id
	m.emitMessaging(s, event.KindMessage, item.MessageID, func(seq int64, ev *event.Event) {
		item.Sequence = seq
		ev.Message = &item
	})
}

// onReceipt turns a receipt into one KindReceipt event per message id, once per (message id,
// status, sender). Callers hold s.mu.
func (m *Manager) onReceipt(s *session, e ReceiptReceived) {
	for _, id := range e.MessageIDs {
		if id == "" || !s.msgs.seen.add("r\x00"+string(e.Receipt.Status)+"\x00"+e.Receipt.Sender+"\x00"+id) {
			continue
		}
		item := e.Receipt
		item.SessionID, item.MessageID = s.id, id
		m.emitMessaging(s, event.KindReceipt, id, func(seq int64, ev *event.Event) {
			item.Sequence = seq
			ev.Receipt = &item
		})
	}
}

// emitMessaging queues a message or receipt event, or drops it (counted, logged once) when the
// delivery does not deliver that kind. Callers hold s.mu.
func (m *Manager) emitMessaging(s *session, kind event.Kind, messageID string, fill func(seq int64, ev *event.Event)) {
	ev := event.Event{SessionID: s.id, Kind: kind, Payload: messageID, Time: time.Now(), Priority: event.PriorityNormal}
	if !delivery.Accepts(m.sink, kind) {
		m.messagingOff.Do(func() {
			m.log.Warn("this delivery mode does not deliver incoming messages and receipts yet; they are dropped (counted as not_delivered_in_mode)")
		})
		if h := m.cfg.Hooks.EventDropped; h != nil {
			h(ev, "not_delivered_in_mode")
		}
		return
	}
	seq := m.nextSequence(s)
	ev.ID = s.id + "-" + string(kind) + "-" + strconv.FormatInt(seq, 10)
	ev.Version = seq
	fill(seq, &ev)
	m.enqueue(s, ev)
}
