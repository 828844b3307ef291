package outbox

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

// A re-drive tells Config.Redriving each customer's message or receipt before it appends it (the
// message journal records it again: its row was deleted when it was dead-lettered, and a Redis
// data loss before Laravel applies the re-driven item would otherwise lose it), never a QR code or
// a status; a refusal stops the re-drive before that item's append, its dead letter kept.
func TestARedriveTellsRedrivingEachMessageOrReceiptBeforeItsAppend(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
		msg := event.Event{ID: "s1-message-7", SessionID: "s1", Kind: event.KindMessage, Payload: "WAID1", Version: 7, Time: at,
			Message: &laravel.MessageItem{SessionID: "s1", MessageID: "WAID1", Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
				Type: laravel.MessageText, Text: "hola", Timestamp: at, Sequence: 7}}
		rcpt := event.Event{ID: "s1-receipt-8", SessionID: "s1", Kind: event.KindReceipt, Payload: "OUT1", Version: 8, Time: at,
			Receipt: &laravel.ReceiptItem{SessionID: "s1", MessageID: "OUT1", Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
				Status: laravel.ReceiptRead, Timestamp: at, Sequence: 8}}
		status := testEvent("s2", 3, event.KindStatus, "logged_out")
		var told []string
		refuse := errors.New("store unavailable")
		var refusing bool
		r := newDeadLetterRig(t, b, Config{Redriving: func(_ context.Context, ev event.Event) error {
			if refusing {
				return refuse
			}
			told = append(told, ev.ID)
			return nil
		}})
		r.deadLetter(t, "item refused", msg, status, rcpt)

		refusing = true
		if _, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{}); !errors.Is(err, refuse) {
			t.Fatalf("re-drive with Redriving refusing: %v, want its error", err)
		}
		if got := r.outboxEvents(t); len(got) != 0 {
			t.Fatalf("outbox holds %d events after a refused re-drive; want none (the message first, refused)", len(got))
		}
		refusing = false
		res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
		if err != nil || res.Redriven != 3 {
			t.Fatalf("re-drive: %+v, %v; want 3 re-driven", res, err)
		}
		if want := []string{msg.ID, rcpt.ID}; !slices.Equal(told, want) {
			t.Fatalf("Redriving told %q, want the message and the receipt %q (not the status)", told, want)
		}
		var appended []string
		for _, ev := range r.outboxEvents(t) {
			appended = append(appended, ev.ID)
		}
		if want := []string{msg.ID, status.ID, rcpt.ID}; !slices.Equal(appended, want) {
			t.Fatalf("outbox holds %q, want %q", appended, want)
		}
	})
}
