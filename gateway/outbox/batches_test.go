package outbox

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

// A batch record says which entries a batch carried, in order, until the batch's acknowledgement
// removes it with the entries; a record left behind by a removal that failed goes after a day;
// the consumer's pending count is what it read and did not acknowledge.
func TestABatchRecordLivesUntilItsBatchIsAcknowledged(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		for v := int64(1); v <= 3; v++ {
			if _, err := o.Append(ctx, testEvent("s1", v, event.KindStatus, "connected")); err != nil {
				t.Fatal(err)
			}
		}
		read, err := o.ReadNew(ctx, 10)
		if err != nil || len(read) != 3 {
			t.Fatalf("read %d, %v", len(read), err)
		}
		if n, err := o.OwnPending(ctx); err != nil || n != 3 {
			t.Fatalf("own pending %d, %v; want 3", n, err)
		}
		ids := []string{read[2].ID, read[0].ID}
		if err := o.RecordBatches(ctx, BatchRecord{Key: "k1", Kind: event.KindStatus, IDs: ids}, BatchRecord{Key: "k2", Kind: event.KindStatus, IDs: []string{read[1].ID}}); err != nil {
			t.Fatal(err)
		}
		recs, err := o.RecordedBatches(ctx)
		if err != nil || len(recs) != 2 {
			t.Fatalf("records %+v, %v; want 2", recs, err)
		}
		i := slices.IndexFunc(recs, func(r BatchRecord) bool { return r.Key == "k1" })
		if i < 0 || !slices.Equal(recs[i].IDs, ids) || recs[i].Kind != event.KindStatus {
			t.Fatalf("record k1 %+v; want ids %v in that order", recs, ids)
		}

		if err := o.AckBatch(ctx, "k1", ids...); err != nil {
			t.Fatal(err)
		}
		recs, _ = o.RecordedBatches(ctx)
		if len(recs) != 1 || recs[0].Key != "k2" {
			t.Fatalf("records after k1's acknowledgement %+v; want only k2", recs)
		}
		if n, _ := o.OwnPending(ctx); n != 1 {
			t.Fatalf("own pending %d after acknowledging 2 of 3", n)
		}

		// A record left behind a day ago is dropped when the records are read.
		old, _ := json.Marshal(BatchRecord{Kind: event.KindStatus, IDs: []string{"1-1"}, At: time.Now().Add(-25 * time.Hour)})
		if err := b.Client(t).HSet(ctx, DefaultStream+":batches", "stale", string(old)).Err(); err != nil {
			t.Fatal(err)
		}
		recs, _ = o.RecordedBatches(ctx)
		if len(recs) != 1 || recs[0].Key != "k2" {
			t.Fatalf("records %+v; want only k2 (the day-old one dropped)", recs)
		}
		if n, _ := b.Client(t).HLen(ctx, DefaultStream+":batches").Result(); n != 1 {
			t.Fatalf("%d records in Redis; want 1", n)
		}
		if err := o.ForgetBatches(ctx, "k2"); err != nil {
			t.Fatal(err)
		}
		if recs, _ := o.RecordedBatches(ctx); len(recs) != 0 {
			t.Fatalf("records %+v after forgetting k2", recs)
		}
	})
}

// Present finds the entries still in the stream by id, whoever read them; an entry a batch's
// acknowledgement deleted is absent. AckGone takes a deleted entry off this consumer's pending
// list without counting it as delivered here.
func TestPresentFindsOnlyTheEntriesStillInTheStream(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		var ids []string
		for v := int64(1); v <= 3; v++ {
			id, err := o.Append(ctx, testEvent("s1", v, event.KindStatus, "connected"))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if _, err := o.ReadNew(ctx, 10); err != nil {
			t.Fatal(err)
		}
		if err := o.AckBatch(ctx, "k1", ids[1]); err != nil {
			t.Fatal(err)
		}
		got, err := o.Present(ctx, ids[0], ids[1], ids[2], "9-9")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[ids[0]].Event.Version != 1 || got[ids[2]].Event.Version != 3 {
			t.Fatalf("present %+v; want entries 1 and 3 only", got)
		}
		if _, ok := got[ids[1]]; ok {
			t.Fatalf("the acknowledged entry %s is present", ids[1])
		}
		acked := o.Counters().Acked
		if err := o.AckGone(ctx, ids[1], ids[0]); err != nil {
			t.Fatal(err)
		}
		if n, _ := o.OwnPending(ctx); n != 1 {
			t.Fatalf("own pending %d; want 1 (entry 3)", n)
		}
		if c := o.Counters().Acked; c != acked {
			t.Fatalf("acked counter %d -> %d; AckGone counts nothing delivered", acked, c)
		}
	})
}
