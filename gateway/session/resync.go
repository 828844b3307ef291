package session

import (
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// markDirtyLocked records that Laravel may lack s's latest state. Callers hold s.mu.
func (m *Manager) markDirtyLocked(s *session) {
	if s.dirty {
		return
	}
	s.dirty = true
	m.dirtyMu.Lock()
	m.dirty[s] = struct{}{}
	m.dirtyMu.Unlock()
}

// Dirty returns how many sessions' latest state the delivery has not accepted yet.
func (m *Manager) Dirty() int {
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	return len(m.dirty)
}

// ResyncAll sends every session's current state again with new versions, at once: the delivery
// lost what it had accepted (batch: Redis lost its data, and the outbox with it).
func (m *Manager) ResyncAll() {
	m.mu.RLock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.RUnlock()
	for _, s := range all {
		s.mu.Lock()
		m.markDirtyLocked(s)
		s.mu.Unlock()
	}
	m.log.Warn("sending every session's current state again", "sessions", len(all))
	m.scheduleResync(0)
}

// minResyncGap spaces resync passes: while many sessions stay dirty, every accepted event asks
// for a pass, and each pass walks the dirty sessions.
const minResyncGap = 100 * time.Millisecond

// scheduleResync makes the resync pass run within d (sooner when it is already due sooner), but
// not sooner than minResyncGap after the previous pass.
func (m *Manager) scheduleResync(d time.Duration) {
	if m.closed.Load() {
		return
	}
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	at := time.Now().Add(d)
	if earliest := m.lastResync.Add(minResyncGap); at.Before(earliest) {
		at = earliest
		d = time.Until(at)
	}
	switch {
	case m.resyncTimer == nil:
		m.resyncTimer = time.AfterFunc(d, m.resyncDirty)
	case m.resyncAt.IsZero() || at.Before(m.resyncAt):
		m.resyncTimer.Reset(d)
	default:
		return
	}
	m.resyncAt = at
}

// stopResync stops the resync timer (Close).
func (m *Manager) stopResync() {
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	if m.resyncTimer != nil {
		m.resyncTimer.Stop()
	}
}

// resyncDirty sends each dirty session's current status (and its current QR code while one is
// shown) again with new versions. A session still delivering earlier events is left for the next
// pass: its queue must not grow while the delivery refuses.
func (m *Manager) resyncDirty() {
	m.dirtyMu.Lock()
	m.resyncAt = time.Time{}
	m.lastResync = time.Now()
	dirty := make([]*session, 0, len(m.dirty))
	for s := range m.dirty {
		dirty = append(dirty, s)
	}
	m.dirtyMu.Unlock()
	if m.closed.Load() {
		return
	}
	left := 0
	for _, s := range dirty {
		s.mu.Lock()
		if s.draining {
			left++
			s.mu.Unlock()
			continue
		}
		s.dirty = false
		m.dirtyMu.Lock()
		delete(m.dirty, s)
		m.dirtyMu.Unlock()
		m.resend(s)
		s.mu.Unlock()
	}
	if left > 0 {
		m.scheduleResync(m.cfg.ResyncRetry)
	}
}

// resend emits s's current state again (resendPlan). Callers hold s.mu.
func (m *Manager) resend(s *session) {
	for _, ev := range resendPlan(s.status, s.qrCurrent, s.qrExpires, time.Now()) {
		m.emit(s, ev.kind, ev.payload)
	}
}

// resent is one event a resync sends again.
type resent struct {
	kind    event.Kind
	payload string
}

// resendPlan is what a resync sends for a session in status st that shows QR code qr until
// qrExpires: its status (none before it has one), then, while it is pending, the code it shows,
// unless that code expired (a code whose expiry timer has not run yet is never sent again: the
// phone would refuse it). Which of the sessions' events get the outbox's room first is the
// outbox's decision (final states first).
func resendPlan(st laravel.Status, qr string, qrExpires, now time.Time) []resent {
	if st == "" {
		return nil
	}
	plan := []resent{{event.KindStatus, string(st)}}
	if st == laravel.StatusPending && qr != "" && now.Before(qrExpires) {
		plan = append(plan, resent{event.KindQR, qr})
	}
	return plan
}
