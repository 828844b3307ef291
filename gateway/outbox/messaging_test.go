package outbox

import (
	"context"
	"reflect"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

// A message and a receipt keep their whole Laravel item through the outbox: appended, read,
// dead-lettered, listed and re-driven, each comes back equal to what was appended, so a message
// is never delivered without its text, chat or sequence. Near the bound (the atomic append) too.
func TestMessageAndReceiptItemsSurviveAppendReadDeadLetterAndRedrive(t *testing.T) {
	at := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	msg := event.Event{ID: "s1-message-7", SessionID: "s1", Kind: event.KindMessage, Payload: "WAID1", Version: 7, Time: at,
		Message: &laravel.MessageItem{SessionID: "s1", MessageID: "WAID1", Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			PushName: "Ana", Type: laravel.MessageText, Text: "¿llegó?", Quote: "WAID0", Timestamp: at, Sequence: 7,
			Media: &laravel.MessageMedia{MimeType: "image/jpeg", FileLength: 1234, FileSHA256: "ab"}}}
	rcpt := event.Event{ID: "s1-receipt-8", SessionID: "s1", Kind: event.KindReceipt, Payload: "OUT1", Version: 8, Time: at,
		Receipt: &laravel.ReceiptItem{SessionID: "s1", MessageID: "OUT1", Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			Status: laravel.ReceiptRead, Timestamp: at, Sequence: 8}}
	for _, tc := range []struct {
		name string
		max  int64
	}{{"far below the bound", 0}, {"at the bound, atomic append", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				r := newDeadLetterRig(t, b, Config{Max: tc.max})
				if tc.max > 0 {
					r.o.lastLen.Store(tc.max) // near the bound every append takes the atomic script
				}
				ctx := context.Background()
				for _, ev := range []event.Event{msg, rcpt} {
					if _, err := r.o.Append(ctx, ev); err != nil {
						t.Fatal(err)
					}
				}
				entries, err := r.o.ReadNew(ctx, 10)
				if err != nil || len(entries) != 2 {
					t.Fatalf("read %d entries: %v", len(entries), err)
				}
				for i, want := range []event.Event{msg, rcpt} {
					if !reflect.DeepEqual(entries[i].Event, want) {
						t.Fatalf("read back %+v; want %+v", entries[i].Event, want)
					}
				}
				if err := r.o.DeadLetter(ctx, entries, "refused"); err != nil {
					t.Fatal(err)
				}
				for i, dl := range r.all(t) {
					if want := []event.Event{msg, rcpt}[i]; !reflect.DeepEqual(dl.Event, want) {
						t.Fatalf("dead letter %+v; want %+v", dl.Event, want)
					}
				}
				if _, err := r.o.RedriveDeadLetters(ctx, RedriveFilter{}); err != nil {
					t.Fatal(err)
				}
				got := r.outboxEvents(t)
				if len(got) != 2 || !reflect.DeepEqual(got[0], msg) || !reflect.DeepEqual(got[1], rcpt) {
					t.Fatalf("re-driven %+v; want the original message and receipt", got)
				}
			})
		})
	}
}
