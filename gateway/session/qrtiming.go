package session

import "time"

// QRTiming is a pairing's QR rotation, like WhatsApp Web's: the first code is shown for First,
// each following one for Next, and the session is expired once Codes codes have been shown.
type QRTiming struct {
	First time.Duration
	Next  time.Duration
	Codes int
}

// DefaultQRTiming is WhatsApp Web's rotation: the first code 60 s, then 20 s each, 6 codes.
func DefaultQRTiming() QRTiming {
	return QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 6}
}

// WithDefaults returns q with every zero or negative field taken from DefaultQRTiming.
func (q QRTiming) WithDefaults() QRTiming {
	d := DefaultQRTiming()
	if q.First <= 0 {
		q.First = d.First
	}
	if q.Next <= 0 {
		q.Next = d.Next
	}
	if q.Codes <= 0 {
		q.Codes = d.Codes
	}
	return q
}

// ShownFor is how long code k (0-based) of a pairing is shown.
func (q QRTiming) ShownFor(k int) time.Duration {
	if k == 0 {
		return q.First
	}
	return q.Next
}

// Window is when code k (0-based) is shown, relative to the first code, and until when.
func (q QRTiming) Window(k int) (from, until time.Duration) {
	if k > 0 {
		from = q.First + time.Duration(k-1)*q.Next
	}
	return from, from + q.ShownFor(k)
}
