package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// An item Laravel applied keeps its row, settled, until the settled retention ends: States tells
// the delivery it was applied (so an entry of it that Redis brings back after losing its
// acknowledgement is acknowledged away, not sent again under a new key), a redelivery by WhatsApp
// does not make it unsettled again, and neither the replay, the noted batches, Len nor Holding
// count it. A dead-lettered item's row is deleted (Forget). An unsettled row noted in a batch
// tells the batch's key and the event it was sent as.
func TestAnAppliedItemsRowStaysSettledAndTellsItWasAppliedUntilPrunedSettled(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		t0 := time.Unix(1_800_000_000, 0)
		at := t0
		j.now = func() time.Time { return at }
		m1, m2, r1 := journalMessage("a", "A1", 1), journalMessage("a", "A2", 2), journalReceipt("a", "A0", laravel.ReceiptRead, 3)
		bad := journalMessage("b", "B1", 1)
		for _, ev := range []event.Event{m1, m2, r1, bad} {
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.NoteBatches(ctx, JournalBatch{Key: "k-a", Events: []event.Event{m1, m2}}); err != nil {
			t.Fatal(err)
		}
		// Laravel applied M1, as WhatsApp's redelivery of it (another event of the item).
		m1again := m1
		m1again.ID, m1again.Version = "a-message-9", 9
		at = t0.Add(time.Minute)
		if n, err := j.Settle(ctx, []event.Event{m1again}); err != nil || n != 1 {
			t.Fatalf("settled %d (%v), want M1's row", n, err)
		}
		if n, err := j.Settle(ctx, []event.Event{m1}); err != nil || n != 0 {
			t.Fatalf("settling M1 again marked %d (%v), want none: it keeps its first settlement", n, err)
		}
		if n, err := j.Forget(ctx, []event.Event{bad}); err != nil || n != 1 {
			t.Fatalf("forgot %d (%v), want the dead-lettered B1's row", n, err)
		}
		if err := j.Record(ctx, m1again); err != nil { // WhatsApp delivers it once more
			t.Fatal(err)
		}
		status := event.Event{ID: "a-status-1", SessionID: "a", Kind: event.KindStatus, Payload: "connected", Version: 1}
		unknown := journalMessage("c", "C1", 1)
		st, err := j.States(ctx, []event.Event{m1again, m2, r1, bad, unknown, status})
		if err != nil {
			t.Fatal(err)
		}
		want := []ItemState{
			{Known: true, Applied: true, Batch: "k-a"},
			{Known: true, Batch: "k-a", SentAs: m2.ID},
			{Known: true},
			{}, {}, {},
		}
		if !slices.Equal(st, want) {
			t.Fatalf("states:\n got %+v\nwant %+v", st, want)
		}
		if got, want := replayed(t, j, nil), jsonOf(t, m2, r1); !slices.Equal(got, want) {
			t.Fatalf("replay:\n got %q\nwant %q (the applied item is not appended again)", got, want)
		}
		if got := batchesOf(t, j, time.Time{}, nil); len(got) != 0 {
			t.Fatalf("batches %q; want none: k-a has an applied item, its other row is replayed alone", got)
		}
		if n, err := j.Len(ctx); err != nil || n != 2 {
			t.Fatalf("Len %d (%v), want the 2 unsettled rows", n, err)
		}
		if n, err := j.Holding(ctx, []event.Event{m1, m2}); err != nil || n != 1 {
			t.Fatalf("holding %d of M1, M2 (%v), want 1: M1 is settled", n, err)
		}
		if h, err := j.Held(ctx); err != nil || h.Rows != 2 || h.Settled != 1 || !h.Oldest.Equal(t0) {
			t.Fatalf("held %+v (%v), want 2 unsettled rows since %v and 1 settled", h, err, t0)
		}
		// Pruning unsettled rows leaves settled ones to PruneSettled, and the reverse.
		if n, err := j.Prune(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("pruned %d unsettled rows (%v), want M2's and the receipt's", n, err)
		}
		if n, err := j.PruneSettled(ctx, t0.Add(time.Minute)); err != nil || n != 0 {
			t.Fatalf("pruned %d settled rows settled before their settlement (%v), want none", n, err)
		}
		if st, err := j.States(ctx, []event.Event{m1}); err != nil || !st[0].Applied {
			t.Fatalf("M1 %+v (%v) after the prunes; want still applied", st, err)
		}
		if n, err := j.PruneSettled(ctx, t0.Add(time.Minute+time.Millisecond)); err != nil || n != 1 {
			t.Fatalf("pruned %d settled rows (%v), want M1's", n, err)
		}
		if st, err := j.States(ctx, []event.Event{m1}); err != nil || st[0].Known {
			t.Fatalf("M1 %+v (%v) after its settled retention; want unknown", st, err)
		}
		if got, want := j.Counts(), (JournalCounts{Recorded: 4, Settled: 2, Pruned: 2, SettledPruned: 1}); got != want {
			t.Fatalf("counts %+v, want %+v", got, want)
		}
	})
}

// States answers for more items than one statement takes, in the order asked.
func TestTheJournalTellsTheStatesOfMoreItemsThanAStatementTakes(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		var all []event.Event
		for i := range 1200 {
			ev := journalMessage("s", fmt.Sprintf("M%d", i), int64(1_000_000+i))
			all = append(all, ev)
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := j.Settle(ctx, all[600:]); err != nil {
			t.Fatal(err)
		}
		st, err := j.States(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range st {
			if !s.Known || s.Applied != (i >= 600) {
				t.Fatalf("item %d: %+v; want known, applied only from 600 on", i, s)
			}
		}
	})
}

// BenchmarkJournalForget is the DELETE of a batch of 50 rows (a dead-lettered batch's, and what
// settling a batch cost before applied rows were kept): compare BenchmarkJournalSettle, the
// UPDATE that marks them settled.
func BenchmarkJournalForget(b *testing.B) {
	benchmarkRecordedBatches(b, func(ctx context.Context, j *Journal, batch []event.Event) {
		if n, err := j.Forget(ctx, batch); err != nil || n != 50 {
			b.Fatalf("forgot %d, %v", n, err)
		}
	})
}

// BenchmarkJournalStates is what the delivery's intake asks the journal for each page of
// messages it reads: the states of 50 items (one SELECT).
func BenchmarkJournalStates(b *testing.B) {
	j := NewJournal(openTemp(b))
	ctx := context.Background()
	batch := make([]event.Event, 50)
	for k := range batch {
		batch[k] = journalMessage(fmt.Sprintf("s%d", k%10), fmt.Sprintf("M%d", k), int64(1_000_000+k))
		if err := j.Record(ctx, batch[k]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.States(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
