package whatsapp_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
	"wagate/simulator/fakewa"
)

// messagingSink is a sink that says it delivers message and receipt events.
type messagingSink struct{ *sessiontest.Sink }

func (messagingSink) Accepts(k event.Kind) bool { return k.IsMessaging() }

const customer = "5511977770042"

// waitDeviceReceipts waits until the gateway's client acknowledged ids to fakewa: whatsmeow writes
// receipts asynchronously, and a shutdown racing that write is a data race inside whatsmeow.
func (w *world) waitDeviceReceipts(ids ...string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := w.wa.WaitEvent(ctx, func(e fakewa.Event) bool {
			return e.Kind == fakewa.EventDeviceReceipt && e.MessageID == id && e.Detail != "retry"
		}); err != nil {
			w.t.Fatalf("no receipt from the gateway for %s: %v", id, err)
		}
	}
}

// messagingEvents returns the session's message and receipt events, in delivery order.
func (w *world) messagingEvents(id string) []event.Event {
	var out []event.Event
	for _, ev := range w.sink.Events() {
		if ev.SessionID == id && ev.Kind.IsMessaging() {
			out = append(out, ev)
		}
	}
	return out
}

func (w *world) phoneWrites(jid string, m fakewa.PhoneMessage) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	to, err := types.ParseJID(jid)
	if err != nil {
		w.t.Fatal(err)
	}
	m.From = customer
	id, err := w.wa.SendMessage(ctx, to, m)
	if err != nil {
		w.t.Fatalf("phone writes %+v: %v", m, err)
	}
	return id
}

func TestACustomersTextReplyAndReactionAndTheReceiptsOfASentMessageBecomeSessionEventsInOrderOnce(t *testing.T) {
	w := newWorldWith(t, "", true, fakewa.ReceiptsDeliveredAndRead)
	defer w.shutdown()
	jid := w.pair("s1", "15550000101").String()

	text := w.phoneWrites(jid, fakewa.PhoneMessage{Text: "hola, ¿tienen stock?"})
	reply := w.phoneWrites(jid, fakewa.PhoneMessage{Text: "¿y en azul?", Quote: text})
	reaction := w.phoneWrites(jid, fakewa.PhoneMessage{Text: "👍", ReactTo: text})
	w.waitFor("three messages", func() bool { return len(w.messagingEvents("s1")) >= 3 })

	chat := customer + "@s.whatsapp.net"
	want := []laravel.MessageItem{
		{MessageID: text, Type: laravel.MessageText, Text: "hola, ¿tienen stock?"},
		{MessageID: reply, Type: laravel.MessageText, Text: "¿y en azul?", Quote: text},
		{MessageID: reaction, Type: laravel.MessageReaction, Text: "👍", ReactTo: text},
	}
	evs := w.messagingEvents("s1")
	for i, ev := range evs[:3] {
		m := ev.Message
		if ev.Kind != event.KindMessage || m == nil {
			t.Fatalf("event %d is %s, want a message", i, ev.Kind)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if m.MessageID != want[i].MessageID || m.Type != want[i].Type || m.Text != want[i].Text ||
			m.Quote != want[i].Quote || m.ReactTo != want[i].ReactTo {
			t.Fatalf("message %d = %+v, want %+v", i, *m, want[i])
		}
		if m.SessionID != "s1" || m.Chat != chat || m.Sender != chat || m.FromMe || m.Timestamp.IsZero() {
			t.Fatalf("message %d from %s in %s (from me %v, at %v), want from the customer", i, m.Sender, m.Chat, m.FromMe, m.Timestamp)
		}
		if i > 0 && ev.Version <= evs[i-1].Version {
			t.Fatalf("message %d numbered %d after %d", i, ev.Version, evs[i-1].Version)
		}
	}

	sent, err := w.m.SendText(context.Background(), "s1", session.OutgoingText{Phone: customer, Text: "sí, en azul también"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitFor("delivered and read receipts", func() bool { return len(w.messagingEvents("s1")) >= 5 })
	evs = w.messagingEvents("s1")
	if len(evs) != 5 {
		t.Fatalf("%d message and receipt events, want 5 (3 messages once each, 2 receipts)", len(evs))
	}
	for i, status := range []laravel.ReceiptStatus{laravel.ReceiptDelivered, laravel.ReceiptRead} {
		r := evs[3+i].Receipt
		if r == nil || r.MessageID != sent || r.Status != status || r.Chat != chat || r.Sequence <= evs[2+i].Version {
			t.Fatalf("receipt %d = %+v, want %s of %s after the messages", i, r, status, sent)
		}
	}
	w.waitDeviceReceipts(text, reply, reaction)
}

func TestWhatACustomerWritesWhileTheSessionIsStoppedArrivesWhenItIsBack(t *testing.T) {
	w := newWorldWith(t, "", true, fakewa.ReceiptsNone)
	defer w.shutdown()
	jid := w.pair("s1", "15550000102").String()
	ctx := context.Background()
	if _, err := w.m.Stop(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	w.waitFor("fakewa sees the device offline", func() bool {
		for _, d := range w.wa.Devices() {
			if d.JID == jid {
				return d.State == fakewa.DeviceOffline
			}
		}
		return false
	})
	first := w.phoneWrites(jid, fakewa.PhoneMessage{Text: "¿están?"})
	second := w.phoneWrites(jid, fakewa.PhoneMessage{Text: "les escribo mañana"})
	time.Sleep(100 * time.Millisecond)
	if n := len(w.messagingEvents("s1")); n != 0 {
		t.Fatalf("a stopped session reported %d messages", n)
	}

	if _, err := w.m.Start(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the held messages", func() bool { return len(w.messagingEvents("s1")) >= 2 })
	evs := w.messagingEvents("s1")
	if len(evs) != 2 || evs[0].Message.MessageID != first || evs[1].Message.MessageID != second {
		t.Fatalf("after the restart got %d events, want %s then %s once each", len(evs), first, second)
	}
	w.waitDeviceReceipts(first, second)
}
