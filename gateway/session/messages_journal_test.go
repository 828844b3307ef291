package session_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// memJournal is a journal in memory that also notes, for each event it records, whether the
// delivery already held it (it must not: the journal comes first).
type memJournal struct {
	sink *durableSink

	mu       sync.Mutex
	events   []event.Event
	late     []string // events the delivery held before the journal did
	refusing error
}

func (j *memJournal) Record(_ context.Context, ev event.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.refusing != nil {
		return j.refusing
	}
	for _, d := range j.sink.Events() {
		if d.ID == ev.ID {
			j.late = append(j.late, ev.ID)
		}
	}
	j.events = append(j.events, ev)
	return nil
}

func (j *memJournal) setRefusing(err error) {
	j.mu.Lock()
	j.refusing = err
	j.mu.Unlock()
}

func (j *memJournal) recorded() ([]event.Event, []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events), slices.Clone(j.late)
}

// journalRig starts session "s1", paired and connected, on a manager with a durable delivery and
// a journal.
func journalRig(t *testing.T, hooks session.Hooks) (*session.Manager, *sessiontest.Driver, *durableSink, *memJournal) {
	t.Helper()
	sink := &durableSink{Sink: &sessiontest.Sink{}}
	j := &memJournal{sink: sink}
	m, driver := startConnected(t, session.Config{Hooks: hooks, Journal: j}, sink)
	return m, driver, sink, j
}

// Every message and receipt event is in the journal, exactly as the delivery then receives it
// (event id, sequence, item), before the delivery holds it, and before the handler returns.
func TestEveryMessageAndReceiptIsJournalledAsDeliveredBeforeTheDeliveryTakesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, driver, sink, j := journalRig(t, session.Hooks{})
		defer m.Close(context.Background())
		c := driver.Conn("s1")
		for _, ev := range []session.DriverEvent{text("A1", "hola"), receipt(laravel.ReceiptDelivered, "OUT1", "OUT2"), text("A2", "otra")} {
			if err := c.Emit(ev); err != nil {
				t.Fatalf("handler refused %T: %v", ev, err)
			}
		}
		journalled, late := j.recorded()
		_, delivered := messaging(sink.Sink)
		if len(delivered) != 4 || !slices.EqualFunc(journalled, delivered, func(a, b event.Event) bool {
			return a.ID == b.ID && a.Version == b.Version && a.Payload == b.Payload && a.Kind == b.Kind &&
				(a.Message == b.Message || *a.Message == *b.Message) && (a.Receipt == b.Receipt || *a.Receipt == *b.Receipt)
		}) {
			t.Fatalf("journal %+v\ndelivery %+v\nwant the same 4 events", journalled, delivered)
		}
		if len(late) > 0 {
			t.Fatalf("the delivery held %v before the journal did", late)
		}
		for _, ev := range journalled {
			if !ev.Kind.IsMessaging() {
				t.Fatalf("journalled a %s event; only messages and receipts", ev.Kind)
			}
		}
	})
}

// A message the journal cannot record is refused like one the outbox refuses: the handler
// reports the failure (so the driver sends WhatsApp no receipt), the delivery never sees it, and
// WhatsApp's redelivery after the reconnect is journalled and delivered once.
func TestAMessageTheJournalRefusesIsNotDeliveredAndItsRedeliveryIsTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var failed []event.Event
		hooks := session.Hooks{DeliveryFailed: func(ev event.Event, err error) {
			mu.Lock()
			failed = append(failed, ev)
			mu.Unlock()
		}}
		m, driver, sink, j := journalRig(t, hooks)
		defer m.Close(context.Background())
		old := driver.Conn("s1")

		storeDown := errors.New("database is locked")
		j.setRefusing(storeDown)
		if err := old.Emit(text("A1", "hola")); !errors.Is(err, storeDown) {
			t.Fatalf("handler answered %v for a message the journal refused, want its error", err)
		}
		if got, _ := messaging(sink.Sink); len(got) != 0 {
			t.Fatalf("the delivery got %q although the journal refused it", got)
		}
		mu.Lock()
		if len(failed) != 1 || failed[0].Kind != event.KindMessage {
			t.Fatalf("DeliveryFailed hook saw %v", failed)
		}
		mu.Unlock()

		j.setRefusing(nil)
		time.Sleep(time.Second) // ResyncRetry's default: the session reconnects for the redelivery
		synctest.Wait()
		c := driver.Conn("s1")
		if c == old || !c.LoggedIn() {
			t.Fatal("the session did not reconnect for WhatsApp to deliver the refused message again")
		}
		for _, ev := range []session.DriverEvent{text("A1", "hola"), text("A2", "¿hola?")} {
			if err := c.Emit(ev); err != nil {
				t.Fatalf("redelivery refused: %v", err)
			}
		}
		if got, _ := messaging(sink.Sink); !slices.Equal(got, []string{"message:A1", "message:A2"}) {
			t.Fatalf("delivered %q after the redelivery, want each message once, in order", got)
		}
		if journalled, _ := j.recorded(); len(journalled) != 2 || journalled[0].Payload != "A1" || journalled[1].Payload != "A2" {
			t.Fatalf("journal %+v, want A1 then A2", journalled)
		}
	})
}
