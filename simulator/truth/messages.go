package truth

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
)

// Messages is the ground truth of customers' traffic: every message a fakewa phone wrote to a
// session (in the order written, per chat) and every receipt fakewa sent for a message the
// gateway sent, compared at the end with what Laravel stored.
//
//   - A lost message is one the gateway acknowledged to WhatsApp (its device's delivery receipt:
//     from then on the gateway promised to keep it) that Laravel does not hold once the run
//     drained. A message the device never acknowledged (held for a device that was then logged
//     out, or refused and never delivered again) is not the gateway's to lose.
//   - A duplicated message is one Laravel received more than once (its deliveries > 1): the
//     contract's upsert keeps one row, but the gateway sent it again.
//   - A message out of order is one Laravel numbered (sequence) before a message the same
//     customer wrote earlier in the same chat.
//
// message_delivery_delay is from fakewa accepting a message to Laravel storing it;
// receipt_delivery_delay from fakewa sending a receipt to Laravel applying it.
type Messages struct {
	mu       sync.Mutex
	written  map[string][]Written // by session
	order    []string             // sessions in first-write order
	receipts map[string]time.Time // message id + "/" + status -> when fakewa sent it
	acked    map[string]bool      // messages the gateway's device acknowledged to fakewa
	// result is Finish's verdict, once it ran.
	result *MessagesTruth
}

// Written is one message a phone wrote.
type Written struct {
	SessionID, Chat, MessageID string
	At                         time.Time
	Tags                       metrics.Tags
}

// Stored is one message as Laravel stored it (fakelaravel's /_fake/messages).
type Stored struct {
	SessionID, MessageID, Chat string
	Sequence                   int64
	Deliveries                 int
	StoredAt                   time.Time
}

// StoredReceipt is a sent message's receipt as Laravel holds it: its furthest status, when it
// was first stored and last moved forward.
type StoredReceipt struct {
	MessageID           string
	Status              laravel.ReceiptStatus
	StoredAt, UpdatedAt time.Time
}

// NewMessages returns an empty message ledger.
func NewMessages() *Messages {
	return &Messages{written: map[string][]Written{}, receipts: map[string]time.Time{}, acked: map[string]bool{}}
}

// Wrote records a message fakewa accepted from a phone, in the order the phone wrote it.
func (m *Messages) Wrote(w Written) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.written[w.SessionID]; !ok {
		m.order = append(m.order, w.SessionID)
	}
	m.written[w.SessionID] = append(m.written[w.SessionID], w)
}

// Acked records that the gateway's device acknowledged a phone's message to fakewa.
func (m *Messages) Acked(messageID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acked[messageID] = true
}

// ReceiptSent records that fakewa sent a receipt (delivered or read) of a message the gateway sent.
func (m *Messages) ReceiptSent(messageID string, status laravel.ReceiptStatus, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := messageID + "/" + string(status)
	if _, ok := m.receipts[k]; !ok {
		m.receipts[k] = at
	}
}

// HeldBy reports whether stored holds every message the gateway acknowledged to WhatsApp: those
// it may not lose. The end of a run waits for that, not for every message written: one never
// acknowledged (held for a device that then logged out) may never reach Laravel.
func (m *Messages) HeldBy(stored []Stored) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	have := make(map[string]bool, len(stored))
	for _, s := range stored {
		have[s.SessionID+"/"+s.MessageID] = true
	}
	for sid, ws := range m.written {
		for _, w := range ws {
			if m.acked[w.MessageID] && !have[sid+"/"+w.MessageID] {
				return false
			}
		}
	}
	return true
}

// WrittenCount is how many messages the phones wrote.
func (m *Messages) WrittenCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ws := range m.written {
		n += len(ws)
	}
	return n
}

// MessageVerdict is the comparison of one session's written messages with Laravel's rows.
type MessageVerdict struct {
	Written, Lost, Duplicated, OutOfOrder int
	// Unacknowledged are messages Laravel does not hold that the gateway never acknowledged.
	Unacknowledged int
	// Delays are, per message Laravel stored, the time from written to stored.
	Delays []time.Duration
	// Problems names a few of the messages lost, duplicated or out of order.
	Problems []string
}

// JudgeMessages compares the messages written to one session (in the order written) with the
// rows Laravel stored for it, given which ones the gateway acknowledged to WhatsApp: a pure
// function.
func JudgeMessages(written []Written, stored []Stored, acked func(messageID string) bool) MessageVerdict {
	v := MessageVerdict{Written: len(written)}
	byID := make(map[string]Stored, len(stored))
	for _, s := range stored {
		byID[s.MessageID] = s
	}
	note := func(format string, args ...any) {
		if len(v.Problems) < 5 {
			v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
		}
	}
	// Per chat, the sequence of the latest message written before: a message numbered below it
	// reached Laravel out of order.
	lastSeq := map[string]int64{}
	for _, w := range written {
		s, ok := byID[w.MessageID]
		if !ok && !acked(w.MessageID) {
			v.Unacknowledged++
			continue
		}
		if !ok {
			v.Lost++
			note("%s lost (written %s)", w.MessageID, w.At.Format(time.RFC3339Nano))
			continue
		}
		if s.Deliveries > 1 {
			v.Duplicated++
			note("%s delivered %d times", w.MessageID, s.Deliveries)
		}
		if prev, seen := lastSeq[w.Chat]; seen && s.Sequence <= prev {
			v.OutOfOrder++
			note("%s numbered %d after a message numbered %d the customer wrote before it", w.MessageID, s.Sequence, prev)
		} else {
			lastSeq[w.Chat] = s.Sequence
		}
		v.Delays = append(v.Delays, max(s.StoredAt.Sub(w.At), 0))
	}
	return v
}

// MessagesTruth is the run's message verdict.
type MessagesTruth struct {
	Written    int64 `json:"written"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// Unacknowledged are messages neither stored nor acknowledged by the gateway (not judged).
	Unacknowledged int64 `json:"unacknowledged,omitempty"`
	// Sessions are the sessions with a message lost, duplicated or out of order.
	Sessions []string `json:"sessions,omitempty"`
	// Problems names a few of those messages.
	Problems []string `json:"problems,omitempty"`
}

// Result is Finish's verdict; false before Finish ran.
func (m *Messages) Result() (MessagesTruth, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.result == nil {
		return MessagesTruth{}, false
	}
	return *m.result, true
}

// Finish judges every session's messages against Laravel's rows (all sessions') and the
// receipts against Laravel's receipt rows, and records message_delivery_delay,
// receipt_delivery_delay (tag status), messages_written, messages_lost, messages_duplicated and
// messages_out_of_order.
func (m *Messages) Finish(reg *metrics.Registry, stored []Stored, receipts []StoredReceipt) MessagesTruth {
	m.mu.Lock()
	defer m.mu.Unlock()
	bySession := map[string][]Stored{}
	for _, s := range stored {
		bySession[s.SessionID] = append(bySession[s.SessionID], s)
	}
	var t MessagesTruth
	for _, id := range m.order {
		ws := m.written[id]
		v := JudgeMessages(ws, bySession[id], func(id string) bool { return m.acked[id] })
		t.Written += int64(v.Written)
		t.Lost += int64(v.Lost)
		t.Duplicated += int64(v.Duplicated)
		t.OutOfOrder += int64(v.OutOfOrder)
		t.Unacknowledged += int64(v.Unacknowledged)
		if v.Lost+v.Duplicated+v.OutOfOrder > 0 {
			t.Sessions = append(t.Sessions, id)
		}
		for _, p := range v.Problems {
			if len(t.Problems) < 10 {
				t.Problems = append(t.Problems, id+": "+p)
			}
		}
		tags := ws[0].Tags
		for _, d := range v.Delays {
			reg.ObserveDuration("message_delivery_delay", d, tags)
		}
	}
	for _, r := range receipts {
		if at, ok := m.receipts[r.MessageID+"/"+string(laravel.ReceiptDelivered)]; ok {
			reg.ObserveDuration("receipt_delivery_delay", max(r.StoredAt.Sub(at), 0), metrics.Tags{"status": string(laravel.ReceiptDelivered)})
		}
		if r.Status == laravel.ReceiptDelivered {
			continue
		}
		if at, ok := m.receipts[r.MessageID+"/"+string(r.Status)]; ok {
			reg.ObserveDuration("receipt_delivery_delay", max(r.UpdatedAt.Sub(at), 0), metrics.Tags{"status": string(r.Status)})
		}
	}
	reg.Add("messages_written", float64(t.Written), nil)
	reg.Add("messages_lost", float64(t.Lost), nil)
	reg.Add("messages_duplicated", float64(t.Duplicated), nil)
	reg.Add("messages_out_of_order", float64(t.OutOfOrder), nil)
	reg.Add("messages_unacknowledged", float64(t.Unacknowledged), nil)
	slices.Sort(t.Problems)
	m.result = &t
	return t
}
