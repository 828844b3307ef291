package batch

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// okSender answers every batch with success, without a network.
type okSender struct{}

func (okSender) PostQRBatch(_ context.Context, _ string, b laravel.QRBatch) (laravel.BatchResult, error) {
	return laravel.BatchResult{Success: true, Updated: len(b.QRs)}, nil
}
func (okSender) PostStatusBatch(_ context.Context, _ string, b laravel.StatusBatch) (laravel.BatchResult, error) {
	return laravel.BatchResult{Success: true, Updated: len(b.Statuses)}, nil
}
func (okSender) PostMessageBatch(_ context.Context, _ string, b laravel.MessageBatch) (laravel.BatchResult, error) {
	return laravel.BatchResult{Success: true, Updated: len(b.Messages)}, nil
}
func (okSender) PostReceiptBatch(_ context.Context, _ string, b laravel.ReceiptBatch) (laravel.BatchResult, error) {
	return laravel.BatchResult{Success: true, Updated: len(b.Receipts)}, nil
}

// BenchmarkDeliverAndFlush measures one event's whole way through batch delivery: Deliver
// (appended to the outbox), read by the flusher, coalesced, sent in a batch of 50 (to an in-memory
// sender) and acknowledged. ns/op and allocs/op are per event.
func BenchmarkDeliverAndFlush(b *testing.B) {
	redistest.EachBenchmark(b, func(b *testing.B, be *redistest.Backend) {
		log := slog.New(slog.DiscardHandler)
		ob, err := outbox.New(context.Background(), be.Client(b), outbox.Config{Max: 1 << 40, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		clk := newFakeClock()
		d, err := New(Options{Outbox: ob, Sender: okSender{}, Clock: clk, Logger: log, Config: Config{BatchSize: 50}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		evs := make([]event.Event, 50)
		for i := range evs {
			evs[i] = event.Event{ID: fmt.Sprintf("e%d", i), SessionID: fmt.Sprintf("s%d", i), Kind: event.KindQR,
				Payload: "2@abcdefghijklmnopqrstuvwxyz0123456789", Time: time.Unix(1, 0), Version: 1}
		}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			e := evs[n%50]
			e.Version = int64(n + 1)
			if err := d.Deliver(ctx, e); err != nil {
				b.Fatal(err)
			}
			n++
			if n%50 == 0 {
				if err := d.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := d.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkCoalescer measures adding an entry to the waiting items and taking full batches.
func BenchmarkCoalescer(b *testing.B) {
	c := NewCoalescer(50, time.Second, 0)
	now := time.Unix(0, 0)
	entries := make([]outbox.Entry, 200)
	for i := range entries {
		entries[i] = outbox.Entry{ID: fmt.Sprint(i), Event: event.Event{ID: fmt.Sprint(i), SessionID: fmt.Sprintf("s%d", i%100), Kind: event.KindStatus, Version: int64(i)}}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Add(entries[i%200], now)
		i++
		if _, due := c.Due(now); due {
			c.TakeAll(TriggerSize)
		}
	}
}
