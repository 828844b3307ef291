package batch_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// notedLog keeps what Options.Noting is told, and can refuse.
type notedLog struct {
	mu     sync.Mutex
	comps  []batch.Composition
	refuse error
}

func (n *notedLog) hook(_ context.Context, comps []batch.Composition) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refuse != nil {
		return n.refuse
	}
	n.comps = append(n.comps, comps...)
	return nil
}

func (n *notedLog) all() []batch.Composition {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.comps)
}

func (n *notedLog) setRefuse(err error) {
	n.mu.Lock()
	n.refuse = err
	n.mu.Unlock()
}

// startNotingDelivery is startDelivery with Options.Noting set to noting.
func startNotingDelivery(t *testing.T, b *redistest.Backend, client batch.Sender, consumer string, noting func(context.Context, []batch.Composition) error) *batch.Delivery {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(context.Background(), b.Client(t), outbox.Config{Consumer: consumer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := batch.New(batch.Options{Outbox: ob, Sender: client, Logger: log, Noting: noting, Config: batch.Config{
		BatchInterval: 50 * time.Millisecond, PriorityInterval: 20 * time.Millisecond, MessageInterval: 20 * time.Millisecond,
		PollInterval: 5 * time.Millisecond,
		Backoff:      batch.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
		Breaker:      batch.BreakerConfig{Failures: 5, OpenFor: 50 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// Laravel applied batches of a session's messages and receipts; Redis then lost its data, the
// batch records with it, before the gateway settled them (its journal still holds them). Each
// batch handed to Resend as Noting was told it goes out again first, as it was, under its key:
// Laravel answers every one from its stored answer (same key, same body: a different body would be
// refused 422), applies nothing twice, and a newer message of the session, appended meanwhile,
// waits for them and is applied once after. Noting is told only batches of messages and receipts,
// before their first send, and a refusal holds the batch back until Noting takes it.
func TestBatchesLaravelAppliedAreResentUnderTheirKeysAfterRedisLostTheirRecordsAndAppliedOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		srv, client := startLaravel(t, fakelaravel.Faults{})
		var noted notedLog
		d1 := startNotingDelivery(t, b, client, "gw-1", noted.hook)
		conv := converse(1, 6)
		evs := conv.bySession["chat-000"]
		newer := evs[len(evs)-1]
		evs = evs[:len(evs)-1]
		if newer.Kind != event.KindReceipt {
			t.Fatalf("the conversation's last event is a %s; the test holds back a receipt", newer.Kind)
		}

		// The first message is refused by Noting once: it waits and goes out once Noting takes it.
		noted.setRefuse(errors.New("store unavailable"))
		if err := d1.Deliver(ctx, evs[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if st := srv.Stats(); st.Endpoints[laravel.EndpointMsgBatch].Requests != 0 {
			t.Fatalf("a batch Noting refused was sent: %+v", st.Endpoints[laravel.EndpointMsgBatch])
		}
		noted.setRefuse(nil)
		for _, ev := range evs[1:] {
			if err := d1.Deliver(ctx, ev); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // a few batches, not one
		}
		waitDrained(t, d1)
		comps := noted.all()
		var items []event.Event
		for _, c := range comps {
			if !c.Kind.IsMessaging() || len(c.Events) == 0 {
				t.Fatalf("Noting was told %+v; only batches of messages and receipts", c)
			}
			items = append(items, c.Events...)
		}
		if len(comps) < 2 || len(items) != len(evs) {
			t.Fatalf("Noting told %d batches of %d items; want every one of the %d items, in at least 2 batches", len(comps), len(items), len(evs))
		}
		if err := d1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		before := srv.Stats()

		if err := b.Client(t).FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		d2 := startNotingDelivery(t, b, client, "gw-2", nil)
		for _, c := range comps {
			ok, err := d2.Resend(ctx, c)
			if err != nil || !ok {
				t.Fatalf("Resend %s: %v, %v", c.Key, ok, err)
			}
		}
		if err := d2.Deliver(ctx, newer); err != nil {
			t.Fatal(err)
		}
		waitDrained(t, d2)

		after := srv.Stats()
		replayed := 0
		for _, ep := range []string{laravel.EndpointMsgBatch, laravel.EndpointRcptBatch} {
			replayed += int(after.Endpoints[ep].Replayed - before.Endpoints[ep].Replayed)
			if codes := after.Endpoints[ep].StatusCodes; codes["422"] != 0 {
				t.Errorf("%s answered 422 %d times: a key sent again with another body", ep, codes["422"])
			}
		}
		if replayed != len(comps) {
			t.Errorf("Laravel answered %d of the %d batches sent again from its stored answers; want all", replayed, len(comps))
		}
		st, err := srv.Messages(ctx, "chat-000")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Messages {
			if m.Deliveries != 1 {
				t.Errorf("message %s applied %d times, want once", m.MessageID, m.Deliveries)
			}
		}
		conv.assertStoredOnceInOrder(t, srv)
		if rcpt := after.Endpoints[laravel.EndpointRcptBatch].Items - before.Endpoints[laravel.EndpointRcptBatch].Items; rcpt < 1 {
			t.Errorf("the newer receipt did not reach Laravel after the batches sent again (%d receipt items)", rcpt)
		}
	})
}

// Redis restarted from an AOF that kept a batch's entries and lost its record (written in its
// last second): Laravel had applied the batch, its answer never reached the gateway (held past
// the client's timeout), and the gateway died with newer messages of the session read behind it.
// The next start takes the entries over as its own pending ones; without a record it batched them
// all anew, the applied ones with the newer under a new key, and Laravel applied them twice. With
// the batches the journal noted (Options.Noted), the start sends the applied batch again first,
// as it was, under its key (Laravel answers from its stored answer), then the newer messages.
func TestAStartSendsABatchWhoseRecordRedisLostUnderTheKeyTheJournalNoted(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		srv, client := startLaravel(t, fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{
			{Kind: fakelaravel.FaultLatency, LatencyMS: 4000, Rate: 1, Endpoints: []string{laravel.EndpointMsgBatch}},
		}})
		var noted notedLog
		log := slog.New(slog.DiscardHandler)
		cfg := batch.Config{MessageInterval: time.Millisecond, PollInterval: 5 * time.Millisecond}
		ob1, err := outbox.New(ctx, b.Client(t), outbox.Config{Consumer: "gw-1", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		d1, err := batch.New(batch.Options{Outbox: ob1, Sender: client, Logger: log, Noting: noted.hook, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		conv := converse(1, 8)
		var msgs []event.Event
		for _, ev := range conv.bySession["chat-000"] {
			if ev.Kind == event.KindMessage {
				msgs = append(msgs, ev)
			}
		}
		for _, ev := range msgs[:3] {
			if err := d1.Deliver(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
		_ = d1.Poll(ctx) // read
		time.Sleep(5 * time.Millisecond)
		_ = d1.Poll(ctx) // sent: applied, the answer held past the client's timeout
		for _, ev := range msgs[3:] {
			if err := d1.Deliver(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		_ = d1.Poll(ctx) // the newer messages read, waiting behind the batch in flight
		if st, err := srv.Messages(ctx, "chat-000"); err != nil || len(st.Messages) != 3 {
			t.Fatalf("Laravel holds %d messages (%v); want the first batch's 3 applied", len(st.Messages), err)
		}
		if n := len(noted.all()); n != 1 {
			t.Fatalf("Noting told %d batches; want the one sent", n)
		}
		// The gateway dies (d1 is never polled again); Redis comes back without the record.
		if err := b.Client(t).Del(ctx, outbox.DefaultStream+":batches").Err(); err != nil {
			t.Fatal(err)
		}
		if err := srv.SetFaults(fakelaravel.Faults{}); err != nil {
			t.Fatal(err)
		}
		before := srv.Stats().Endpoints[laravel.EndpointMsgBatch]

		ob2, err := outbox.New(ctx, b.Client(t), outbox.Config{Consumer: "gw-1", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		d2, err := batch.New(batch.Options{Outbox: ob2, Sender: client, Logger: log, Noting: noted.hook,
			Noted: func(context.Context) ([]batch.Composition, error) { return noted.all(), nil }, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d2.Close(context.Background()) })
		waitDrained(t, d2)
		after := srv.Stats().Endpoints[laravel.EndpointMsgBatch]
		if after.Replayed-before.Replayed != 1 {
			t.Errorf("Laravel answered %d batches from its stored answers; want the one applied before the death", after.Replayed-before.Replayed)
		}
		appliedOnceInOrder(t, srv, "chat-000", payloads(msgs))
	})
}
