// Package event defines the session events the gateway reports to Laravel: every QR code and
// every status change of a WhatsApp session becomes one Event with a per-session monotonic
// version; every message the session receives and every receipt of a message it sent becomes one
// Event carrying its Laravel item, with a per-session sequence in arrival order. Events flow one
// way: session -> delivery -> Laravel.
package event

import (
	"fmt"
	"time"

	"wagate/gateway/laravel"
)

// Kind says what an event carries.
type Kind string

// The two kinds of events the contract knows.
const (
	// KindQR carries a QR code in Payload.
	KindQR Kind = "qr"
	// KindStatus carries an estado_qr (laravel.Status) in Payload.
	KindStatus Kind = "status"
	// KindMessage carries a received message in Message (Payload: its message id). Messages are
	// never coalesced: each one is delivered.
	KindMessage Kind = "message"
	// KindReceipt carries a receipt of a sent message in Receipt (Payload: the message id).
	KindReceipt Kind = "receipt"
)

// IsMessaging reports whether k is a message or receipt kind (as opposed to a session state).
func (k Kind) IsMessaging() bool { return k == KindMessage || k == KindReceipt }

// Priority orders delivery: HIGH events (connected, disconnected, logged_out) must reach Laravel
// within the priority interval and take pending normal events with them.
type Priority int

// Event priorities.
const (
	PriorityNormal Priority = 0
	PriorityHigh   Priority = 1
)

// String returns "normal" or "high".
func (p Priority) String() string {
	if p == PriorityHigh {
		return "high"
	}
	return "normal"
}

// Event is one QR code or status change of one session.
type Event struct {
	// ID is unique per event (the contract's event_id).
	ID string `json:"id"`
	// SessionID is the session the event belongs to.
	SessionID string `json:"session_id"`
	// Kind is KindQR or KindStatus.
	Kind Kind `json:"kind"`
	// Payload is the QR code (KindQR) or the estado_qr (KindStatus).
	Payload string `json:"payload"`
	// Time is when the event happened at the gateway.
	Time time.Time `json:"time"`
	// Version is monotonic per session across restarts; a receiver ignores versions not newer
	// than what it stored for the same session and kind. Message and receipt events carry their
	// item's Sequence here: a numbering of their own, separate from QR and status versions.
	Version int64 `json:"version"`
	// Priority is PriorityHigh for connected, disconnected and logged_out.
	Priority Priority `json:"priority"`
	// Message is the item of a KindMessage event.
	Message *laravel.MessageItem `json:"message,omitempty"`
	// Receipt is the item of a KindReceipt event.
	Receipt *laravel.ReceiptItem `json:"receipt,omitempty"`
}

// PriorityOf returns the priority the gateway gives to an event of kind k with payload p.
func PriorityOf(k Kind, payload string) Priority {
	if k == KindStatus {
		switch laravel.Status(payload) {
		case laravel.StatusConnected, laravel.StatusDisconnected, laravel.StatusLoggedOut:
			return PriorityHigh
		}
	}
	return PriorityNormal
}

// Validate reports the first problem that makes e undeliverable.
func (e Event) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("event: empty id")
	case !laravel.ValidSessionID(e.SessionID):
		return fmt.Errorf("event %s: invalid session id %q", e.ID, e.SessionID)
	case e.Version <= 0:
		return fmt.Errorf("event %s: version %d must be positive", e.ID, e.Version)
	}
	switch e.Kind {
	case KindQR:
		if e.Payload == "" {
			return fmt.Errorf("event %s: empty QR payload", e.ID)
		}
	case KindStatus:
		if !laravel.Status(e.Payload).Valid() {
			return fmt.Errorf("event %s: unknown estado_qr %q", e.ID, e.Payload)
		}
	case KindMessage:
		if e.Message == nil {
			return fmt.Errorf("event %s: message event without its message", e.ID)
		}
		if err := e.Message.Validate(); err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		if e.Message.SessionID != e.SessionID || e.Message.Sequence != e.Version {
			return fmt.Errorf("event %s: message of session %s sequence %d in an event of %s version %d",
				e.ID, e.Message.SessionID, e.Message.Sequence, e.SessionID, e.Version)
		}
	case KindReceipt:
		if e.Receipt == nil {
			return fmt.Errorf("event %s: receipt event without its receipt", e.ID)
		}
		if err := e.Receipt.Validate(); err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		if e.Receipt.SessionID != e.SessionID || e.Receipt.Sequence != e.Version {
			return fmt.Errorf("event %s: receipt of session %s sequence %d in an event of %s version %d",
				e.ID, e.Receipt.SessionID, e.Receipt.Sequence, e.SessionID, e.Version)
		}
	default:
		return fmt.Errorf("event %s: unknown kind %q", e.ID, e.Kind)
	}
	return nil
}
