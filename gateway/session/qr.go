package session

// QR rotation: a pairing shows QRCodes codes (the first for QRFirst, each following one for
// QRNext) and then expires; after a scan the login watch reconnects a device that did not log in.

import (
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// beginPairing resets the QR flow and reports pending. Callers hold s.mu.
func (m *Manager) beginPairing(s *session) {
	m.stopQR(s)
	s.qrShown = 0
	s.qrPending = nil
	m.setStatus(s, laravel.StatusPending)
}

// showNextQR displays the next pending code, skipping one identical to the current code, or
// expires the session when the flow has shown QRCodes codes or has none left. Callers hold s.mu.
func (m *Manager) showNextQR(s *session) {
	for len(s.qrPending) > 0 && s.qrPending[0] == s.qrCurrent {
		s.qrPending = s.qrPending[1:]
	}
	if len(s.qrPending) == 0 || s.qrShown >= m.cfg.QRCodes {
		m.stopQR(s)
		m.dropConnLocked(s)
		m.setStatus(s, laravel.StatusExpired)
		return
	}
	code := s.qrPending[0]
	s.qrPending = s.qrPending[1:]
	s.qrShown++
	timeout := m.cfg.qrTiming().ShownFor(s.qrShown - 1)
	if s.qrTimer != nil {
		s.qrTimer.Stop()
	}
	s.qrGen++
	qrGen := s.qrGen
	s.qrCurrent = code
	s.qrExpires = time.Now().Add(timeout)
	s.qrTimer = time.AfterFunc(timeout, func() { m.onQRTimeout(s, qrGen) })
	m.setStatus(s, laravel.StatusPending)
	m.emit(s, event.KindQR, code)
}

func (m *Manager) onQRTimeout(s *session, qrGen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.qrGen != qrGen {
		return
	}
	s.qrTimer = nil
	m.showNextQR(s)
}

// watchLogin reconnects a paired device whose connection (freshly paired, or any connect of a
// paired device: start) has not logged in after PairLoginTimeout. Callers hold s.mu.
func (m *Manager) watchLogin(s *session, gen uint64) {
	m.armLoginWatch(s, gen, m.cfg.PairLoginTimeout)
}

// fireLoginWatch runs the login watch of generation gen now: the driver reported the login
// failed (LoginFailed). Callers hold s.mu.
func (m *Manager) fireLoginWatch(s *session, gen uint64) {
	m.armLoginWatch(s, gen, 0)
}

// loginVerdict is what the login watch does when its timer fires.
type loginVerdict int

const (
	loginNotWatched loginVerdict = iota // the connection was replaced or dropped, or it logged in
	loginUnderWay                       // WhatsApp accepted the login, the client is finishing it: wait again
	loginStalled                        // nothing arrived: reconnect the device
)

// judgeLogin decides the login watch of a connection: current says the watched connection is the
// session's, still open, of a paired device; loggedIn and loggingIn are what it reports (Conn,
// LoginProgress). A login under way is never cut: whatsmeow bounds it itself (each request of its
// login has a timeout, and Connected is dispatched whatever they answered; a socket that closes
// ends it with Disconnected), and a cut under CPU starvation only adds a handshake and another
// login to a process that is already behind (issue 18: 258 reconnects in one run, each of a
// device in the middle of its login).
func judgeLogin(current, loggedIn, loggingIn bool) loginVerdict {
	switch {
	case !current || loggedIn:
		return loginNotWatched
	case loggingIn:
		return loginUnderWay
	default:
		return loginStalled
	}
}

// armLoginWatch starts watchLogin's timer to fire after d. Callers hold s.mu.
func (m *Manager) armLoginWatch(s *session, gen uint64, d time.Duration) {
	m.stopLoginWatch(s)
	var timer *time.Timer
	timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		current := s.gen == gen && s.conn != nil && s.deviceID != ""
		loggedIn, loggingIn := false, false
		if current {
			loggedIn = s.conn.LoggedIn()
			if p, ok := s.conn.(LoginProgress); ok && !loggedIn {
				loggingIn = p.LoggingIn()
			}
		}
		verdict := judgeLogin(current, loggedIn, loggingIn)
		if verdict == loginUnderWay && s.pairTimer == timer {
			m.log.Info("a paired device is still logging in; waiting for it", "session_id", s.id, "watched_for", d)
			m.armLoginWatch(s, gen, m.cfg.PairLoginTimeout)
		}
		stalled := verdict == loginStalled
		var old Conn
		var detached uint64
		if stalled {
			s.pairTimer = nil
			m.log.Warn("paired device did not log in; reconnecting it", "session_id", s.id, "watched_for", d)
			old = m.detachConn(s)
			detached = s.gen
			if s.status == laravel.StatusConnected {
				m.setStatus(s, laravel.StatusDisconnected) // restored as connected, never logged in
			}
		}
		s.mu.Unlock()
		if old != nil {
			// Closed before the new connection opens: a stalled client still logging in (whatsmeow
			// reconnects after the server's 515 by itself) that logged in after the new one would
			// take the device over from it, and the session would be parked as replaced by
			// another client (seen at 300 users with a 1 s PairLoginTimeout).
			old.Disconnect()
			old.Release()
		}
		if stalled && !m.closed.Load() {
			// Through a connect slot like every other reconnect (reconnect.go): after an outage
			// many sessions' watchdogs fire together, and their handshakes queue behind the
			// slots instead of all dialling at once. A failed attempt is retried with backoff;
			// nothing else reconnects it (whatsmeow retries only a connection that was up).
			s.mu.Lock()
			m.reconnectAfter(s, detached, 0, false)
			s.mu.Unlock()
		}
	})
	s.pairTimer = timer
}

// stopLoginWatch cancels watchLogin's timer. Callers hold s.mu.
func (m *Manager) stopLoginWatch(s *session) {
	if s.pairTimer != nil {
		s.pairTimer.Stop()
		s.pairTimer = nil
	}
}

// stopQR ends the QR display. Callers hold s.mu.
func (m *Manager) stopQR(s *session) {
	if s.qrTimer != nil {
		s.qrTimer.Stop()
		s.qrTimer = nil
	}
	s.qrGen++
	s.qrCurrent = ""
	s.qrExpires = time.Time{}
	s.qrPending = nil
}
