package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
)

// A message or receipt Laravel acknowledged is counted by kind with its delay since the gateway
// received it; QR codes and statuses are not; the series exist at 0 from the start.
func TestDeliveredMessagesAndReceiptsAreCountedWithTheirDelay(t *testing.T) {
	m := New()
	fresh := scrape(t, m)
	for _, want := range []string{
		`wagate_messages_delivered_total{kind="message"} 0`,
		`wagate_messages_delivered_total{kind="receipt"} 0`,
		`wagate_message_delivery_seconds_count{kind="message"} 0`,
		`wagate_event_delivery_failures_total{kind="message"} 0`,
		`wagate_event_delivery_failures_total{kind="receipt"} 0`,
	} {
		if !strings.Contains(fresh, want) {
			t.Errorf("a fresh scrape lacks %s", want)
		}
	}
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		kind event.Kind
		age  time.Duration
	}{
		{event.KindMessage, 200 * time.Millisecond},
		{event.KindMessage, 1200 * time.Millisecond},
		{event.KindReceipt, 40 * time.Millisecond},
		{event.KindStatus, time.Second},
		{event.KindQR, time.Second},
	} {
		m.Delivered(&event.Event{Kind: c.kind, Time: now.Add(-c.age)}, now)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`wagate_messages_delivered_total{kind="message"} 2`,
		`wagate_messages_delivered_total{kind="receipt"} 1`,
		`wagate_message_delivery_seconds_bucket{kind="message",le="0.25"} 1`,
		`wagate_message_delivery_seconds_bucket{kind="message",le="1.5"} 2`,
		`wagate_message_delivery_seconds_sum{kind="message"} 1.4`,
		`wagate_message_delivery_seconds_bucket{kind="receipt",le="0.05"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, `wagate_messages_delivered_total{kind="status"}`) || strings.Contains(out, `wagate_messages_delivered_total{kind="qr"}`) {
		t.Error("QR codes and statuses must not count as delivered messages")
	}
}

// fakeDelivery accepts or refuses every event.
type fakeDelivery struct{ err error }

func (f fakeDelivery) Deliver(context.Context, event.Event) error { return f.err }
func (f fakeDelivery) Close(context.Context) error                { return nil }

// Legacy mode's delivery, wrapped, records only what Laravel acknowledged.
func TestObserveDeliveredRecordsOnlyAcknowledgedEvents(t *testing.T) {
	m := New()
	ok, refused := m.ObserveDelivered(fakeDelivery{}), m.ObserveDelivered(fakeDelivery{err: errors.New("laravel down")})
	ev := event.Event{Kind: event.KindMessage, Time: time.Now()}
	if err := ok.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := refused.Deliver(context.Background(), ev); err == nil {
		t.Fatal("the wrapper must pass the delivery's error on")
	}
	if out := scrape(t, m); !strings.Contains(out, `wagate_messages_delivered_total{kind="message"} 1`) {
		t.Errorf("want one delivered message, scrape:\n%s", out)
	}
}

// acceptingDelivery delivers messages and receipts too, durably or not.
type acceptingDelivery struct {
	fakeDelivery
	durable bool
}

func (acceptingDelivery) Accepts(event.Kind) bool { return true }
func (a acceptingDelivery) DeliversDurably() bool { return a.durable }

// The wrapper keeps what the wrapped delivery says it delivers (legacy mode's messages and
// receipts were dropped as not delivered in the mode when it hid Accepts) and whether durably.
func TestObserveDeliveredKeepsWhatTheDeliveryAcceptsAndItsDurability(t *testing.T) {
	m := New()
	for _, tc := range []struct {
		name             string
		d                delivery.Delivery
		message, durable bool
	}{
		{"QR and status only", fakeDelivery{}, false, false},
		{"messages too", acceptingDelivery{}, true, false},
		{"messages too, durably", acceptingDelivery{durable: true}, true, true},
	} {
		w := m.ObserveDelivered(tc.d)
		if got := delivery.Accepts(w, event.KindMessage); got != tc.message {
			t.Errorf("%s: accepts messages %v, want %v", tc.name, got, tc.message)
		}
		if got := delivery.Accepts(w, event.KindReceipt); got != tc.message {
			t.Errorf("%s: accepts receipts %v, want %v", tc.name, got, tc.message)
		}
		if !delivery.Accepts(w, event.KindStatus) {
			t.Errorf("%s: refuses statuses", tc.name)
		}
		if got := delivery.Durable(w); got != tc.durable {
			t.Errorf("%s: durable %v, want %v", tc.name, got, tc.durable)
		}
	}
}
