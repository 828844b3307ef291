package session

import (
	"errors"

	"math/rand/v2"
	"time"
	"wagate/gateway/laravel"
)

// Reconnects of paired sessions (whatsmeow does not reconnect by itself). When WhatsApp drops
// every connection at once (an outage, a restart of its front), every session reconnects at once
// and retries on the same schedule: at 10,000 sessions that was 10,000 handshakes in the same
// instant, then again 1 s, 2 s, 4 s... later, in step, each wave timing out part of the next
// (make bench-scale: 92 s until 90% were back). Two rules spread them:
//   - at most Config.RestoreConcurrency connects are in flight at once, shared with the restore
//     after a start (Manager.connects): a connect holds its slot until its handshake ends, so the
//     rest queue instead of timing out;
//   - a retry waits between half of its backoff and the whole of it (reconnectWait), so the
//     sessions that failed together do not come back together.

// reconnectLater reconnects paired s after about delay (reconnectWait) when nothing else touched
// it meanwhile (in cluster mode start fences first); a failed attempt tries again, doubling the
// backoff up to maxRedeliveryBackoff. Callers hold s.mu.
func (m *Manager) reconnectLater(s *session, delay time.Duration) {
	m.reconnectAfter(s, s.gen, delay, true)
}

// reconnectAfterCut is reconnectLater after s's connection was cut before it logged in (an
// outage of its device, say): another session's login says nothing about its device, so none
// wakes this wait early (earlywake.go). Callers hold s.mu.
func (m *Manager) reconnectAfterCut(s *session, delay time.Duration) {
	m.reconnectAfter(s, s.gen, delay, false)
}

// reconnectAfter is reconnectLater for a reconnect decided at generation gen: it is not needed
// any more when s moved on since (a start or stop). wakeable says whether another session's login
// may wake its wait early (earlywake.go): after a failed dial, which a login shows WhatsApp
// serves again. Callers hold s.mu.
func (m *Manager) reconnectAfter(s *session, gen uint64, delay time.Duration, wakeable bool) {
	m.backoffs.after(reconnectWait(delay), wakeable, func(woken bool) {
		if !m.acquireConnect() {
			return // closed
		}
		defer m.releaseConnect()
		s.mu.Lock()
		why := reconnectNotNeeded(s, gen)
		s.mu.Unlock()
		if m.closed.Load() {
			return
		}
		if why != "" {
			// Never a silent stop: the chain ends only because something else now answers for
			// the session, and says what.
			m.log.Info("reconnect not needed", "session_id", s.id, "why", why)
			return
		}
		_, err := m.start(m.ctx, s, false)
		if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotOwner) {
			return
		}
		next := nextReconnectBackoff(delay)
		m.log.Warn("reconnecting a session failed; trying again", "session_id", s.id, "in", next, "woken_early", woken, "err", err)
		s.mu.Lock()
		m.reconnectLater(s, next)
		s.mu.Unlock()
	})
}

// reconnectNotNeeded says why a reconnect scheduled at generation gen is not needed any more, ""
// when it still is. Callers hold s.mu.
func reconnectNotNeeded(s *session, gen uint64) string {
	switch {
	case s.dropped:
		return "another replica holds the session"
	case s.deviceID == "":
		return "the session is not paired"
	case s.parked != "":
		return "the session is parked: " + s.parked
	case s.starting:
		return "a connect is under way"
	case s.conn != nil:
		return "the session has a connection"
	case s.gen != gen:
		// A start or stop since: a start that failed was retried by its caller, a stop is the
		// user's. With no connection and none under way, a start reconnects nothing more.
		return "the session was started or stopped since"
	}
	return ""
}

// nextReconnectBackoff is the backoff after one of b failed: 1 s, then doubling up to
// maxRedeliveryBackoff.
func nextReconnectBackoff(b time.Duration) time.Duration {
	return min(max(2*b, time.Second), maxRedeliveryBackoff)
}

// dropDelay is the backoff of the reconnect after s's connection dropped: none after a connection
// that had logged in (a drop of a working connection), else the next step of s.dropBackoff, so a
// connection that WhatsApp cuts before every login (an outage covering the device) is retried
// 1 s, 2 s, 4 s... apart instead of many times a second. Callers hold s.mu.
func (m *Manager) dropDelay(s *session) time.Duration {
	if s.status == laravel.StatusConnected && s.dropBackoff == 0 {
		return 0
	}
	s.dropBackoff = nextReconnectBackoff(s.dropBackoff)
	m.log.Warn("connection dropped before it logged in; reconnecting later", "session_id", s.id, "in", s.dropBackoff)
	return s.dropBackoff
}

// retryReconnect schedules reconnectLater for a restored session whose reconnect failed
// (whatsmeow does not retry a first connect by itself).
func (m *Manager) retryReconnect(s *session, delay time.Duration) {
	s.mu.Lock()
	m.reconnectLater(s, delay)
	s.mu.Unlock()
}

// reconnectWait is how long a reconnect with backoff b waits: at once for 0, else uniformly
// between b/2 and b, never later than the backoff says.
func reconnectWait(b time.Duration) time.Duration {
	if b <= 0 {
		return 0
	}
	return b/2 + rand.N(b/2+1)
}

// acquireConnect takes one of the reconnect slots, waiting while they are all in use; false
// when the manager closed meanwhile.
func (m *Manager) acquireConnect() bool {
	select {
	case m.connects <- struct{}{}:
		return true
	case <-m.ctx.Done():
		return false
	}
}

// releaseConnect gives back a slot acquireConnect took.
func (m *Manager) releaseConnect() { <-m.connects }
