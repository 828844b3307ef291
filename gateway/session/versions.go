package session

// Versions and epochs: every event of a session carries a version that only grows, across
// restarts (a new epoch) and, in cluster mode, across replicas (the shard's epoch, owner.go).

import (
	"context"
	"time"
)

// Version layout: event versions are epoch*VersionsPerEpoch + a per-session counter.
const VersionsPerEpoch = 1_000_000

// nextVersion returns s's next event version; false in cluster mode when this replica does not
// hold the session's shard (the event must not be emitted). Callers hold s.mu.
func (m *Manager) nextVersion(s *session) (int64, bool) {
	if m.owner != nil {
		e, ok := m.shardEpoch(s, s.epoch, s.seq)
		if !ok {
			return 0, false
		}
		if e != s.epoch {
			s.epoch, s.seq = e, 0
		}
	} else if s.seq >= VersionsPerEpoch-1 {
		s.epoch = m.renewEpoch(s.epoch)
		s.seq = 0
	}
	s.seq++
	s.version = s.epoch*VersionsPerEpoch + s.seq
	return s.version, true
}

// renewEpoch returns an epoch greater than old (a session used up its counter: very rare).
func (m *Manager) renewEpoch(old int64) int64 {
	m.epochMu.Lock()
	defer m.epochMu.Unlock()
	if m.epoch > old {
		return m.epoch
	}
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	e, err := m.store.NextEpoch(ctx, time.Now().Unix())
	if err != nil {
		// Without a stored epoch, staying monotonic still works within this process.
		m.log.Error("reserving a new version epoch failed; continuing in memory", "err", err)
		e = old + 1
	}
	m.epoch = max(e, old+1)
	return m.epoch
}
