package batch_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/fakelaravel"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// memJournal stands for the message journal (gateway/storage) behind the delivery's hooks: it
// notes the batches about to be sent (Noting), marks applied items settled and forgets
// dead-lettered ones (Settled), tells what it knows of items taken in (Journaled) and gives back
// the noted batches whose items are all unsettled (Noted). Items are told apart as the journal
// does: session, kind and message id.
type memJournal struct {
	mu      sync.Mutex
	rows    map[string]*memRow
	batches map[string]batch.Composition
}

type memRow struct {
	applied bool
	batch   string
	sentAs  string
}

func newMemJournal() *memJournal {
	return &memJournal{rows: map[string]*memRow{}, batches: map[string]batch.Composition{}}
}

func itemOf(ev event.Event) string { return ev.SessionID + "/" + string(ev.Kind) + "/" + ev.Payload }

// record is the session layer's Record: a row per item taken from WhatsApp.
func (j *memJournal) record(evs ...event.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ev := range evs {
		if j.rows[itemOf(ev)] == nil {
			j.rows[itemOf(ev)] = &memRow{}
		}
	}
}

func (j *memJournal) noting(_ context.Context, comps []batch.Composition) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range comps {
		j.batches[c.Key] = c
		for _, ev := range c.Events {
			if r := j.rows[itemOf(ev)]; r != nil {
				r.batch, r.sentAs = c.Key, ev.ID
			}
		}
	}
	return nil
}

func (j *memJournal) settled(_ context.Context, evs []event.Event, fate batch.Settlement) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ev := range evs {
		if fate == batch.SettledDeadLettered {
			delete(j.rows, itemOf(ev))
		} else if r := j.rows[itemOf(ev)]; r != nil {
			r.applied = true
		}
	}
}

func (j *memJournal) journaled(_ context.Context, evs []event.Event) ([]batch.JournalState, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]batch.JournalState, len(evs))
	for i, ev := range evs {
		if r := j.rows[itemOf(ev)]; r != nil {
			out[i] = batch.JournalState{Applied: r.applied, Batch: r.batch}
			if !r.applied {
				out[i].SentAs = r.sentAs
			}
		}
	}
	return out, nil
}

func (j *memJournal) noted(context.Context) ([]batch.Composition, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []batch.Composition
	for key, c := range j.batches {
		if !slices.ContainsFunc(c.Events, func(ev event.Event) bool {
			r := j.rows[itemOf(ev)]
			return r == nil || r.applied || r.batch != key
		}) {
			out = append(out, c)
		}
	}
	return out, nil
}

// intakeDelivery is a delivery named consumer on rdb's outbox with j's hooks (none when j is nil),
// polled by hand unless started.
func intakeDelivery(t *testing.T, b *redistest.Backend, client batch.Sender, j *memJournal) *batch.Delivery {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(context.Background(), b.Client(t), outbox.Config{Consumer: "gw-1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	opts := batch.Options{Outbox: ob, Sender: client, Logger: log,
		Config: batch.Config{MessageInterval: time.Millisecond, PollInterval: 5 * time.Millisecond}}
	if j != nil {
		opts.Noting, opts.Settled, opts.Journaled, opts.Noted = j.noting, j.settled, j.journaled, j.noted
	}
	d, err := batch.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Redis on AOF restarted losing its last writes, and they were the settlement of the messages a
// gateway had just delivered: Laravel applied them, the gateway acknowledged and deleted their
// entries and removed the batch's record, and the journal marked their rows settled; the restart
// brings the entries back, two pending for the gateway (read before the lost writes) and one
// never read, without a record, and a customer writes once more. The next start takes the pending
// ones over and reads the others; the journal says Laravel applied the three, so each is
// acknowledged away (out of the stream: the outbox drains) and only the new message is sent, and
// applied once. Without the journal's answer the start batched the three anew with the new one,
// a composition under a new key, and Laravel applied them a second time (chaos fault kind
// redis-restart-while-gateway-down).
func TestEntriesOfMessagesLaravelAppliedThatARedisRestartBringsBackAreAcknowledgedAwayNotSentAgain(t *testing.T) {
	ctx := context.Background()
	srv, client := startLaravel(t, fakelaravel.Faults{})
	j := newMemJournal()
	s, b, rdb, d1, msgs := twoMessagesReadOnAOF(t, client, j)
	if err := d1.Deliver(ctx, msgs[2]); err != nil { // appended, not read
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		time.Sleep(5 * time.Millisecond)
		if err := d1.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := rdb.XLen(ctx, outbox.DefaultStream).Result(); n == 0 && len(applied(t, srv, "chat-000")) == 3 {
			break
		}
	}
	if got := applied(t, srv, "chat-000"); len(got) != 3 {
		t.Fatalf("Laravel applied %v before the restart; want the 3 messages", got)
	}
	// The gateway dies; Redis restarts from its AOF, without the settlement.
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.XLen(ctx, outbox.DefaultStream).Result(); err != nil || n != 3 {
		t.Fatalf("the outbox holds %d entries after the restart (%v); want the 3 settled ones back", n, err)
	}
	before := srv.Stats().Endpoints[laravel.EndpointMsgBatch]
	j.record(msgs[3])
	if err := d1.Deliver(ctx, msgs[3]); err != nil { // written while no gateway reads
		t.Fatal(err)
	}

	d2 := intakeDelivery(t, b, client, j)
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close(context.Background()) })
	m := waitDrained(t, d2)
	if m.AppliedDropped != 3 {
		t.Errorf("applied_entries_dropped %d, want the 3 entries of applied messages", m.AppliedDropped)
	}
	after := srv.Stats().Endpoints[laravel.EndpointMsgBatch]
	if items := after.Items - before.Items; items != 1 {
		t.Errorf("%d messages sent after the restart; want only the new one", items)
	}
	appliedOnceInOrder(t, srv, "chat-000", payloads(msgs[:4]))
}

// Redis on AOF restarted losing its last writes while a batch Laravel applied was in flight (its
// answer held past the client's timeout, then the gateway died): the restart keeps the entries of
// the batch's first two messages (appended and read before), and loses its third message's entry
// and the batch's record (written in the lost second). The next start takes the two over; the
// journal noted them in that batch, which nothing sends and Redis holds no record of, so the start
// re-forms the batch as it was sent, its third item appended again, and sends it under its key:
// Laravel answers from its stored answer and applies nothing twice. Before, the start could re-form
// a noted batch only when all its entries were taken over, and sent the two under a new key.
func TestABatchLaravelAppliedIsSentAgainUnderItsKeyWhenARedisRestartKeptOnlySomeOfItsEntries(t *testing.T) {
	ctx := context.Background()
	srv, client := startLaravel(t, fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{
		{Kind: fakelaravel.FaultLatency, LatencyMS: 4000, Rate: 1, Endpoints: []string{laravel.EndpointMsgBatch}},
	}})
	j := newMemJournal()
	s, b, rdb, d1, msgs := twoMessagesReadOnAOF(t, client, j)
	if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if err := d1.Deliver(ctx, msgs[2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	_ = d1.Poll(ctx) // read, noted, recorded and sent: applied, the answer held past the client's timeout
	if got := applied(t, srv, "chat-000"); len(got) != 3 {
		t.Fatalf("Laravel applied %v; want the batch of 3", got)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.XLen(ctx, outbox.DefaultStream).Result(); err != nil || n != 2 {
		t.Fatalf("the outbox holds %d entries after the restart (%v); want the first 2", n, err)
	}
	if n, err := rdb.HLen(ctx, outbox.DefaultStream+":batches").Result(); err != nil || n != 0 {
		t.Fatalf("%d batch records after the restart (%v); want the batch's lost", n, err)
	}
	if err := srv.SetFaults(fakelaravel.Faults{}); err != nil {
		t.Fatal(err)
	}
	before := srv.Stats().Endpoints[laravel.EndpointMsgBatch]

	d2 := intakeDelivery(t, b, client, j)
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close(context.Background()) })
	j.record(msgs[3])
	if err := d2.Deliver(ctx, msgs[3]); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, d2)
	after := srv.Stats().Endpoints[laravel.EndpointMsgBatch]
	if r := after.Replayed - before.Replayed; r != 1 {
		t.Errorf("Laravel answered %d batches from its stored answers; want the one applied before the restart", r)
	}
	appliedOnceInOrder(t, srv, "chat-000", payloads(msgs[:4]))
}

// twoMessagesReadOnAOF starts what both Redis-restart tests begin with: a redis-server on AOF
// (appendfsync always; s restarts it), a delivery d1 on it (consumer gw-1) with journal j, the
// messages of one chat of converse(1, 8) recorded in j, and the first two of them delivered and
// read by d1 (pending for gw-1, not yet sent). b is the server's backend, rdb a client of it.
func twoMessagesReadOnAOF(t *testing.T, client batch.Sender, j *memJournal) (s *redistest.Server, b *redistest.Backend, rdb *redis.Client, d1 *batch.Delivery, msgs []event.Event) {
	t.Helper()
	ctx := context.Background()
	s = redistest.StartServer(t, redistest.Options{AppendOnly: true})
	b = &redistest.Backend{Name: "redis-server", Addr: s.Addr, Real: s}
	rdb = b.Client(t)
	d1 = intakeDelivery(t, b, client, j)
	for _, ev := range converse(1, 8).bySession["chat-000"] {
		if ev.Kind == event.KindMessage {
			msgs = append(msgs, ev)
		}
	}
	j.record(msgs...)
	for _, ev := range msgs[:2] {
		if err := d1.Deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := d1.Poll(ctx); err != nil { // read: pending for gw-1
		t.Fatal(err)
	}
	return s, b, rdb, d1, msgs
}

// appliedOnceInOrder fails the test unless Laravel stores for session exactly the messages want,
// in that order, each applied by one request.
func appliedOnceInOrder(t *testing.T, srv *fakelaravel.Server, session string, want []string) {
	t.Helper()
	st, err := srv.Messages(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range st.Messages {
		got = append(got, m.MessageID)
		if m.Deliveries != 1 {
			t.Errorf("message %s applied by %d requests, want 1", m.MessageID, m.Deliveries)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Laravel stored %q, want %q in order", got, want)
	}
}

// payloads returns the payloads of evs in order (the fixtures' messages carry their ids as payloads).
func payloads(evs []event.Event) []string {
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.Payload)
	}
	return ids
}

// applied returns the ids of the messages Laravel stores for session.
func applied(t *testing.T, srv *fakelaravel.Server, session string) []string {
	t.Helper()
	st, err := srv.Messages(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range st.Messages {
		ids = append(ids, m.MessageID)
	}
	return ids
}
