package laravel

import (
	"context"
	"fmt"
	"time"
)

// Endpoint paths of incoming messages and receipts.
const (
	PathMessage       = "/api/whatsapp/message"        // legacy: POST MessageItem
	PathReceipt       = "/api/whatsapp/receipt"        // legacy: POST ReceiptItem
	PathMessageBatch  = "/api/whatsapp/messages/batch" // batch: POST MessageBatch -> BatchResult
	PathReceiptBatch  = "/api/whatsapp/receipts/batch" // batch: POST ReceiptBatch -> BatchResult
	EndpointMessage   = "message"
	EndpointReceipt   = "receipt"
	EndpointMsgBatch  = "message_batch"
	EndpointRcptBatch = "receipt_batch"
)

// MessageType says what an incoming message carries.
type MessageType string

// Message types.
const (
	MessageText     MessageType = "text"     // Text; Quote when it replies
	MessageReaction MessageType = "reaction" // Text is the emoji ("" removes it); ReactTo the message
	MessageImage    MessageType = "image"    // Text is the caption
	MessageVideo    MessageType = "video"
	MessageAudio    MessageType = "audio"
	MessageDocument MessageType = "document"
	MessageSticker  MessageType = "sticker"
	MessageLocation MessageType = "location"
	MessageContact  MessageType = "contact"
	MessageOther    MessageType = "other" // a kind the gateway does not describe further
)

// MessageTypes lists every MessageType.
var MessageTypes = []MessageType{MessageText, MessageReaction, MessageImage, MessageVideo, MessageAudio,
	MessageDocument, MessageSticker, MessageLocation, MessageContact, MessageOther}

// MessageItem is one message a WhatsApp session received (or sent from another of its devices).
// Laravel stores it once per (session_id, message_id): a replay or a duplicate is not an error
// and changes nothing. Sequence orders a session's messages and receipts as the gateway got
// them (per chat too); it grows across gateway restarts.
type MessageItem struct {
	SessionID string `json:"session_id"`
	MessageID string `json:"message_id"`
	// Chat is the conversation's JID (the contact for a one-to-one chat, the group otherwise).
	Chat string `json:"chat"`
	// Sender is the JID of who wrote it; FromMe is true when it was the session's own account.
	Sender   string      `json:"sender"`
	FromMe   bool        `json:"from_me"`
	PushName string      `json:"push_name,omitempty"`
	Type     MessageType `json:"type"`
	Text     string      `json:"text,omitempty"`
	// Quote is the id of the message this one replies to.
	Quote string `json:"quote,omitempty"`
	// ReactTo is the id of the message a reaction is about.
	ReactTo string `json:"react_to,omitempty"`
	// Media describes the file of an image, video, audio, document or sticker; the file itself
	// never travels to Laravel.
	Media     *MessageMedia `json:"media,omitempty"`
	Timestamp time.Time     `json:"timestamp"`
	Sequence  int64         `json:"sequence"`
}

// MessageMedia is the metadata of a message's file.
type MessageMedia struct {
	MimeType   string `json:"mime_type"`
	FileName   string `json:"file_name,omitempty"`
	FileLength uint64 `json:"file_length"`
	// FileSHA256 is the hex SHA-256 of the decrypted file.
	FileSHA256 string `json:"file_sha256"`
}

// ReceiptStatus is how far a message the session sent has got.
type ReceiptStatus string

// Receipt statuses, in the order they can only move forward: a read message never goes back to
// delivered.
const (
	ReceiptDelivered ReceiptStatus = "delivered"
	ReceiptRead      ReceiptStatus = "read"
	ReceiptPlayed    ReceiptStatus = "played"
)

// ReceiptStatuses lists every ReceiptStatus, in Rank order.
var ReceiptStatuses = []ReceiptStatus{ReceiptDelivered, ReceiptRead, ReceiptPlayed}

// Rank orders statuses: delivered < read < played; 0 for an unknown status.
func (s ReceiptStatus) Rank() int {
	switch s {
	case ReceiptDelivered:
		return 1
	case ReceiptRead:
		return 2
	case ReceiptPlayed:
		return 3
	}
	return 0
}

// ReceiptItem says a message the session sent reached Status for Sender. Laravel applies it
// only when it moves the message's status forward (Rank), so a replay or a late delivered after
// read changes nothing.
type ReceiptItem struct {
	SessionID string        `json:"session_id"`
	MessageID string        `json:"message_id"`
	Chat      string        `json:"chat"`
	Sender    string        `json:"sender"`
	Status    ReceiptStatus `json:"status"`
	Timestamp time.Time     `json:"timestamp"`
	Sequence  int64         `json:"sequence"`
}

// MessageBatch is the body of POST /api/whatsapp/messages/batch.
type MessageBatch struct {
	Messages []MessageItem `json:"messages"`
}

// ReceiptBatch is the body of POST /api/whatsapp/receipts/batch.
type ReceiptBatch struct {
	Receipts []ReceiptItem `json:"receipts"`
}

// Validate reports the first problem that makes m undeliverable.
func (m MessageItem) Validate() error {
	switch {
	case !ValidSessionID(m.SessionID):
		return fmt.Errorf("message: invalid session id %q", m.SessionID)
	case m.MessageID == "" || len(m.MessageID) > 128:
		return fmt.Errorf("message of %s: message id must be 1 to 128 characters", m.SessionID)
	case m.Chat == "" || m.Sender == "":
		return fmt.Errorf("message %s: empty chat or sender", m.MessageID)
	case m.Type == "":
		return fmt.Errorf("message %s: empty type", m.MessageID)
	case m.Sequence <= 0:
		return fmt.Errorf("message %s: sequence %d must be positive", m.MessageID, m.Sequence)
	}
	return nil
}

// Validate reports the first problem that makes r undeliverable.
func (r ReceiptItem) Validate() error {
	switch {
	case !ValidSessionID(r.SessionID):
		return fmt.Errorf("receipt: invalid session id %q", r.SessionID)
	case r.MessageID == "" || len(r.MessageID) > 128:
		return fmt.Errorf("receipt of %s: message id must be 1 to 128 characters", r.SessionID)
	case r.Status.Rank() == 0:
		return fmt.Errorf("receipt %s: unknown status %q", r.MessageID, r.Status)
	case r.Sequence <= 0:
		return fmt.Errorf("receipt %s: sequence %d must be positive", r.MessageID, r.Sequence)
	}
	return nil
}

// PostMessage sends one incoming message (legacy POST /api/whatsapp/message).
func (c *Client) PostMessage(ctx context.Context, m MessageItem) error {
	return c.post(ctx, EndpointMessage, PathMessage, m)
}

// PostReceipt sends one receipt (legacy POST /api/whatsapp/receipt).
func (c *Client) PostReceipt(ctx context.Context, r ReceiptItem) error {
	return c.post(ctx, EndpointReceipt, PathReceipt, r)
}

// PostMessageBatch sends a batch of messages with an idempotency key that must stay the same
// across retries of the same batch.
func (c *Client) PostMessageBatch(ctx context.Context, idempotencyKey string, b MessageBatch) (BatchResult, error) {
	return c.postBatch(ctx, EndpointMsgBatch, PathMessageBatch, idempotencyKey, b)
}

// PostReceiptBatch sends a batch of receipts with an idempotency key that must stay the same
// across retries of the same batch.
func (c *Client) PostReceiptBatch(ctx context.Context, idempotencyKey string, b ReceiptBatch) (BatchResult, error) {
	return c.postBatch(ctx, EndpointRcptBatch, PathReceiptBatch, idempotencyKey, b)
}
