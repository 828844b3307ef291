package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
)

// After Redis lost its data with the batch records, the replay first sends again, whole and under
// its key, every batch the journal noted (the delivery's Noting hook) whose items it still all
// holds, then appends the other rows one by one, leaving out the rows of the batches sent again;
// the generation waits for those batches to be settled too. A noted batch with an item the
// delivery holds, the outbox still holds or the delivery settled is not sent again as a batch (its
// other rows are appended), nor is one broken by a settled item, nor any batch outside resend (cluster
// mode: the rows are appended one by one, as before).
func TestAReplaySendsTheNotedBatchesAgainUnderTheirKeysThenAppendsTheOtherRows(t *testing.T) {
	a1, a2, a3, a4 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("a", 3), keeperMessage("a", 4)
	b1, b2 := keeperMessage("b", 1), keeperMessage("b", 2)
	c1, c2 := keeperMessage("c", 1), keeperMessage("c", 2)
	d1, d2 := keeperMessage("d", 1), keeperMessage("d", 2)
	e1 := keeperMessage("e", 1)
	for _, tc := range []struct {
		name       string
		noResend   bool
		wantResent []string // keys
		wantAppend []string // event ids
	}{
		{name: "resend", wantResent: []string{"k-a", "k-b"}, wantAppend: []string{a3.ID, a4.ID, c1.ID, d2.ID}},
		{name: "cluster mode: no resend", noResend: true, wantAppend: []string{a1.ID, a2.ID, a3.ID, a4.ID, b1.ID, b2.ID, c1.ID, d2.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newKeeperRig(t, []event.Event{e1}, 0) // the delivery holds e1
			r.k.inOutbox = func(context.Context) ([]event.Event, error) { return []event.Event{c2}, nil }
			var resent []string
			var resentEvents []string
			if !tc.noResend {
				r.k.resend = func(_ context.Context, c batch.Composition) (bool, error) {
					resent = append(resent, c.Key)
					for _, ev := range c.Events {
						resentEvents = append(resentEvents, ev.ID)
					}
					return true, nil
				}
			}
			for _, ev := range []event.Event{a1, a2, a3, a4, b1, b2, c1, c2, d1, d2, e1} {
				if err := r.k.journal.Record(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			// Noted by the delivery before their first sends: a's first two, b's two (in the
			// order sent: b2 first), c's (c2 is still in the stream), d's (d1 settled since by a
			// redelivery) and e's (held by the delivery).
			if err := r.k.note(ctx, []batch.Composition{
				{Key: "k-a", Kind: event.KindMessage, Events: []event.Event{a1, a2}},
				{Key: "k-b", Kind: event.KindMessage, Events: []event.Event{b2, b1}},
				{Key: "k-c", Kind: event.KindMessage, Events: []event.Event{c1, c2}},
				{Key: "k-d", Kind: event.KindMessage, Events: []event.Event{d1, d2}},
				{Key: "k-e", Kind: event.KindMessage, Events: []event.Event{e1}},
			}); err != nil {
				t.Fatal(err)
			}
			again := d1
			again.ID, again.Version = "d-message-99", 99
			r.k.settle(ctx, []event.Event{again})

			done := make(chan struct{})
			r.k.replayInBackground(nil, time.Time{}, func(context.Context) { close(done) })
			r.k.settle(ctx, []event.Event{e1})
			if !tc.noResend {
				select {
				case <-done:
					t.Fatal("the generation was recorded before the batches sent again were settled")
				case <-time.After(1500 * time.Millisecond):
				}
				r.k.settle(ctx, []event.Event{a1, a2, b1, b2})
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the replay did not finish")
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if !slices.Equal(resent, tc.wantResent) {
				t.Errorf("sent again %q, want %q", resent, tc.wantResent)
			}
			if want := map[bool][]string{false: {a1.ID, a2.ID, b2.ID, b1.ID}, true: nil}[tc.noResend]; !slices.Equal(resentEvents, want) {
				t.Errorf("the batches sent again carried %q, want %q (each as it was sent)", resentEvents, want)
			}
			if !slices.Equal(r.appended, tc.wantAppend) {
				t.Errorf("appended %q, want %q", r.appended, tc.wantAppend)
			}
		})
	}
}
