package outbox

import (
	"context"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

func customerMessage(sid, waID string, seq int64) event.Event {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	return event.Event{ID: sid + "-message-" + string(rune('0'+seq)), SessionID: sid, Kind: event.KindMessage, Payload: waID, Version: seq, Time: at,
		Message: &laravel.MessageItem{SessionID: sid, MessageID: waID, Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			Type: laravel.MessageText, Text: "hola", Timestamp: at, Sequence: seq}}
}

func receiptOf(sid, waID string, status laravel.ReceiptStatus, seq int64) event.Event {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	return event.Event{ID: sid + "-receipt-" + string(rune('0'+seq)), SessionID: sid, Kind: event.KindReceipt, Payload: waID, Version: seq, Time: at,
		Receipt: &laravel.ReceiptItem{SessionID: sid, MessageID: waID, Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			Status: status, Timestamp: at, Sequence: seq}}
}

// WhatsApp delivers again a message the gateway did not acknowledge; when the first append's answer
// was lost (Redis paused past the append deadline, then ran it), the gateway refused the message
// to WhatsApp although the outbox holds it. Its redelivery, under a new sequence, must not become
// a second entry: Laravel would get the message twice (chaos seed 3, schedule 5).
func TestARedeliveredMessageOrReceiptIsAppendedOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  event.Event
		again  event.Event
		wantN  int64
		sameID bool
	}{
		{"a message redelivered under a new sequence", customerMessage("s1", "WAID1", 1), customerMessage("s1", "WAID1", 2), 1, true},
		{"another message of the chat", customerMessage("s1", "WAID1", 1), customerMessage("s1", "WAID2", 2), 2, false},
		{"the same message id on another session", customerMessage("s1", "WAID1", 1), customerMessage("s2", "WAID1", 1), 2, false},
		{"a receipt redelivered", receiptOf("s1", "OUT1", laravel.ReceiptRead, 1), receiptOf("s1", "OUT1", laravel.ReceiptRead, 2), 1, true},
		{"the next status of a receipt", receiptOf("s1", "OUT1", laravel.ReceiptDelivered, 1), receiptOf("s1", "OUT1", laravel.ReceiptRead, 2), 2, false},
		{"a repeated state change (no once key: Laravel keeps the highest version)", testEvent("s1", 1, event.KindStatus, "connected"), testEvent("s1", 1, event.KindStatus, "connected"), 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				o := newOutbox(t, b, Config{})
				id1, err := o.Append(ctx, tc.first)
				if err != nil {
					t.Fatal(err)
				}
				id2, err := o.Append(ctx, tc.again)
				if err != nil {
					t.Fatal(err)
				}
				if st, _ := o.Stats(ctx); st.Length != tc.wantN {
					t.Errorf("the outbox holds %d entries, want %d", st.Length, tc.wantN)
				}
				if (id1 == id2) != tc.sameID {
					t.Errorf("ids %s and %s: same = %v, want %v", id1, id2, id1 == id2, tc.sameID)
				}
			})
		})
	}
}

// The append whose answer never came ran in Redis: the gateway's retry of the same message (its
// redelivery) answers the entry that run made.
func TestAnAppendWhoseAnswerWasLostIsFoundByTheRedelivery(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		lost := customerMessage("s1", "WAID9", 1)
		item, err := encodeItem(lost)
		if err != nil {
			t.Fatal(err)
		}
		args := []any{o.cfg.Max, lost.ID, lost.SessionID, string(lost.Kind), lost.Payload, "1", "0", "0", item}
		ranInRedis, _, err := o.tryAppendOnce(ctx, args, o.onceKey(lost))
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.Append(ctx, customerMessage("s1", "WAID9", 2))
		if err != nil {
			t.Fatal(err)
		}
		if got != ranInRedis {
			t.Errorf("the redelivery got entry %s, want the lost append's %s", got, ranInRedis)
		}
		if st, _ := o.Stats(ctx); st.Length != 1 {
			t.Errorf("the outbox holds %d entries, want 1", st.Length)
		}
	})
}
