package batch

import (
	"context"
	"errors"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// Settle returns only once the flusher step in progress has settled its sends (a cluster handover
// releases its shard after it, so no batch of the shard is still being sent by the old holder),
// gives up with its context's error while the send hangs, and returns at once when no step runs.
func TestSettleWaitsForTheSendsOfTheStepInProgress(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, Config{BatchSize: 50}, outbox.Config{})
		if err := f.d.Settle(ctx); err != nil {
			t.Fatalf("Settle with no step in progress: %v", err)
		}
		entered, release := make(chan struct{}, 1), make(chan struct{})
		f.lv.fault = func(int, call) (error, bool) {
			entered <- struct{}{}
			<-release
			return nil, false
		}
		f.deliver(t, ev("s1", 1, event.KindStatus, "connected"))
		f.poll(t) // read
		f.clk.Advance(DefaultBatchInterval)
		polled := make(chan error, 1)
		go func() { polled <- f.d.Poll(ctx) }()
		<-entered // the batch is being sent

		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := f.d.Settle(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Settle while the send hangs: %v, want the context's deadline", err)
		}
		close(release)
		if err := f.d.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		// The step's send is settled: answered and acknowledged, nothing of it left in the outbox.
		if it, ok := f.lv.Applied(event.KindStatus, "s1"); !ok || it.Version != 1 {
			t.Fatalf("Laravel applied %+v, %v; want s1 at version 1", it, ok)
		}
		if n, err := b.Client(t).XLen(ctx, outbox.DefaultStream).Result(); err != nil || n != 0 {
			t.Fatalf("the outbox holds %d entries (%v) after Settle; want 0: the sent batch is settled", n, err)
		}
		if err := <-polled; err != nil {
			t.Fatal(err)
		}
	})
}
