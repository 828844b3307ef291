package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// durableSink is a delivery that takes messages and says its Deliver makes them durable (batch's
// outbox); refuse, when set, decides per event whether it is refused (outbox full) instead.
type durableSink struct {
	*sessiontest.Sink
	mu     sync.Mutex
	refuse func(ev event.Event) bool
}

func (*durableSink) Accepts(k event.Kind) bool { return k.IsMessaging() }
func (*durableSink) DeliversDurably() bool     { return true }

func (d *durableSink) Deliver(ctx context.Context, ev event.Event) error {
	d.mu.Lock()
	refuse := d.refuse
	d.mu.Unlock()
	if refuse != nil && refuse(ev) {
		return fmt.Errorf("batch deliver: %w", outbox.ErrFull)
	}
	return d.Sink.Deliver(ctx, ev)
}

func (d *durableSink) setRefuse(f func(ev event.Event) bool) {
	d.mu.Lock()
	d.refuse = f
	d.mu.Unlock()
}

// durableRig starts session "s1", paired and connected, on a manager whose delivery is durable.
func durableRig(t *testing.T, hooks session.Hooks) (*session.Manager, *sessiontest.Driver, *durableSink) {
	t.Helper()
	driver, sink := sessiontest.NewDriver(), &durableSink{Sink: &sessiontest.Sink{}}
	m, err := session.New(context.Background(), session.Config{Hooks: hooks}, driver, sessiontest.NewStore(), sink)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	driver.Conn("s1").Scan()
	synctest.Wait()
	return m, driver, sink
}

// With a durable delivery, the handler returns only once the delivery holds the message: the
// driver acknowledges it to WhatsApp after that, so a crash right after the acknowledgement loses
// nothing. Events are appended in sequence order.
func TestWithADurableDeliveryAMessageIsAppendedBeforeTheHandlerReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, driver, sink := durableRig(t, session.Hooks{})
		defer m.Close(context.Background())
		c := driver.Conn("s1")

		for _, ev := range []session.DriverEvent{text("A1", "hola"), receipt(laravel.ReceiptDelivered, "OUT1", "OUT2"), text("A2", "otra")} {
			if err := c.Emit(ev); err != nil {
				t.Fatalf("handler reported failure for %T: %v", ev, err)
			}
		}
		// No synctest.Wait: nothing may still be on its way.
		got, evs := messaging(sink.Sink)
		if want := []string{"message:A1", "receipt:OUT1:delivered", "receipt:OUT2:delivered", "message:A2"}; !slices.Equal(got, want) {
			t.Fatalf("delivered when the handler returned\n got %q\nwant %q", got, want)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Version <= evs[i-1].Version {
				t.Fatalf("appended sequence %d after %d", evs[i].Version, evs[i-1].Version)
			}
		}
	})
}

// When the delivery refuses a message (the outbox stayed full), the handler reports failure, so
// no receipt goes to WhatsApp, and the message is not remembered as seen: WhatsApp's redelivery
// is taken once, and a further duplicate is dropped.
func TestAMessageTheDeliveryRefusesIsReportedAsFailedAndItsRedeliveryIsTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var failed []event.Event
		hooks := session.Hooks{DeliveryFailed: func(ev event.Event, err error) {
			mu.Lock()
			failed = append(failed, ev)
			mu.Unlock()
		}}
		m, driver, sink := durableRig(t, hooks)
		defer m.Close(context.Background())
		c := driver.Conn("s1")

		sink.setRefuse(func(event.Event) bool { return true })
		if err := c.Emit(text("A1", "hola")); !errors.Is(err, outbox.ErrFull) {
			t.Fatalf("handler answered %v for a refused message, want outbox.ErrFull", err)
		}
		if got, _ := messaging(sink.Sink); len(got) != 0 {
			t.Fatalf("refused message delivered: %q", got)
		}
		mu.Lock()
		if len(failed) != 1 || failed[0].Kind != event.KindMessage {
			t.Fatalf("DeliveryFailed hook saw %v", failed)
		}
		mu.Unlock()

		sink.setRefuse(nil)
		if err := c.Emit(text("A1", "hola")); err != nil {
			t.Fatalf("redelivery refused: %v", err)
		}
		if err := c.Emit(text("A1", "hola")); err != nil {
			t.Fatalf("duplicate answered %v, want success (it is already durable)", err)
		}
		if got, _ := messaging(sink.Sink); !slices.Equal(got, []string{"message:A1"}) {
			t.Fatalf("after the redelivery and a duplicate: %q, want the message once", got)
		}
	})
}

// A receipt for several messages whose second item is refused: the first stays delivered (and
// seen), the handler reports failure, and WhatsApp's redelivery of the receipt adds only the rest.
func TestAReceiptRefusedHalfwayIsCompletedByItsRedeliveryWithoutDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, driver, sink := durableRig(t, session.Hooks{})
		defer m.Close(context.Background())
		c := driver.Conn("s1")

		sink.setRefuse(func(ev event.Event) bool { return ev.Kind == event.KindReceipt && ev.Receipt.MessageID == "OUT2" })
		if err := c.Emit(receipt(laravel.ReceiptRead, "OUT1", "OUT2", "OUT3")); err == nil {
			t.Fatal("handler reported success for a receipt the delivery refused in part")
		}
		sink.setRefuse(nil)
		if err := c.Emit(receipt(laravel.ReceiptRead, "OUT1", "OUT2", "OUT3")); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		got, _ := messaging(sink.Sink)
		if want := []string{"receipt:OUT1:read", "receipt:OUT2:read", "receipt:OUT3:read"}; !slices.Equal(got, want) {
			t.Fatalf("receipts\n got %q\nwant %q", got, want)
		}
	})
}

// A message that arrives on a connection the session no longer uses (stopped, replaced) is
// refused, not dropped: unacknowledged, WhatsApp delivers it again on the next connection.
func TestAMessageOnAClosedConnectionIsRefusedSoWhatsAppDeliversItAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, driver, sink := durableRig(t, session.Hooks{})
		defer m.Close(context.Background())
		old := driver.Conn("s1")
		if _, err := m.Stop(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		if err := old.Emit(text("A1", "late")); err == nil {
			t.Fatal("a message on a stopped connection was reported as taken")
		}
		if _, err := m.Start(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := driver.Conn("s1").Emit(text("A1", "late")); err != nil {
			t.Fatalf("redelivery on the new connection: %v", err)
		}
		if got, _ := messaging(sink.Sink); !slices.Equal(got, []string{"message:A1"}) {
			t.Fatalf("messages %q, want A1 once", got)
		}
	})
}
