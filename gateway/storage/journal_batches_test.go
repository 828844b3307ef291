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

// batchesOf returns what Batches gives, each batch as its key and its events' JSON in order.
func batchesOf(t *testing.T, j *Journal, before time.Time, keep func(string) bool) map[string][]string {
	t.Helper()
	bs, err := j.Batches(context.Background(), before, keep)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, b := range bs {
		out[b.Key] = jsonOf(t, b.Events...)
	}
	return out
}

// The delivery notes each batch of messages or receipts on its items' rows before its first
// POST. After Redis lost the batch records, the journal gives back every batch whose items it
// still all holds, with its key and its items in the order sent and as sent (a redelivered item's
// row is rewritten with the event the batch carried), so the body is rebuilt byte for byte; a
// later batch of an item replaces the earlier one; a batch with a row gone, left out by the
// replica's shards or recorded after the loss is not given back (its rows are replayed alone).
func TestTheJournalGivesBackTheBatchesItsItemsWereSentInWholeAndAsSent(t *testing.T) {
	journalDialects(t, func(t *testing.T, j *Journal) {
		ctx := context.Background()
		t0 := time.Unix(1_800_000_000, 0)
		at := t0
		j.now = func() time.Time { return at }
		a1, a2, a3 := journalMessage("a", "A1", 11), journalMessage("a", "A2", 12), journalReceipt("a", "A0", laravel.ReceiptRead, 13)
		b1, b2 := journalMessage("b", "B1", 21), journalMessage("b", "B2", 22)
		c1 := journalMessage("c", "C1", 31)
		for _, ev := range []event.Event{a1, a2, a3, b1, b2, c1} {
			if err := j.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		at = t0.Add(time.Minute)
		late := journalMessage("c", "C2", 32)
		if err := j.Record(ctx, late); err != nil {
			t.Fatal(err)
		}
		// A2 was refused once and WhatsApp delivered it again: the batch carries the redelivery.
		a2again := a2
		a2again.ID, a2again.Version, a2again.Message = "a-message-99", 99, new(*a2.Message)
		a2again.Message.Sequence = 99
		notOurs := journalMessage("z", "Z1", 1) // no row: nothing is created for it

		if err := j.NoteBatches(ctx,
			JournalBatch{Key: "k-split", Events: []event.Event{b2, b1}},
			JournalBatch{Key: "k-a", Events: []event.Event{a1, a2again}},
			JournalBatch{Key: "k-r", Events: []event.Event{a3}},
			JournalBatch{Key: "k-z", Events: []event.Event{notOurs}},
			JournalBatch{Key: "k-c", Events: []event.Event{c1, late}},
		); err != nil {
			t.Fatal(err)
		}
		// k-split was split: its halves were noted under their own keys.
		if err := j.NoteBatches(ctx, JournalBatch{Key: "k-b2", Events: []event.Event{b2}}, JournalBatch{Key: "k-b1", Events: []event.Event{b1}}); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"k-a": jsonOf(t, a1, a2again), "k-r": jsonOf(t, a3), "k-b1": jsonOf(t, b1), "k-b2": jsonOf(t, b2), "k-c": jsonOf(t, c1, late),
		}
		if got := batchesOf(t, j, time.Time{}, nil); !mapsEqual(got, want) {
			t.Fatalf("batches:\n got %q\nwant %q", got, want)
		}
		bs, err := j.Batches(ctx, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, b := range bs {
			order = append(order, b.Key)
		}
		if want := []string{"k-a", "k-r", "k-b1", "k-b2", "k-c"}; !slices.Equal(order, want) {
			t.Fatalf("batches in order %q, want %q (by their first item's session and sequence)", order, want)
		}
		// The row is rewritten with the event sent: a replay appends what Laravel was sent.
		if got := replayed(t, j, func(s string) bool { return s == "a" }); !slices.Equal(got, jsonOf(t, a1, a2again, a3)) {
			t.Fatalf("replay of a after the notes:\n got %q", got)
		}

		if got := batchesOf(t, j, t0.Add(time.Second), nil); got["k-c"] != nil {
			t.Fatalf("k-c's second row was recorded after the bound, yet the batch was given back: %q", got["k-c"])
		}
		if got := batchesOf(t, j, time.Time{}, func(s string) bool { return s != "b" }); got["k-b1"] != nil || got["k-a"] == nil {
			t.Fatalf("batches of the sessions kept: %q", got)
		}
		// A1 settled by another event of it (a redelivery Laravel applied): k-a is no longer whole.
		if _, err := j.Settle(ctx, []event.Event{a1}); err != nil {
			t.Fatal(err)
		}
		if got := batchesOf(t, j, time.Time{}, nil); got["k-a"] != nil || got["k-r"] == nil {
			t.Fatalf("after A1 settled: %q; want k-a gone (its rows replayed alone), k-r kept", got)
		}
		if err := j.NoteBatches(ctx, JournalBatch{Key: "k-status", Events: []event.Event{{ID: "s", SessionID: "a", Kind: event.KindStatus}}}); err == nil {
			t.Fatal("a status batch was noted; only messages and receipts are journalled")
		}
	})
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// A store whose journal was created before batches were noted (and applied rows kept settled)
// gains the columns on open and keeps its rows, which are noted and settled from then on.
func TestAJournalFromBeforeBatchesWereNotedGainsTheColumnsAndKeepsItsRows(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	old := journalMessage("a", "OLD", 1)
	for _, stmt := range []string{
		`DROP TABLE wagate_journal`,
		`CREATE TABLE wagate_journal (item_key TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq BIGINT NOT NULL,
			recorded_at BIGINT NOT NULL, event TEXT NOT NULL)`,
	} {
		if _, err := db.SQL.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := NewJournal(db).Record(ctx, old); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	db, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("opening a store from before the batch columns: %v", err)
	}
	defer db.Close()
	j := NewJournal(db)
	if got := replayed(t, j, nil); !slices.Equal(got, jsonOf(t, old)) {
		t.Fatalf("rows after the migration: %q", got)
	}
	if err := j.NoteBatches(ctx, JournalBatch{Key: "k", Events: []event.Event{old}}); err != nil {
		t.Fatal(err)
	}
	if got := batchesOf(t, j, time.Time{}, nil); !slices.Equal(got["k"], jsonOf(t, old)) {
		t.Fatalf("batches after the migration: %q", got)
	}
	if _, err := j.Settle(ctx, []event.Event{old}); err != nil {
		t.Fatal(err)
	}
	if st, err := j.States(ctx, []event.Event{old}); err != nil || !st[0].Applied || st[0].Batch != "k" {
		t.Fatalf("state after the migration and a settlement: %+v, %v; want applied in k", st, err)
	}
}

// BenchmarkJournalNoteBatch is the cost the journal adds to each batch of 50 messages before its
// first POST: one UPDATE of its rows (key, position, length and the event as sent) in the SQLite
// store. Compare BenchmarkJournalSettle (the DELETE when it is settled).
func BenchmarkJournalNoteBatch(b *testing.B) {
	n := 0
	benchmarkRecordedBatches(b, func(ctx context.Context, j *Journal, batch []event.Event) {
		n++
		if err := j.NoteBatches(ctx, JournalBatch{Key: fmt.Sprintf("k%d", n), Events: batch}); err != nil {
			b.Fatal(err)
		}
	})
}
