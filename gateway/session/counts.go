package session

import (
	"sync/atomic"

	"wagate/gateway/laravel"
)

// sessionCounts are the running tallies behind Manager.Counts: how many sessions are in each
// status and how many are logged in. They move on each session's transitions (tally), so a
// /metrics scrape reads a few atomics instead of locking every session and asking each
// WhatsApp client whether it is logged in.
type sessionCounts struct {
	// byStatus counts sessions by the index of their status in laravel.Statuses; the last slot
	// holds sessions without a status yet (created, not started) or with one the contract does
	// not know (a record of another version), reported under "".
	byStatus []atomic.Int64
	live     atomic.Int64
}

func newSessionCounts() *sessionCounts {
	return &sessionCounts{byStatus: make([]atomic.Int64, len(laravel.Statuses)+1)}
}

// counted is what the tallies hold for one session: the status it is counted under and whether
// it is counted live; the zero value is a session not counted at all.
type counted struct {
	in   bool // counted under status
	st   laravel.Status
	live bool
}

// statusSlot is st's slot in sessionCounts.byStatus.
func statusSlot(st laravel.Status) int {
	for i, s := range laravel.Statuses {
		if s == st {
			return i
		}
	}
	return len(laravel.Statuses)
}

// move takes one session's contribution from was to now.
func (c *sessionCounts) move(was, now counted) {
	if was == now {
		return
	}
	if was.in {
		c.byStatus[statusSlot(was.st)].Add(-1)
	}
	if now.in {
		c.byStatus[statusSlot(now.st)].Add(1)
	}
	switch {
	case was.live && !now.live:
		c.live.Add(-1)
	case now.live && !was.live:
		c.live.Add(1)
	}
}

// snapshot returns the tallies as Counts does: every status of the contract (zeros included),
// plus "" when sessions without a known status exist.
func (c *sessionCounts) snapshot() (byStatus map[laravel.Status]int, live int) {
	byStatus = make(map[laravel.Status]int, len(c.byStatus))
	for i, st := range laravel.Statuses {
		byStatus[st] = int(c.byStatus[i].Load())
	}
	if n := c.byStatus[len(laravel.Statuses)].Load(); n != 0 {
		byStatus[""] = int(n)
	}
	return byStatus, int(c.live.Load())
}

// tally brings the counts up to date with s after a change of its status, its connection or its
// login: a session counts under its status while the manager runs it (until Drop hands it
// over), and as live while its current connection has reported its login (Connected) and not
// ended since. Callers hold s.mu.
func (m *Manager) tally(s *session) {
	now := counted{}
	if !s.dropped {
		now = counted{in: true, st: s.status, live: s.conn != nil && s.loggedIn}
	}
	m.counts.move(s.counted, now)
	s.counted = now
}
