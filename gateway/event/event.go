// Package event defines the session events the gateway reports to Laravel: every QR code and
// every status change of a WhatsApp session becomes one Event with a per-session monotonic
// version. Events flow one way: session -> delivery -> Laravel.
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
)

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
	// than what it stored for the same session and kind.
	Version int64 `json:"version"`
	// Priority is PriorityHigh for connected, disconnected and logged_out.
	Priority Priority `json:"priority"`
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
	default:
		return fmt.Errorf("event %s: unknown kind %q", e.ID, e.Kind)
	}
	return nil
}
