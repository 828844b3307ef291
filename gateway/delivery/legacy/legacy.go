// Package legacy is the seed's "before" delivery, kept as the measured baseline: one HTTP request
// to Laravel per QR code or status change (POST /api/qr, POST /api/whatsapp/status) and per
// incoming message or receipt (POST /api/whatsapp/message, POST /api/whatsapp/receipt), no
// batching, no retries, no versions on the wire for QR and status; and isSessionActive answered
// by a Laravel lookup (GET /api/whatsapp/sessions/{id}) on every call, with no cache.
package legacy

import (
	"context"
	"errors"
	"fmt"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// Delivery sends each event to Laravel as its own request.
type Delivery struct {
	client *laravel.Client
}

var (
	_ delivery.Delivery     = (*Delivery)(nil)
	_ delivery.KindAccepter = (*Delivery)(nil)
)

// Accepts implements delivery.KindAccepter: legacy delivers messages and receipts too.
func (d *Delivery) Accepts(k event.Kind) bool {
	return k == event.KindQR || k == event.KindStatus || k.IsMessaging()
}

// New returns a Delivery that sends through client.
func New(client *laravel.Client) *Delivery { return &Delivery{client: client} }

// Deliver sends ev at once. It returns the request's error (the event is then lost: the legacy
// shape has no outbox and no retry); the session layer logs and counts it.
func (d *Delivery) Deliver(ctx context.Context, ev event.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	var err error
	switch ev.Kind {
	case event.KindQR:
		err = d.client.PostQR(ctx, laravel.QRUpdate{SessionID: ev.SessionID, QR: ev.Payload})
	case event.KindStatus:
		err = d.client.PostStatus(ctx, laravel.StatusUpdate{SessionID: ev.SessionID, EstadoQR: laravel.Status(ev.Payload)})
	case event.KindMessage:
		err = d.client.PostMessage(ctx, *ev.Message)
	case event.KindReceipt:
		err = d.client.PostReceipt(ctx, *ev.Receipt)
	}
	if err != nil {
		return fmt.Errorf("legacy: deliver %s event of %s: %w", ev.Kind, ev.SessionID, err)
	}
	return nil
}

// Close releases idle connections; nothing is pending in legacy mode.
func (d *Delivery) Close(ctx context.Context) error {
	d.client.CloseIdleConnections()
	return nil
}

// ActivityChecker answers isSessionActive with one Laravel lookup per call.
type ActivityChecker struct {
	client *laravel.Client
}

var _ delivery.ActivityChecker = (*ActivityChecker)(nil)

// NewActivityChecker returns an ActivityChecker that asks through client.
func NewActivityChecker(client *laravel.Client) *ActivityChecker {
	return &ActivityChecker{client: client}
}

// IsSessionActive asks Laravel. A session Laravel does not know is not active.
func (a *ActivityChecker) IsSessionActive(ctx context.Context, sessionID string) (bool, error) {
	info, err := a.client.GetSession(ctx, sessionID)
	if errors.Is(err, laravel.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("legacy: isSessionActive %s: %w", sessionID, err)
	}
	return info.Active, nil
}
