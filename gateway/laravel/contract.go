// Package laravel owns the contract between the wagate gateway and the Laravel application it
// reports to: the wire types of every endpoint, the header names, the HMAC body signature, and
// (in openapi.yaml) the client-facing OpenAPI 3.1 document. fakelaravel implements this contract,
// the reference PHP app under laravel/ implements it for real, and fakelaravel's conformance check
// verifies any implementation against it.
//
// Two delivery shapes exist. Legacy (the seed's "before"): one POST per QR or status change and a
// GET lookup for isSessionActive. Batch (the seed's "after"): QR codes and status changes in
// batches, each item with a per-session version, an event id and its time; the receiver applies a
// batch in one transaction and ignores (and counts) items whose version is not newer than stored.
package laravel

import (
	"time"
)

// Endpoint paths of the contract, relative to the Laravel base URL.
const (
	PathQR            = "/api/qr"                    // legacy: POST QRUpdate
	PathStatus        = "/api/whatsapp/status"       // legacy: POST StatusUpdate
	PathSessionPrefix = "/api/whatsapp/sessions/"    // legacy: GET + {session_id} -> SessionInfo
	PathQRBatch       = "/api/qr/batch"              // batch: POST QRBatch -> BatchResult
	PathStatusBatch   = "/api/whatsapp/status/batch" // batch: POST StatusBatch -> BatchResult
)

// Header names of the contract.
const (
	// HeaderIdempotencyKey carries a batch's key; it stays the same across retries of one batch.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature carries "sha256=<hex HMAC-SHA256>" of the timestamp, a dot and the body.
	HeaderSignature = "X-Wagate-Signature"
	// HeaderTimestamp carries the Unix time in seconds at which the body was signed.
	HeaderTimestamp = "X-Wagate-Timestamp"
)

// Limits every implementation enforces.
const (
	// MaxBatchItems is the largest number of items one batch may carry (422 above it).
	MaxBatchItems = 500
	// MaxBodyBytes is the largest request body accepted (413 above it).
	MaxBodyBytes = 1 << 20
	// MaxSessionIDLen bounds session ids, which match ^[A-Za-z0-9_-]{1,64}$.
	MaxSessionIDLen = 64
)

// Status is a session's estado_qr as Laravel stores it.
type Status string

// The five estado_qr values of the contract.
const (
	StatusPending      Status = "pending"
	StatusConnected    Status = "connected"
	StatusDisconnected Status = "disconnected"
	StatusLoggedOut    Status = "logged_out"
	StatusExpired      Status = "expired"
)

// Statuses lists every valid estado_qr, in lifecycle order.
var Statuses = []Status{StatusPending, StatusConnected, StatusDisconnected, StatusLoggedOut, StatusExpired}

// Valid reports whether s is one of the contract's estado_qr values.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusConnected, StatusDisconnected, StatusLoggedOut, StatusExpired:
		return true
	}
	return false
}

// ValidSessionID reports whether id matches ^[A-Za-z0-9_-]{1,64}$.
func ValidSessionID(id string) bool {
	if len(id) == 0 || len(id) > MaxSessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// QRUpdate is the legacy body of POST /api/qr.
type QRUpdate struct {
	SessionID string `json:"session_id"`
	QR        string `json:"qr"`
}

// StatusUpdate is the legacy body of POST /api/whatsapp/status.
type StatusUpdate struct {
	SessionID string `json:"session_id"`
	EstadoQR  Status `json:"estado_qr"`
}

// Ack is the answer to a legacy POST.
type Ack struct {
	Success bool `json:"success"`
}

// SessionInfo is the answer of GET /api/whatsapp/sessions/{session_id}: the isSessionActive lookup.
// Active is true when the session is enabled and its estado_qr is connected. An unknown session is
// a 404 with an ErrorBody.
type SessionInfo struct {
	SessionID     string    `json:"session_id"`
	EstadoQR      Status    `json:"estado_qr"`
	Enabled       bool      `json:"enabled"`
	Active        bool      `json:"active"`
	QR            string    `json:"qr,omitempty"`
	StatusVersion int64     `json:"status_version"`
	QRVersion     int64     `json:"qr_version"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// QRItem is one QR code in a batch. Version is the gateway's per-session event version; only an
// item with a version greater than the stored QR version is applied.
type QRItem struct {
	SessionID   string    `json:"session_id"`
	QR          string    `json:"qr"`
	Version     int64     `json:"version"`
	EventID     string    `json:"event_id"`
	GeneratedAt time.Time `json:"generated_at"`
}

// StatusItem is one status change in a batch. Version is the gateway's per-session event version;
// only an item with a version greater than the stored status version is applied.
type StatusItem struct {
	SessionID string    `json:"session_id"`
	EstadoQR  Status    `json:"estado_qr"`
	Version   int64     `json:"version"`
	EventID   string    `json:"event_id"`
	ChangedAt time.Time `json:"changed_at"`
}

// QRBatch is the body of POST /api/qr/batch.
type QRBatch struct {
	QRs []QRItem `json:"qrs"`
}

// StatusBatch is the body of POST /api/whatsapp/status/batch.
type StatusBatch struct {
	Statuses []StatusItem `json:"statuses"`
}

// BatchResult is the 200 answer to a batch. Updated counts applied items, Stale items ignored
// because their version was not newer, Failed items rejected one by one (listed in Errors).
// Success is true when Failed is zero.
type BatchResult struct {
	Success bool        `json:"success"`
	Updated int         `json:"updated"`
	Failed  int         `json:"failed"`
	Stale   int         `json:"stale"`
	Errors  []ItemError `json:"errors"`
}

// ItemError names one item a batch could not apply and why.
type ItemError struct {
	SessionID string `json:"session_id"`
	Error     string `json:"error"`
}

// ValidationError is Laravel's 422 body: a message and, per field, its messages. Field names use
// Laravel's dotted form, e.g. "statuses.3.estado_qr".
type ValidationError struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors"`
}

// ErrorBody is the body of every other error status (401, 404, 409, 413, 429, 5xx).
type ErrorBody struct {
	Message string `json:"message"`
}
