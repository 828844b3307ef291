package session

import (
	"context"
	"errors"

	"wagate/gateway/laravel"
)

// Driver opens WhatsApp connections. The production driver (gateway/whatsapp) wraps whatsmeow;
// unit tests use an in-process fake.
type Driver interface {
	// Open prepares, without connecting, the connection of one session. deviceID is the device
	// the session paired before, "" for a new unpaired device. Every event of the connection is
	// passed to handle, possibly from several goroutines, in roughly the order it happened.
	// handle returns an error when it could not make a MessageReceived or ReceiptReceived
	// durable (the delivery refused it, the connection was replaced, the gateway is stopping):
	// the driver must then not acknowledge it to WhatsApp, which delivers it again. For other
	// events it returns nil.
	// Open returns ErrDeviceNotFound when deviceID is not (any longer) in the device store.
	Open(ctx context.Context, sessionID, deviceID string, handle func(DriverEvent) error) (Conn, error)
	// Forget deletes a paired device's local data without telling WhatsApp (a logout while
	// WhatsApp cannot be reached). A device that does not exist is not an error.
	Forget(ctx context.Context, deviceID string) error
}

// Conn is one session's WhatsApp connection.
type Conn interface {
	// Connect opens the connection. An unpaired device then reports QRCodes; a paired one
	// Connected. It returns once the transport is up (or failed); the rest arrives as events.
	Connect(ctx context.Context) error
	// Disconnect closes the connection without emitting events; a paired device stays paired.
	Disconnect()
	// Logout unlinks the device from the phone, disconnects and deletes the device's data.
	Logout(ctx context.Context) error
	// LoggedIn reports whether the connection is up and authenticated right now.
	LoggedIn() bool
	// SendText sends a text message (a reply when msg.Quote is set) and returns the WhatsApp
	// message id: msg.ID when set, a new one otherwise.
	SendText(ctx context.Context, msg OutgoingText) (string, error)
	// Media downloads and decrypts the file of a media message the session received
	// (ErrMediaNotFound when it knows no such message, ErrMediaTooLarge over MaxMediaBytes).
	Media(ctx context.Context, messageID string) (Media, error)
	// Release frees the connection's resources after Disconnect or Logout; it is not used again.
	Release()
}

// LoginProgress is implemented by a Conn that can tell a login under way from a silent one.
// LoggingIn reports whether WhatsApp accepted the connection's login and the client is still
// finishing it (LoggedIn not yet true): the login watch waits for such a login instead of cutting
// it (issue 18: under CPU starvation whatsmeow took 8-12 s and more over its <success>).
type LoginProgress interface {
	LoggingIn() bool
}

// OutgoingText is a text message a session sends to a phone.
type OutgoingText struct {
	// Phone is the recipient's number: digits, country code first.
	Phone string
	// Text is the message.
	Text string
	// Quote is the id of the message in the chat with Phone this one replies to ("" for none);
	// QuoteFromMe says the session wrote it (otherwise the phone did).
	Quote       string
	QuoteFromMe bool
	// ID is the WhatsApp message id to send with ("": the driver generates one). A keyed send
	// passes the same id on every retry, so the recipient deduplicates a repeated send.
	ID string
}

// ErrDeviceNotFound is returned by Driver.Open for a device no longer in the device store.
var ErrDeviceNotFound = errors.New("session: device not found in the store")

// DriverEvent is something that happened on a Conn: one of the types below.
type DriverEvent interface{ driverEvent() }

// QRCodes carries the pairing codes WhatsApp offered, in the order they should be shown.
type QRCodes struct{ Codes []string }

// PairRequested says a phone scanned the QR code and WhatsApp offers the pairing of DeviceID (the
// new device's id, its JID), before the client stores the device or confirms. The handler decides:
// nil accepts (the session records the device first, so a handover or restart right after the
// confirmation keeps it), an error refuses (the client answers WhatsApp with an error and the
// phone shows the linking failed, as for a QR whose connection is gone). A driver that can refuse
// passes it; one that cannot may skip it (PairSuccess alone then records the device).
type PairRequested struct{ DeviceID string }

// PairSuccess says a phone scanned the QR code: DeviceID is the new device's id (its JID).
type PairSuccess struct{ DeviceID string }

// PairFailed says a scan was rejected by the client (the reason is informative).
type PairFailed struct{ Reason string }

// Connected says the device is logged in and online.
type Connected struct{}

// Disconnected says the connection dropped; it does not reconnect by itself: the manager releases
// it and connects a paired device on a new connection.
type Disconnected struct{}

// LoggedOut says the device was unlinked (from the phone, or refused at connect); its data is gone.
type LoggedOut struct{ Reason string }

// StreamReplaced says another client took over the same device; nothing reconnects.
type StreamReplaced struct{}

// ConnectFailed says WhatsApp refused the connection for good (ban, outdated client, ...); nothing
// reconnects.
type ConnectFailed struct{ Reason string }

// LoginFailed says the login a paired device's connection was making after Connect returned
// (whatsmeow's login again after the 515 that follows a pairing) failed and will report nothing
// more: the session's login watch acts on it at once instead of at PairLoginTimeout.
type LoginFailed struct{ Reason string }

// MessageReceived carries a message the session received (or sent from another of its devices),
// decrypted: the Laravel item without session_id and sequence, which the manager sets.
type MessageReceived struct{ Message laravel.MessageItem }

// ReceiptReceived says messages the session sent reached Status for the receipt's sender: the
// Laravel item without message id, session_id and sequence, one item per id of MessageIDs.
type ReceiptReceived struct {
	MessageIDs []string
	Receipt    laravel.ReceiptItem
}

func (MessageReceived) driverEvent() {}
func (ReceiptReceived) driverEvent() {}

func (QRCodes) driverEvent()        {}
func (PairRequested) driverEvent()  {}
func (PairSuccess) driverEvent()    {}
func (PairFailed) driverEvent()     {}
func (Connected) driverEvent()      {}
func (Disconnected) driverEvent()   {}
func (LoggedOut) driverEvent()      {}
func (StreamReplaced) driverEvent() {}
func (ConnectFailed) driverEvent()  {}
func (LoginFailed) driverEvent()    {}
