package fakewa

import (
	"fmt"
	"time"
)

// A handshake cut: WhatsApp's front accepts a dial and closes the socket after the client's hello,
// before the server's (a front whose backend went away mid-handshake). whatsmeow's handshake does
// not notice the close: it waits for the server's hello until its NoiseHandshakeResponseTimeout
// (20 s) unless its caller watches the socket (gateway/whatsapp, socketwatch.go). Connections past
// their handshake are untouched, and an outage never cuts a handshake this way (outage.go): this
// is its own behaviour, asked for by name.

// CutHandshakes closes, for d, every connection that sends its client hello, before the server's
// hello; it returns an error for a non-positive d or a server not started.
func (s *Server) CutHandshakes(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("fakewa: a handshake cut needs a positive duration, not %s", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return ErrNotStarted
	}
	s.cutHandshakesUntil.Store(time.Now().Add(d).UnixNano())
	return nil
}

// cutsHandshakes reports whether a handshake whose client hello arrives now is cut.
func (s *Server) cutsHandshakes() bool {
	return time.Now().UnixNano() < s.cutHandshakesUntil.Load()
}
