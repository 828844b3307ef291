package batch

import (
	"context"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// A customer's message whose append Redis's data loss overtook while it waited gives way to the
// message journal's replay (outbox.ErrOvertakenByLoss): Deliver accepts it (nil), refuses
// nothing, and counts it in AppendsOvertakenByLoss (wagate_outbox_appends_overtaken_by_loss_total),
// which had no figure before: the only trace was an INFO line. A message that waited with no
// loss is appended and counts in neither.
func TestAnAppendThatGaveWayToTheJournalsReplayIsAcceptedAndCounted(t *testing.T) {
	for _, tc := range []struct {
		name          string
		loss          bool
		wantOvertaken int64
		wantEntries   int // entries of the message in the stream after its append
	}{
		{"Redis lost its data while the message waited for room: accepted, given way, counted", true, 1, 0},
		{"no loss while it waited: appended once room came, not counted", false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				const stream, marker = "test:outbox", "test:outbox:generation"
				f := newFixture(t, b, Config{}, outbox.Config{Stream: stream, MarkerKey: marker, Max: 2,
					AppendTimeout: time.Minute, RoomPoll: 10 * time.Millisecond, Journaled: true})
				f.deliver(t, ev("s1", 1, event.KindStatus, "connected"), ev("s2", 1, event.KindStatus, "connected"))
				msg := message("s3", 1)
				done := make(chan error, 1)
				go func() { done <- f.d.Deliver(ctx, msg) }()
				for deadline := time.Now().Add(30 * time.Second); f.ob.Counters().AppendWaited != 1; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the message's append did not wait for room")
					}
				}
				rdb := b.Client(t)
				if tc.loss {
					// Redis loses the marker and the keeper notices; the stream, still full, keeps
					// the message waiting until the loss takes it too.
					if err := rdb.Del(ctx, marker).Err(); err != nil {
						t.Fatal(err)
					}
					if lost, err := f.ob.CheckGeneration(ctx); err != nil || !lost {
						t.Fatalf("CheckGeneration = %v, %v; want the loss noticed", lost, err)
					}
					if err := rdb.Del(ctx, stream).Err(); err != nil {
						t.Fatal(err)
					}
				} else {
					got, err := f.ob.ReadNew(ctx, 2)
					if err != nil || len(got) != 2 {
						t.Fatalf("read %d, %v", len(got), err)
					}
					if err := f.ob.Ack(ctx, got[0].ID, got[1].ID); err != nil {
						t.Fatal(err)
					}
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("Deliver = %v, want nil (accepted)", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the waiting append did not end")
				}
				m := f.d.Snapshot(ctx)
				if m.AppendsOvertakenByLoss != tc.wantOvertaken || m.EnqueueFailed != 0 {
					t.Errorf("appends overtaken by loss %d, enqueue failed %d; want %d, 0", m.AppendsOvertakenByLoss, m.EnqueueFailed, tc.wantOvertaken)
				}
				evs, err := f.ob.MessagingEvents(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != tc.wantEntries {
					t.Errorf("the stream holds %d entries of the message, want %d", len(evs), tc.wantEntries)
				}
			})
		})
	}
}
