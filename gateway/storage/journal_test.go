package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// journalDialects runs spec on a fresh journal of each dialect: SQLite always, PostgreSQL when it
// is installed (a server started for the test on a free port).
func journalDialects(t *testing.T, spec func(t *testing.T, j *Journal)) {
	eachDialect(t, func(t *testing.T, db *DB) { spec(t, NewJournal(db)) })
}

// journalMessage is the event the session layer builds for a customer's message.
func journalMessage(session, id string, seq int64) event.Event {
	return event.Event{
		ID: fmt.Sprintf("%s-message-%d", session, seq), SessionID: session, Kind: event.KindMessage, Payload: id,
		Time: time.Unix(1_800_000_000, int64(seq)).UTC(), Version: seq,
		Message: &laravel.MessageItem{SessionID: session, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
			Sender: "5511977770001@s.whatsapp.net", Type: laravel.MessageText, Text: "hola " + id,
			Timestamp: time.Unix(1_800_000_000, 0).UTC(), Sequence: seq},
	}
}

// journalReceipt is the event the session layer builds for one message of a receipt.
func journalReceipt(session, id string, status laravel.ReceiptStatus, seq int64) event.Event {
	return event.Event{
		ID: fmt.Sprintf("%s-receipt-%d", session, seq), SessionID: session, Kind: event.KindReceipt, Payload: id,
		Time: time.Unix(1_800_000_001, int64(seq)).UTC(), Version: seq,
		Receipt: &laravel.ReceiptItem{SessionID: session, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
			Sender: "5511977770001@s.whatsapp.net", Status: status, Timestamp: time.Unix(1_800_000_001, 0).UTC(), Sequence: seq},
	}
}

// replayed returns what Replay gives, each event as its JSON (what the outbox would be handed).
func replayed(t *testing.T, j *Journal, keep func(string) bool) []string {
	t.Helper()
	var out []string
	err := j.Replay(context.Background(), keep, func(_ context.Context, ev event.Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		out = append(out, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonOf(t *testing.T, evs ...event.Event) []string {
	t.Helper()
	out := make([]string, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

func TestTheJournalGivesBackEveryItemUnsettledSessionBySessionInSequenceOrder(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		a1, a2, a3 := journalMessage("a", "A1", 5_000_001), journalReceipt("a", "A0", laravel.ReceiptRead, 5_000_002), journalMessage("a", "A3", 5_000_003)
		b1, b2 := journalMessage("b", "B1", 7_000_001), journalReceipt("b", "B0", laravel.ReceiptDelivered, 7_000_002)
		// Recorded interleaved and not in sequence order (sessions append concurrently).
		for _, ev := range []event.Event{b2, a3, a1, b1, a2} {
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := replayed(t, j, nil), jsonOf(t, a1, a2, a3, b1, b2); !slices.Equal(got, want) {
			t.Fatalf("replay:\n got %q\nwant %q", got, want)
		}
		if got, want := replayed(t, j, func(s string) bool { return s == "b" }), jsonOf(t, b1, b2); !slices.Equal(got, want) {
			t.Fatalf("replay of the sessions kept:\n got %q\nwant %q", got, want)
		}
	})
}

func TestTheJournalHoldsAnItemOnceAndAnyEventOfItSettlesIt(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		first := journalMessage("a", "A1", 5_000_001)
		// WhatsApp delivers the message again (the gateway refused it): a new event of one item.
		again := journalMessage("a", "A1", 5_000_002)
		read := journalReceipt("a", "A0", laravel.ReceiptRead, 5_000_003)
		delivered := journalReceipt("a", "A0", laravel.ReceiptDelivered, 5_000_004)
		for _, ev := range []event.Event{first, again, read, delivered} {
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := replayed(t, j, nil), jsonOf(t, first, read, delivered); !slices.Equal(got, want) {
			t.Fatalf("a redelivered item must keep its first row:\n got %q\nwant %q", got, want)
		}
		status := event.Event{ID: "a-status-1", SessionID: "a", Kind: event.KindStatus, Payload: "connected", Version: 1}
		n, err := j.Settle(ctx, []event.Event{again, read, status})
		if err != nil || n != 2 {
			t.Fatalf("settled %d rows (%v); want the message's (by its redelivered event) and the read receipt's", n, err)
		}
		if got, want := replayed(t, j, nil), jsonOf(t, delivered); !slices.Equal(got, want) {
			t.Fatalf("after the settlement:\n got %q\nwant %q", got, want)
		}
		if err := j.Record(ctx, status); err == nil {
			t.Fatal("a status event was journalled; only messages and receipts are")
		}
	})
}

func TestTheJournalSettlesAndReplaysMoreThanAPageOrABatchAtOnce(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		var all []event.Event
		for s := range 3 {
			for i := range 700 {
				ev := journalMessage(fmt.Sprintf("s%d", s), fmt.Sprintf("M%d-%d", s, i), int64(1_000_000+i))
				all = append(all, ev)
				if err := j.Record(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got, want := replayed(t, j, nil), jsonOf(t, all...); !slices.Equal(got, want) {
			t.Fatalf("replay of %d rows gave %d, or out of order", len(want), len(got))
		}
		if n, err := j.Settle(ctx, all[:1500]); err != nil || n != 1500 {
			t.Fatalf("settled %d (%v), want 1500", n, err)
		}
		if n, err := j.Len(ctx); err != nil || n != 600 {
			t.Fatalf("%d rows left (%v), want 600", n, err)
		}
		if n, err := j.Holding(ctx, all[1000:]); err != nil || n != 600 {
			t.Fatalf("holding %d of the last 1100 items (%v), want the 600 not settled", n, err)
		}
	})
}

func TestTheJournalPrunesOnlyRowsOlderThanTheRetention(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		now := time.Unix(1_800_000_000, 0)
		j.now = func() time.Time { return now.Add(-8 * 24 * time.Hour) }
		old := journalMessage("a", "OLD", 1_000_001)
		if err := j.Record(ctx, old); err != nil {
			t.Fatal(err)
		}
		j.now = func() time.Time { return now.Add(-time.Hour) }
		fresh := journalMessage("a", "NEW", 1_000_002)
		if err := j.Record(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		n, err := j.Prune(ctx, now.Add(-DefaultJournalRetention))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want the row of 8 days ago", n, err)
		}
		if got, want := replayed(t, j, nil), jsonOf(t, fresh); !slices.Equal(got, want) {
			t.Fatalf("after pruning:\n got %q\nwant %q", got, want)
		}
	})
}

func TestTheJournalRefusesWhenItsStoreIsGone(t *testing.T) {
	db, err := Open(context.Background(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(db)
	_ = db.Close()
	if err := j.Record(context.Background(), journalMessage("a", "A1", 1)); err == nil {
		t.Fatal("Record on a closed store returned nil: the item would be taken without a journal row")
	}
}

// BenchmarkJournalRecord is the cost the journal adds to each customer's message or receipt the
// gateway takes in batch mode: one INSERT into the SQLite store (WAL, synchronous=NORMAL).
func BenchmarkJournalRecord(b *testing.B) {
	j := NewJournal(openTemp(b))
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := j.Record(ctx, journalMessage(fmt.Sprintf("s%d", i%100), fmt.Sprintf("M%d", i), int64(1_000_000+i))); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkRecordedBatches times op on batches of 50 messages recorded in a journal of a
// temporary SQLite store, a new batch each iteration (numbered on across the run and spread over
// 100 sessions: batches as the delivery takes them in). Recording them is not timed.
func benchmarkRecordedBatches(b *testing.B, op func(ctx context.Context, j *Journal, batch []event.Event)) {
	j := NewJournal(openTemp(b))
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		batch := make([]event.Event, 50)
		for k := range batch {
			i++
			batch[k] = journalMessage(fmt.Sprintf("s%d", i%100), fmt.Sprintf("M%d", i), int64(1_000_000+i))
			if err := j.Record(ctx, batch[k]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		op(ctx, j, batch)
	}
}

// BenchmarkJournalSettle is the cost of settling one batch of 50 items Laravel applied: one
// UPDATE marking their rows settled (compare BenchmarkJournalForget, the DELETE).
func BenchmarkJournalSettle(b *testing.B) {
	benchmarkRecordedBatches(b, func(ctx context.Context, j *Journal, batch []event.Event) {
		if n, err := j.Settle(ctx, batch); err != nil || n != 50 {
			b.Fatalf("settled %d, %v", n, err)
		}
	})
}

// Counts says what the journal did (a redelivery of an item it holds is no new row; a settlement
// counts the rows it marked, a prune the rows it deleted) and Held what it holds: how many rows and since when the
// oldest waits. These are what the journal's metrics export.
func TestTheJournalCountsWhatItRecordedSettledAndPrunedAndWhatItHolds(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		start := time.Unix(1_800_000_000, 0)
		at := start
		j.now = func() time.Time { return at }
		if h, err := j.Held(ctx); err != nil || h != (JournalHeld{}) {
			t.Fatalf("an empty journal holds %+v (err %v), want nothing", h, err)
		}
		m1, m2, r1 := journalMessage("a", "A1", 1), journalMessage("a", "A2", 2), journalReceipt("b", "B0", laravel.ReceiptRead, 1)
		for _, ev := range []event.Event{m1, m2, r1} {
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
			at = at.Add(time.Minute)
		}
		again := m1
		again.ID, again.Version = "a-message-9", 9 // WhatsApp's redelivery: the journal keeps the first row
		if err := j.Record(ctx, again); err != nil {
			t.Fatal(err)
		}
		if h, err := j.Held(ctx); err != nil || h.Rows != 3 || !h.Oldest.Equal(start) {
			t.Fatalf("holds %+v (err %v), want 3 rows, the oldest recorded at %v", h, err, start)
		}
		if _, err := j.Settle(ctx, []event.Event{again, journalMessage("c", "C1", 1)}); err != nil {
			t.Fatal(err)
		}
		if h, err := j.Held(ctx); err != nil || h.Rows != 2 || !h.Oldest.Equal(start.Add(time.Minute)) {
			t.Fatalf("after settling A1 holds %+v (err %v), want 2 rows, the oldest A2's", h, err)
		}
		if _, err := j.Prune(ctx, start.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, want := j.Counts(), (JournalCounts{Recorded: 3, Settled: 1, Pruned: 1}); got != want {
			t.Fatalf("counts %+v, want %+v", got, want)
		}
		if h, err := j.Held(ctx); err != nil || h.Rows != 1 || !h.Oldest.Equal(start.Add(2*time.Minute)) {
			t.Fatalf("after pruning holds %+v (err %v), want the receipt's row", h, err)
		}
	})
}
