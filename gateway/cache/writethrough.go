package cache

import (
	"context"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
)

// writeThrough records every event in the cache before handing it to the next delivery.
type writeThrough struct {
	c    *Cache
	next delivery.Delivery
}

// WriteThrough returns a delivery.Delivery that writes each QR and status event through the cache
// (Record, bounded by WriteTimeout) and then hands it to next; messages and receipts go straight
// to next. A cache failure is counted (WriteErrors) and logged, at most one line a second (the
// next line says how many failures it stood for), and never blocks delivery: the cache is an
// optimisation, the outbox is the record.
func (c *Cache) WriteThrough(next delivery.Delivery) delivery.Delivery {
	return &writeThrough{c: c, next: next}
}

// Accepts passes on whether next delivers events of kind k (delivery.Accepts), so wrapping a
// delivery in the cache does not hide that it takes messages and receipts.
func (w *writeThrough) Accepts(k event.Kind) bool { return delivery.Accepts(w.next, k) }

// DeliversDurably passes on whether next makes events durable before Deliver returns
// (delivery.Durable): the session layer acknowledges messages to WhatsApp on that promise.
func (w *writeThrough) DeliversDurably() bool { return delivery.Durable(w.next) }

func (w *writeThrough) Deliver(ctx context.Context, ev event.Event) error {
	if ev.Kind.IsMessaging() {
		return w.next.Deliver(ctx, ev) // the cache holds session state, not messages
	}
	wctx, cancel := context.WithTimeout(ctx, w.c.cfg.WriteTimeout)
	err := w.c.Record(wctx, ev)
	cancel()
	if err != nil {
		w.c.recordErrors.Add(1)
		w.c.owe(ev) // written again by the next read of the session (owed.go)
		// One line a second at most: failures come in storms (a reconnect of thousands of sessions).
		if ok, heldBack := w.c.writeWarnings.Allow(); ok {
			attrs := []any{"session_id", ev.SessionID, "event_id", ev.ID, "err", err}
			if heldBack > 0 {
				attrs = append(attrs, "similar_since_last_line", heldBack)
			}
			w.c.log.Warn("cache: write-through failed; delivering anyway", attrs...)
		}
	}
	return w.next.Deliver(ctx, ev)
}

func (w *writeThrough) Close(ctx context.Context) error { return w.next.Close(ctx) }
