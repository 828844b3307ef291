// Package delivery defines how session events reach Laravel. The gateway hands every event to
// one Delivery chosen by its `mode` setting: legacy (one request per event, the seed's "before")
// or batch (a durable Redis Streams outbox flushed in coalesced batches, the seed's "after").
// Implementations live in subpackages.
package delivery

import (
	"context"

	"wagate/gateway/event"
)

// Delivery takes events from the session layer and gets them to Laravel.
type Delivery interface {
	// Deliver accepts one event. When it returns nil the event is accepted in the mode's sense:
	// legacy has sent it (or given up and logged), batch has appended it durably to the outbox.
	// A non-nil error means the event was not accepted (for batch: the outbox stayed full past
	// its deadline); callers log it and count it, never drop it silently.
	Deliver(ctx context.Context, ev event.Event) error
	// Close stops the delivery. Batch makes one bounded final flush attempt and leaves whatever
	// was not delivered in the outbox; ctx bounds the attempt.
	Close(ctx context.Context) error
}

// ActivityChecker answers isSessionActive: whether Laravel considers a session enabled and
// connected. Legacy asks Laravel on every call; batch reads through the 3-level cache.
type ActivityChecker interface {
	IsSessionActive(ctx context.Context, sessionID string) (bool, error)
}

// KindAccepter is implemented by a Delivery that delivers more than QR and status events.
type KindAccepter interface {
	// Accepts reports whether the delivery delivers events of kind k.
	Accepts(k event.Kind) bool
}

// Accepts reports whether d delivers events of kind k. Every Delivery delivers QR codes and
// status changes; message and receipt events go only to one that says it delivers them
// (KindAccepter), so a delivery that would coalesce or misroute them never sees them.
func Accepts(d Delivery, k event.Kind) bool {
	if k == event.KindQR || k == event.KindStatus {
		return true
	}
	a, ok := d.(KindAccepter)
	return ok && a.Accepts(k)
}

// DurableDeliverer is implemented by a Delivery whose Deliver returns nil only once the event is
// durable (batch: appended to the Redis outbox), so that a caller may acknowledge the event's
// source (WhatsApp's delivery receipt of a message) right after Deliver returns.
type DurableDeliverer interface {
	// DeliversDurably reports whether Deliver's nil means the event survives a crash.
	DeliversDurably() bool
}

// Durable reports whether d's Deliver makes an event durable before returning nil (see
// DurableDeliverer). Legacy delivery is not: it may give up on an event and return nil.
func Durable(d Delivery) bool {
	dd, ok := d.(DurableDeliverer)
	return ok && dd.DeliversDurably()
}
