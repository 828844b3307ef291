package batch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

// conversation is what the customers of some sessions wrote (messages) and how far the messages
// the sessions sent got (receipts), each session's events in sequence order.
type conversation struct {
	bySession map[string][]event.Event
	messages  map[string]laravel.MessageItem // message id -> item
	receipts  map[string]laravel.ReceiptItem // "session/message/sender" -> most advanced receipt
}

// converse makes perSession messages for each session, spread over three chats, and for every
// second one a delivered then a read receipt of a message the session sent.
func converse(sessions, perSession int) conversation {
	c := conversation{bySession: map[string][]event.Event{}, messages: map[string]laravel.MessageItem{}, receipts: map[string]laravel.ReceiptItem{}}
	at := time.Now().UTC().Truncate(time.Second)
	for s := range sessions {
		sid := fmt.Sprintf("chat-%03d", s)
		var seq int64
		next := func(kind event.Kind, msgID string) event.Event {
			seq++
			return event.Event{ID: fmt.Sprintf("%s-%s-%d", sid, kind, seq), SessionID: sid, Kind: kind, Payload: msgID,
				Time: at, Version: seq, Priority: event.PriorityNormal}
		}
		for i := range perSession {
			chat := fmt.Sprintf("3460000%04d@s.whatsapp.net", i%3)
			msgID := fmt.Sprintf("IN%s%05d", sid, i)
			ev := next(event.KindMessage, msgID)
			m := laravel.MessageItem{SessionID: sid, MessageID: msgID, Chat: chat, Sender: chat, Type: laravel.MessageText,
				Text: fmt.Sprintf("message %d", i), Timestamp: at, Sequence: ev.Version}
			ev.Message = &m
			c.bySession[sid] = append(c.bySession[sid], ev)
			c.messages[msgID] = m
			if i%2 == 1 {
				sent := fmt.Sprintf("OUT%s%05d", sid, i)
				for _, status := range []laravel.ReceiptStatus{laravel.ReceiptDelivered, laravel.ReceiptRead} {
					ev := next(event.KindReceipt, sent)
					r := laravel.ReceiptItem{SessionID: sid, MessageID: sent, Chat: chat, Sender: chat, Status: status, Timestamp: at, Sequence: ev.Version}
					ev.Receipt = &r
					c.bySession[sid] = append(c.bySession[sid], ev)
					c.receipts[sid+"/"+sent+"/"+chat] = r
				}
			}
		}
	}
	return c
}

// deliver hands each session's events to d in sequence order, sessions concurrently.
func (c conversation) deliver(t *testing.T, d *batch.Delivery) {
	t.Helper()
	deliverBySession(t, d, c.bySession)
}

// items counts the messages' and receipts' events.
func (c conversation) items() int {
	n := 0
	for _, evs := range c.bySession {
		n += len(evs)
	}
	return n
}

// assertStoredOnceInOrder checks Laravel stored every message exactly once (one request applied
// it: no re-send under another key), each chat's messages first stored in sequence order, and
// every receipt at its most advanced status.
func (c conversation) assertStoredOnceInOrder(t *testing.T, srv *fakelaravel.Server) {
	t.Helper()
	st, err := srv.Messages(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := map[string]int64{} // session/chat -> sequence of the last message stored
	for _, m := range st.Messages {
		want, ok := c.messages[m.MessageID]
		switch {
		case !ok:
			t.Errorf("Laravel stored %s, which nobody wrote", m.MessageID)
		case seen[m.MessageID]:
			t.Errorf("%s stored twice", m.MessageID)
		case m.Deliveries != 1:
			t.Errorf("%s applied by %d requests; want 1 (a retry under the same key is replayed, not applied)", m.MessageID, m.Deliveries)
		case m.Sequence != want.Sequence || m.Text != want.Text || m.Chat != want.Chat:
			t.Errorf("%s stored as %+v; want %+v", m.MessageID, m.MessageItem, want)
		}
		seen[m.MessageID] = true
		chat := m.SessionID + "/" + m.Chat
		if m.Sequence <= last[chat] {
			t.Errorf("%s: sequence %d stored after %d: out of order", chat, m.Sequence, last[chat])
		}
		last[chat] = m.Sequence
	}
	for id := range c.messages {
		if !seen[id] {
			t.Errorf("%s lost: never stored", id)
		}
	}
	if len(st.Receipts) != len(c.receipts) {
		t.Errorf("%d receipt rows; want %d", len(st.Receipts), len(c.receipts))
	}
	for _, r := range st.Receipts {
		if want := c.receipts[r.SessionID+"/"+r.MessageID+"/"+r.Sender]; r.Status != want.Status {
			t.Errorf("receipt %s/%s: %s; want %s", r.SessionID, r.MessageID, r.Status, want.Status)
		}
	}
}

// Through 503s and responses lost after Laravel applied the batch, every message reaches Laravel
// once, each chat in order, every receipt at its furthest status, in far fewer requests than
// items, and nothing is dead-lettered.
func TestMessagesArriveOnceAndInOrderPerChatThrough503sAndLostResponses(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		srv, client := startLaravel(t, fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{
			{Kind: fakelaravel.FaultStatus, Status: 503, Rate: 0.3, Endpoints: []string{fakelaravel.EndpointMessageBatch, fakelaravel.EndpointReceiptBatch}},
			{Kind: fakelaravel.FaultLostResponse, Rate: 0.3, Endpoints: []string{fakelaravel.EndpointMessageBatch, fakelaravel.EndpointReceiptBatch}},
		}})
		d := startDelivery(t, b, client, "gw-1")
		c := converse(12, 120) // more than a batch per session: a chat spans several batches
		c.deliver(t, d)
		m := drainAndClose(t, d)
		c.assertStoredOnceInOrder(t, srv)
		st := srv.Stats()
		reqs := st.Endpoints[fakelaravel.EndpointMessageBatch].Requests + st.Endpoints[fakelaravel.EndpointReceiptBatch].Requests
		items := c.items()
		t.Logf("%d messages and receipts -> %d batch requests; failures %v, retried %d", items, reqs, m.FailuresByStatus, m.Retried)
		if m.DeadLettered != 0 || m.Coalesced != 0 {
			t.Fatalf("dead-lettered %d, coalesced %d; want 0 and 0", m.DeadLettered, m.Coalesced)
		}
		// A lost response is retried at once under the same key (by net/http itself, the request
		// carrying an Idempotency-Key) and answered from Laravel's stored answer: replayed.
		replayed := st.Endpoints[fakelaravel.EndpointMessageBatch].Replayed + st.Endpoints[fakelaravel.EndpointReceiptBatch].Replayed
		if m.FailuresByStatus["503"] == 0 || replayed == 0 {
			t.Fatalf("failures %v, %d replayed answers: the 503 and lost-response windows did not hit", m.FailuresByStatus, replayed)
		}
		if int(reqs) >= items/3 {
			t.Fatalf("%d requests for %d items: messages were not batched", reqs, items)
		}
	})
}

// Laravel refusing every item of one session it does not know (named once per item in the 2xx's
// errors, by session id) dead-letters exactly that session's messages and receipts, each with
// Laravel's reason, and the other sessions' items, sent in the same batches, are stored.
func TestARefusedSessionsMessagesAreDeadLetteredAndTheOthersStored(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		srv, client := startLaravelWith(t, fakelaravel.Config{RejectUnknownSessions: true})
		admin := fakelaravel.NewAdminClient(laravelBaseURL(t, srv), token, nil)
		for _, sid := range []string{"chat-000", "chat-002"} {
			if err := admin.SetSession(context.Background(), sid, true); err != nil {
				t.Fatal(err)
			}
		}
		d := startDelivery(t, b, client, "gw-1")
		c := converse(3, 6)
		c.deliver(t, d)
		m := drainAndClose(t, d)
		refused := len(c.bySession["chat-001"])
		if m.DeadLettered != int64(refused) {
			t.Fatalf("dead-lettered %d; want chat-001's %d messages and receipts", m.DeadLettered, refused)
		}
		dead, _, err := d.Outbox().ListDeadLetters(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range dead {
			if dl.Event.SessionID != "chat-001" || !strings.Contains(dl.Reason, "unknown session") || !dl.Event.Kind.IsMessaging() {
				t.Errorf("dead letter of %s (%s): only chat-001 was refused", dl.Event.SessionID, dl.Reason)
			}
		}
		st, err := srv.Messages(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range st.Messages {
			if msg.SessionID == "chat-001" {
				t.Errorf("refused message %s stored", msg.MessageID)
			}
		}
		if want := len(c.messages) - 6; len(st.Messages) != want {
			t.Fatalf("%d messages stored; want the other sessions' %d", len(st.Messages), want)
		}
	})
}

// A gateway that dies while Laravel is down leaves every message and receipt pending (none
// acknowledged as coalesced); the restarted gateway (same consumer) recovers them and Laravel
// stores each once, every chat in order.
func TestMessagesPendingWhenTheGatewayDiesReachLaravelOnceInOrderAfterTheRestart(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		srv, client := startLaravel(t, fakelaravel.Faults{DownWindows: []fakelaravel.DownWindow{{StartAfterMS: 0, DurationMS: 3_600_000}}})
		first := newDelivery(t, b, client, "gw-1")
		c := converse(4, 80)
		c.deliver(t, first)
		for range 3 { // read, flushed after the message interval, sent: connection refused
			time.Sleep(30 * time.Millisecond)
			if err := first.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		items := c.items()
		if m := first.Snapshot(context.Background()); m.Sent != 0 || m.Coalesced != 0 || m.Pending != int64(items) || m.FailuresByStatus["network"] == 0 {
			t.Fatalf("while Laravel is down: sent %d, coalesced %d, pending %d, failures %v; want 0, 0, %d and refused sends",
				m.Sent, m.Coalesced, m.Pending, m.FailuresByStatus, items)
		}
		if err := srv.SetFaults(fakelaravel.Faults{}); err != nil {
			t.Fatal(err)
		}
		drainAndClose(t, startDelivery(t, b, client, "gw-1"))
		c.assertStoredOnceInOrder(t, srv)
	})
}
