package session

import (
	"errors"
	"log/slog"
	"time"

	"wagate/gateway/internal/configcheck"
)

// Config tunes a Manager. Zero values take the defaults in brackets.
type Config struct {
	// QRFirst is how long the first QR code of a pairing is shown (default 60 s).
	QRFirst time.Duration
	// QRNext is how long each following code is shown (default 20 s).
	QRNext time.Duration
	// QRCodes is how many codes one pairing shows before the session becomes expired (default 6).
	QRCodes int
	// RestoreConcurrency bounds how many paired sessions connect at once: restored after a start,
	// or reconnecting after their connections dropped (default 32).
	RestoreConcurrency int
	// PairLoginTimeout is how long a freshly paired device may take to log in before the manager
	// reconnects it itself: whatsmeow reconnects on the server's 515 only if it processes that
	// stream error before the server closes the socket, which a loaded host can miss (default 20 s).
	// It bounds every connect of a paired device the same way (start: a connect that neither logs
	// in nor reports Disconnected, whatsmeow's handshake race).
	PairLoginTimeout time.Duration
	// MaxQueuedEvents bounds one session's undelivered events; beyond it the oldest QR code is
	// dropped (status changes never are) (default 64).
	MaxQueuedEvents int
	// ResyncRestored makes Restore send every restored session's status again, with this run's
	// version: set it when the previous run did not stop cleanly, since it may have stored a
	// status whose event never reached the delivery (a SIGKILL between the two). Unpaired
	// sessions send theirs at once, paired ones when their reconnect settles (connected again is
	// then sent, not skipped). After a clean stop leave it off: nothing changed, nothing is sent.
	ResyncRestored bool
	// ResyncRetry is how long a dirty session (its event refused by the delivery) waits before
	// its current state is sent again when no other event is accepted meanwhile (default 1 s).
	ResyncRetry time.Duration
	// Logger receives the manager's logs (default slog.Default()).
	Logger *slog.Logger
	// Hooks receive metric callbacks.
	Hooks Hooks
	// Owner, in cluster mode, says which sessions this replica holds and gives their versions'
	// epochs (their shards' fencing tokens) instead of the manager-wide epoch; nil in
	// single-process mode. See owner.go.
	Owner Owner
	// Journal, when set, records every customer's message and receipt before the delivery takes
	// it (a durable delivery only; see messages.go); a refusal of the journal refuses the item.
	Journal Journal
}

// Bounds Validate keeps a Config within.
const (
	// MaxQRCodes is the most QR codes one pairing may show.
	MaxQRCodes = 100
	// MaxRestoreConcurrency is the most paired sessions that may connect at once.
	MaxRestoreConcurrency = 10_000
)

// DefaultConfig returns the manager's defaults, the values zero fields take: WhatsApp Web's QR
// rotation (DefaultQRTiming), 32 reconnects at once, 20 s for a paired device to log in, 64
// queued events per session, a 1 s resync retry. Logger and Hooks are left unset.
func DefaultConfig() Config {
	qr := DefaultQRTiming()
	return Config{
		QRFirst:            qr.First,
		QRNext:             qr.Next,
		QRCodes:            qr.Codes,
		RestoreConcurrency: 32,
		PairLoginTimeout:   20 * time.Second,
		MaxQueuedEvents:    64,
		ResyncRetry:        time.Second,
	}
}

// Validate reports settings that cannot work: negative durations or counts, more than
// MaxQRCodes codes or MaxRestoreConcurrency reconnects. Zero fields are fine (they take the
// defaults).
func (c Config) Validate() error {
	errs := []error{
		configcheck.NotNegative("session", "QRFirst", c.QRFirst),
		configcheck.NotNegative("session", "QRNext", c.QRNext),
		configcheck.NotNegative("session", "QRCodes", c.QRCodes),
		configcheck.NotNegative("session", "RestoreConcurrency", c.RestoreConcurrency),
		configcheck.NotNegative("session", "PairLoginTimeout", c.PairLoginTimeout),
		configcheck.NotNegative("session", "MaxQueuedEvents", c.MaxQueuedEvents),
		configcheck.NotNegative("session", "ResyncRetry", c.ResyncRetry),
	}
	errs = append(errs,
		configcheck.AtMost("session", "QRCodes", c.QRCodes, MaxQRCodes),
		configcheck.AtMost("session", "RestoreConcurrency", c.RestoreConcurrency, MaxRestoreConcurrency),
	)
	return errors.Join(errs...)
}

// qrTiming is the QR rotation the config sets.
func (c *Config) qrTiming() QRTiming {
	return QRTiming{First: c.QRFirst, Next: c.QRNext, Codes: c.QRCodes}
}

// fill gives every zero (or negative) field its DefaultConfig value.
func (c *Config) fill() {
	d := DefaultConfig()
	qr := c.qrTiming().WithDefaults()
	c.QRFirst, c.QRNext, c.QRCodes = qr.First, qr.Next, qr.Codes
	if c.RestoreConcurrency <= 0 {
		c.RestoreConcurrency = d.RestoreConcurrency
	}
	if c.PairLoginTimeout <= 0 {
		c.PairLoginTimeout = d.PairLoginTimeout
	}
	if c.MaxQueuedEvents <= 0 {
		c.MaxQueuedEvents = d.MaxQueuedEvents
	}
	if c.ResyncRetry <= 0 {
		c.ResyncRetry = d.ResyncRetry
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
